/**
 * Registration on a network the attacker controls (docs/protocol.md, "Registration on a hostile
 * network"): a real HTTP proxy on 127.0.0.1 between the client and a real server reads, holds and
 * reroutes every request. The identity proof never crosses in a form the proxy can read or use for
 * another key, and a pinned invitation stops the client before it sends anything to a server the
 * invitation does not name.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { openClientKey } from '../src/client/identity.js';
import { buildRegistrationRequest, register } from '../src/client/register.js';
import { isKlError } from '../src/protocol/errors.js';
import { parseInvitation } from '../src/protocol/invitation.js';
import { type RegistrationStatement, statementBytes } from '../src/protocol/statements.js';
import { CLIENT_PASSPHRASE, invite, newClient, testServer } from './support/server.js';

interface Seen {
  method: string;
  path: string;
  body: string;
  answer: string;
}

/**
 * A man in the middle: forwards to `target()`, records every request and answer, and can hold a
 * request (by path) until the test releases it.
 */
async function proxy(target: () => string) {
  const seen: Seen[] = [];
  const holds = new Map<string, { release: () => void; arrived: Promise<string> }>();
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const hold = holds.get(req.url ?? '');
      if (hold) {
        holds.delete(req.url ?? '');
        await new Promise<void>((release) => {
          (hold as unknown as { resolveArrived: (b: string) => void }).resolveArrived(body.toString());
          hold.release = release;
        });
      }
      const upstream = request(
        new URL(req.url ?? '/', target()),
        { method: req.method, headers: { ...req.headers, host: new URL(target()).host }, agent: false },
        (up) => {
          const answer: Buffer[] = [];
          up.on('data', (c: Buffer) => answer.push(c));
          up.on('end', () => {
            seen.push({
              method: req.method ?? '',
              path: req.url ?? '',
              body: body.toString(),
              answer: Buffer.concat(answer).toString(),
            });
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(answer));
          });
        },
      );
      upstream.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    /** Holds the next request to `path`; resolves with its body when it arrives. */
    hold(path: string) {
      let resolveArrived!: (b: string) => void;
      const arrived = new Promise<string>((r) => (resolveArrived = r));
      const entry = { release: () => {}, arrived, resolveArrived };
      holds.set(path, entry);
      return entry;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('registration through a man in the middle (real proxy and servers on 127.0.0.1)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let other: Awaited<ReturnType<typeof testServer>>;
  before(async () => {
    server = await testServer();
    other = await testServer(); // the attacker's own keyledger server: another ledger, another key
  });
  after(async () => {
    await server.close();
    await other.close();
  });

  it('the proxy never sees the code, and a sealed proof it copies into its own registration is refused', async () => {
    const mitm = await proxy(() => server.url);
    const alice = await newClient('alice@example.org');
    const invitation = invite(server, 'alice@example.org');
    const { code } = parseInvitation(invitation);
    // The proxy holds alice's request and races her with its own key, using what it read.
    const held = mitm.hold('/v1/register/complete');
    const registering = register({
      home: alice,
      server: mitm.url,
      proof: { method: 'invite', code: invitation },
      passphrase: CLIENT_PASSPHRASE,
    });
    const captured = JSON.parse(await held.arrived) as { statement: RegistrationStatement };
    const traffic = JSON.stringify(mitm.seen) + JSON.stringify(captured);
    for (const form of [code, code.replace(/-/g, ''), code.slice(3)])
      assert.ok(!traffic.includes(form), `the code (${form}) crossed the network in the clear`);
    assert.equal(captured.statement.proof.method, 'invite');
    assert.match(captured.statement.proof.sealed, /^-----BEGIN PGP MESSAGE-----/);

    // Mallory: her own key, a fresh nonce, alice's sealed proof.
    const mallory = await openClientKey(await newClient('alice@example.org', 'Mallory'), CLIENT_PASSPHRASE);
    const begun = (await (
      await fetch(`${server.url}/v1/register/begin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'alice@example.org' }),
      })
    ).json()) as { nonce: string; chain: string; server: { fingerprint: string; publicKey: string } };
    const forged = await buildRegistrationRequest({
      ...mallory,
      chain: begun.chain,
      nonce: begun.nonce,
      server: begun.server,
      proof: { method: 'invite', code: 'unknown' },
      time: Date.now(),
    });
    forged.statement.proof = captured.statement.proof;
    const signature = await mallory.key.signDetached(
      statementBytes(forged.statement),
      new Date(forged.statement.time),
    );
    const stolen = await fetch(`${server.url}/v1/register/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...forged, signature }),
    });
    assert.equal(stolen.status, 401);
    assert.equal(
      ((await stolen.json()) as { error: { code: string } }).error.code,
      'KL_IDENTITY_PROOF_INVALID',
    );

    // The proxy also replays alice's statement with its own (junk) signature, and with another key:
    // neither spends her nonce, which only a statement her key signed can spend.
    for (const body of [
      {
        ...JSON.parse(await held.arrived),
        signature: '-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n',
      },
      { ...JSON.parse(await held.arrived), publicKey: mallory.identity.publicKey },
    ]) {
      const burnt = await fetch(`${server.url}/v1/register/complete`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.ok(burnt.status >= 400 && burnt.status < 500);
    }
    // Alice's own request, released late, still registers her key: the invitation was not spent.
    held.release();
    const r = await registering;
    assert.equal(r.verified, true);
    assert.equal(r.trust, 'pinned');
    assert.equal(
      (await server.ledger.getKeyRecord('alice@example.org')).record?.fingerprint,
      alice.readIdentity().fingerprint,
    );
    await mitm.close();
  });

  it('a pinned invitation refuses a server it does not name before anything is sent', async () => {
    // The proxy sends alice's client to the attacker's own server.
    const mitm = await proxy(() => other.url);
    const bob = await newClient('bob@example.org');
    await assert.rejects(
      register({
        home: bob,
        server: mitm.url,
        proof: { method: 'invite', code: invite(server, 'bob@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (err: unknown) =>
        isKlError(err, 'KL_SERVER_KEY_MISMATCH') &&
        /not the one your invitation names.*Nothing was sent/.test(err.message),
    );
    assert.deepEqual(
      mitm.seen.map((s) => s.path),
      ['/v1/info'],
      'only the public information was asked for: no nonce, no statement, no proof',
    );
    await mitm.close();
  });

  it('without a pin the client reports trust on first use before it sends the code', async () => {
    const carol = await newClient('carol@example.org');
    const told: string[] = [];
    const bare = parseInvitation(invite(server, 'carol@example.org')).code;
    const r = await register({
      home: carol,
      server: server.url,
      proof: { method: 'invite', code: bare },
      passphrase: CLIENT_PASSPHRASE,
      onServer: ({ trust, chain }) => {
        told.push(`${trust} ${chain}`);
      },
    });
    assert.deepEqual(told, [`first-use ${server.ledger.chainId}`]);
    assert.equal(r.trust, 'first-use');
  });

  it('a forged "identity taken" answer is not passed off as the ledger\'s word', async () => {
    // The proxy answers register/complete itself with a made-up refusal naming a made-up key.
    const forger = createServer((req, res) => {
      if (req.url === '/v1/register/complete') {
        req.resume();
        res.writeHead(409, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: {
              code: 'KL_IDENTITY_TAKEN',
              message: 'taken: call +1-555-0100',
              details: { fingerprint: 'f'.repeat(40) },
            },
          }),
        );
        return;
      }
      const upstream = request(
        new URL(req.url ?? '/', server.url),
        { method: req.method, headers: req.headers, agent: false },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((r) => forger.listen(0, '127.0.0.1', r));
    const erin = await newClient('erin@example.org');
    await assert.rejects(
      register({
        home: erin,
        server: `http://127.0.0.1:${(forger.address() as AddressInfo).port}`,
        proof: { method: 'invite', code: invite(server, 'erin@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (err: unknown) =>
        isKlError(err, 'KL_IDENTITY_TAKEN') &&
        /the ledger does not prove it/.test(err.message) &&
        !err.message.includes('555') &&
        !err.message.includes('f'.repeat(40)),
    );
    await new Promise<void>((r) => forger.close(() => r()));
  });

  it('a user whose identity was taken by another key is told which key, and what to do', async () => {
    const first = await newClient('dave@example.org');
    await register({
      home: first,
      server: server.url,
      proof: { method: 'invite', code: invite(server, 'dave@example.org') },
      passphrase: CLIENT_PASSPHRASE,
    });
    const late = await newClient('dave@example.org');
    await assert.rejects(
      register({
        home: late,
        server: server.url,
        proof: { method: 'invite', code: invite(server, 'dave@example.org') },
        passphrase: CLIENT_PASSPHRASE,
      }),
      (err: unknown) =>
        isKlError(err, 'KL_IDENTITY_TAKEN') &&
        err.message.includes(first.readIdentity().fingerprint) &&
        /someone else registered first.*revoke that key and to invite you again/.test(err.message),
    );
  });
});
