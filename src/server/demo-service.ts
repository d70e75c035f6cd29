/**
 * The built-in demo service that `keyledger send` and `keyledger shell` talk to:
 *   { op: "echo", text }                → { echo: text, id }
 *   { op: "note.put", name, text }      → { stored: name }
 *   { op: "note.get", name }            → { name, text }
 *   { op: "note.list" }                 → { names: [...] }
 *   a plain string                      → echoed back
 * Notes are per identity and encrypted at rest (AES-256-GCM, a key per identity derived with HKDF
 * from the node's storage key, the identity and note name bound as associated data).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { openSecretFile, sealSecretFile } from '../ledger/sealed-key-file.js';
import { guardWrite } from '../ledger/storage-fault.js';
import { KlError } from '../protocol/errors.js';
import type { MessageHandler } from './session-service.js';

const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_NOTE = 16 * 1024;
const MAX_NOTES = 100;

/** Loads (or makes, on first start) the node's storage key, sealed with the node passphrase. */
export function storageKey(dataDir: string, passphrase: string): Buffer {
  const path = join(dataDir, 'storage.key');
  if (!existsSync(path)) sealSecretFile(path, randomBytes(32), passphrase, 'storage');
  return openSecretFile(path, passphrase, 'storage');
}

/** Makes the demo service over `db` (server.sqlite). */
export function demoService(db: Database.Database, master: Buffer): MessageHandler {
  db.exec(
    'CREATE TABLE IF NOT EXISTS notes (id TEXT NOT NULL, name TEXT NOT NULL, iv BLOB NOT NULL, ct BLOB NOT NULL, PRIMARY KEY (id, name))',
  );
  const put = db.prepare(
    'INSERT INTO notes(id, name, iv, ct) VALUES (?, ?, ?, ?) ON CONFLICT(id, name) DO UPDATE SET iv = excluded.iv, ct = excluded.ct',
  );
  const get = db.prepare('SELECT iv, ct FROM notes WHERE id = ? AND name = ?');
  const list = db.prepare('SELECT name FROM notes WHERE id = ? ORDER BY name');
  const count = db.prepare('SELECT count(*) AS n FROM notes WHERE id = ?');
  const keyFor = (id: string) =>
    Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from(`keyledger notes ${id}`), 32));
  return ({ id, body }) => {
    if (typeof body === 'string') return { echo: body, id };
    const b = body as { op?: unknown; text?: unknown; name?: unknown };
    if (typeof b !== 'object' || b === null) return undefined;
    const name = () => {
      if (typeof b.name !== 'string' || !NAME.test(b.name))
        throw new KlError(
          'KL_BAD_INPUT',
          'a note name is 1 to 64 letters, digits, dots, dashes or underscores',
        );
      return b.name;
    };
    switch (b.op) {
      case 'echo':
        return { echo: b.text ?? null, id };
      case 'note.put': {
        const n = name();
        if (typeof b.text !== 'string' || b.text.length > MAX_NOTE)
          throw new KlError('KL_BAD_INPUT', `a note is text of at most ${MAX_NOTE} characters`);
        if (!get.get(id, n) && (count.get(id) as { n: number }).n >= MAX_NOTES)
          throw new KlError('KL_BAD_INPUT', `at most ${MAX_NOTES} notes per identity`);
        const iv = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', keyFor(id), iv);
        c.setAAD(Buffer.from(`${id}\n${n}`));
        const ct = Buffer.concat([c.update(b.text, 'utf8'), c.final(), c.getAuthTag()]);
        guardWrite('the note', () => put.run(id, n, iv, ct));
        return { stored: n };
      }
      case 'note.get': {
        const n = name();
        const row = get.get(id, n) as { iv: Buffer; ct: Buffer } | undefined;
        if (!row) throw new KlError('KL_NOT_FOUND', `no note named ${n}`);
        const d = createDecipheriv('aes-256-gcm', keyFor(id), row.iv);
        d.setAAD(Buffer.from(`${id}\n${n}`));
        d.setAuthTag(row.ct.subarray(row.ct.length - 16));
        return {
          name: n,
          text: Buffer.concat([d.update(row.ct.subarray(0, row.ct.length - 16)), d.final()]).toString('utf8'),
        };
      }
      case 'note.list':
        return { names: (list.all(id) as Array<{ name: string }>).map((r) => r.name) };
      default:
        return undefined;
    }
  };
}
