/**
 * The address a request comes from, for limits keyed on the source (docs/protocol.md "Rate
 * limits"). Behind a reverse proxy every request arrives from the proxy, so the address it forwards
 * (`X-Forwarded-For`) is believed, hop by hop, only from proxies in the trust list of the
 * configuration (`trustProxy`: addresses, CIDR ranges, or `loopback`, `linklocal`, `uniquelocal`).
 * Without a trust list the socket's address is the source and forwarded headers are ignored.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv4 } from 'node:net';
import proxyaddr from '@fastify/proxy-addr';
import ipaddr from 'ipaddr.js';

/** Decides, hop by hop, whether an address is a trusted proxy (the form Fastify's `trustProxy` takes). */
export type ProxyTrust = (address: string, hop: number) => boolean;

/** Compiles the trust list; an empty or absent list trusts no proxy. */
export function proxyTrust(list: readonly string[] | undefined): ProxyTrust {
  if (!list || list.length === 0) return () => false;
  return proxyaddr.compile([...list]);
}

/** The client's address of a raw request (the WebSocket upgrade), by the same rule as Fastify's `req.ip`. */
export function clientAddress(req: IncomingMessage, trust: ProxyTrust): string {
  if (!req.socket.remoteAddress) return 'unknown';
  return proxyaddr(req, trust);
}

/**
 * The key a per-source limit is charged to: an IPv4 address as it is (IPv4-mapped IPv6 too), an IPv6
 * address by its /64 — one host usually holds a whole /64, so counting its addresses one by one would
 * give it unlimited sources.
 */
export function sourceKey(address: string): string {
  // The common case, a dotted quad as the socket reports it, is its own key (no parse per connection).
  if (isIPv4(address)) return address;
  if (!ipaddr.isValid(address)) return address;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress())
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(':')}::/64`;
}
