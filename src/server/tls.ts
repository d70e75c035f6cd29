/**
 * TLS of `keyledger serve` (docs/configuration.md "TLS"): the certificate (chain, leaf first) and
 * its private key are read from PEM files and checked — readable, parseable, the key matching the
 * certificate — before they are used, at start and on every reload (SIGHUP). A reload replaces the
 * server's secure context for new connections only (Node's `tls.Server#setSecureContext`): live
 * connections keep theirs.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { KlError } from '../protocol/errors.js';

/** Where the certificate and key are (PEM files). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** A certificate and key read and checked by {@link loadTls}. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint of the leaf certificate, `AB:CD:…` (as `openssl x509 -fingerprint -sha256`). */
  fingerprint: string;
  subject: string;
  /** End of validity of the leaf certificate, ISO 8601. */
  validTo: string;
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new KlError('KL_CONFIG_INVALID', `cannot read the TLS ${what} file ${path}: ${why}`);
  }
}

/**
 * Reads and checks the TLS files.
 * @throws KlError `KL_CONFIG_INVALID` naming the file: missing or unreadable, not a PEM certificate or
 * key (an encrypted key is refused too), or a key that does not belong to the certificate.
 */
export function loadTls(files: TlsFiles): TlsMaterial {
  const cert = read(files.certFile, 'certificate');
  const key = read(files.keyFile, 'key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${files.certFile} holds no PEM certificate: ${(err as Error).message}`,
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new KlError(
      'KL_CONFIG_INVALID',
      `${files.keyFile} holds no usable PEM private key (it must not be passphrase-protected): ${(err as Error).message}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new KlError(
      'KL_CONFIG_INVALID',
      `the TLS key ${files.keyFile} does not belong to the certificate ${files.certFile}`,
    );
  try {
    createSecureContext({ cert, key }); // what the server will do with them (the whole chain)
  } catch (err) {
    throw new KlError(
      'KL_CONFIG_INVALID',
      `cannot use ${files.certFile} and ${files.keyFile} for TLS: ${(err as Error).message}`,
    );
  }
  return {
    cert,
    key,
    fingerprint: x509.fingerprint256,
    subject: x509.subject.replace(/\n/g, ', '),
    validTo: new Date(x509.validTo).toISOString(),
  };
}
