/**
 * `keyledger recovery-key create` and `keyledger recover` (docs/protocol.md "Recovery"): the
 * declarations and help; the work is in commands/recovery.ts, loaded when one runs.
 */
import { type Command, Option } from 'commander';
import { homeOption, jsonOption, userPassphraseOption } from '../options.js';
import { act, type Context, clientOf, examples, given, str, withOptions } from './shared.js';
import { serverOption } from './user.js';

const recoveryModule = () => import('../commands/recovery.js');

/** `keyledger recovery-key create`: an offline key that recovers your identity on a new device. */
export function declareRecoveryKey(program: Command, context: Context): void {
  const group = program
    .command('recovery-key')
    .summary('create: an offline key that recovers your identity when your devices are lost')
    .description(
      'A recovery key never logs in. It is kept offline, as a file and on paper, and on a new device (keyledger recover) it revokes every device of your identity and makes the new one its only device. Each identity has at most one; replacing it takes the current one.',
    );
  const create = group
    .command('create')
    .summary("make your identity's recovery key (written once: a file and a paper form)")
    .description(
      'Logs in, makes a recovery key, writes its private part to --out (a new file, mode 0600: keep it offline) and prints its paper form of four lines to print or write down, then registers its public part on the ledger, signed by this device and by the recovery key (and by the current recovery key with --replace). Nothing of it stays on this device.',
    );
  withOptions(create, [
    new Option('--out <FILE>', 'where to write the recovery key (a new file; required)'),
    new Option('--replace <FILE>', 'the current recovery key file, to replace it (- to type its paper form)'),
    serverOption(),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(create, [
    'keyledger recovery-key create --out /media/usb/alice-recovery.asc',
    'keyledger recovery-key create --out new-recovery.asc --replace /media/usb/alice-recovery.asc',
  ]).action(
    act(context, async (v) =>
      (await recoveryModule()).recoveryKeyCreate({
        ...clientOf(v),
        ...given('out', str(v, 'out')),
        ...given('replace', str(v, 'replace')),
      }),
    ),
  );
  examples(group, ['keyledger recovery-key create --out /media/usb/alice-recovery.asc']);
}

/** `keyledger recover`: takes your identity back on this device with its recovery key. */
export function declareRecover(program: Command, context: Context): void {
  const recover = program
    .command('recover')
    .summary('take your identity back on this device with its recovery key')
    .description(
      'On a new device, after keyledger init --id YOU --device NAME: reads the recovery key (--key FILE, or its paper form typed on standard input), checks that the ledger holds it for your identity, writes the next recovery key to --out (a new file) and its paper form, then recovers: every device of your identity is revoked and its sessions end, this device becomes the only one, the next recovery key replaces the one used. Asks to confirm (or --yes). Without --chain the server is not authenticated: said plainly, and used only once you confirm on the terminal (or --trust-first-use).',
    );
  withOptions(recover, [
    new Option('--key <FILE>', 'the recovery key file (without it: type its paper form)'),
    new Option('--out <FILE>', 'where to write the next recovery key (a new file; required)'),
    new Option('--server <URL>', 'a server of your ledger (required)'),
    new Option('--chain <ID>', 'the ledger id (pins the server)'),
    new Option('--yes', 'recover without asking to confirm'),
    new Option('--trust-first-use', 'accept a server nothing authenticated (no --chain) without asking'),
    homeOption(),
    userPassphraseOption(),
    jsonOption(),
  ]);
  examples(recover, [
    'keyledger recover --key /media/usb/alice-recovery.asc --out next-recovery.asc --server https://kl.example.org --chain 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    'keyledger recover --out next-recovery.asc --server https://kl.example.org   (type the paper form)',
  ]).action(
    act(context, async (v) =>
      (await recoveryModule()).recoverCommand({
        ...clientOf(v),
        ...given('out', str(v, 'out')),
        ...given('key', str(v, 'key')),
        ...given('chain', str(v, 'chain')),
        yes: !!v.yes,
        trustFirstUse: !!v.trustFirstUse,
      }),
    ),
  );
}
