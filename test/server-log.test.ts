/**
 * The encrypted server log holds every ledger-changing action, including those made while the
 * server starts, before its log file is open (src/cli/commands/server.ts): `serve --admin ID` for an
 * identity already registered grants the role at once.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PASSPHRASE, tempDir } from './helpers.js';
import { invitedUsers, registerUser, serveCli } from './support/serve-cli.js';

const bin = new URL('../bin/keyledger.js', import.meta.url).pathname;

async function stop(s: Awaited<ReturnType<typeof serveCli>>): Promise<void> {
  s.child.kill('SIGTERM');
  const { code } = await s.exited;
  assert.equal(code, 0, s.stderr());
}

describe('the encrypted server log', () => {
  it('records the admin role granted at start (serve --admin ID for a registered identity)', async () => {
    const data = join(tempDir(), 'server-data');
    const first = await serveCli(data);
    const [alice] = await invitedUsers(data, 'alice', 1);
    await registerUser(first.url, alice!);
    await stop(first);

    const second = await serveCli(data, ['--port', '0', '--admin', alice!.id]);
    // The grant is a ledger transaction: wait until the ledger shows the role.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = (await (await fetch(`${second.url}/v1/ledger/keys/${alice!.id}`)).json()) as {
        record?: { roles?: string[] };
      };
      if (r.record?.roles?.includes('admin')) break;
      assert.ok(Date.now() < deadline, 'the admin role is granted at start');
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop(second);

    const dec = spawnSync(process.execPath, [bin, 'logs', 'decrypt', '--data', data, '--json'], {
      encoding: 'utf8',
      env: { ...process.env, KEYLEDGER_SERVER_PASSPHRASE: PASSPHRASE },
    });
    assert.equal(dec.status, 0, dec.stderr);
    const lines = dec.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { text?: string; error?: string });
    assert.ok(
      lines.every((l) => typeof l.text === 'string'),
      'every line authenticates',
    );
    const texts = lines.map((l) => l.text!);
    const grants = texts.filter((t) => t.includes(`admin role granted to ${alice!.id} (named at start)`));
    assert.equal(grants.length, 1, `the grant is in the log:\n${texts.join('\n')}`);
  });
});
