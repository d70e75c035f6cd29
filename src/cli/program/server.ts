/**
 * The commands that run the server and check its configuration: `keyledger serve` and
 * `keyledger config check | schema`.
 */
import { type Command, Option } from 'commander';
import type { ConfigFile } from '../../server/config.js';
import {
  collect,
  jsonOption,
  nodePassphraseOptions,
  type OptionValues,
  serveFlags,
  serveSettingOptions,
} from '../options.js';
import { act, type Context, commands, examples, given, passphraseOf, str, withOptions } from './shared.js';

/** The help of `keyledger serve`. */
const SERVE_DESCRIPTION = [
  "Starts the server; initialises DIR (default ./keyledger-data) on first start: the ledger, its validator key and the server's OpenPGP key, pinned in the genesis.",
  'Settings come from --config FILE (JSON, docs/configuration.md), then KEYLEDGER_* environment variables, then these flags; keyledger config check shows the result.',
  '--ledger evm --rpc URL [--contract ADDRESS --from-block N]: on first start, a ledger ordered by an EVM chain (Besu/GoQuorum QBFT): deploys the KeyRegistry contract, or attaches to ADDRESS (docs/deploy-besu.md). Later starts read the engine from the data directory; --rpc changes the node.',
  '--etcd URL,URL,URL [--etcd-prefix /keyledger/NAME]: on first start, a ledger ordered by an etcd cluster (3 or 5 members): the genesis names the prefix, bound to this ledger at once; a prefix that orders another ledger is refused (docs/deploy-etcd.md). Later starts read DATA/etcd.json; --etcd changes the endpoints. A further server of a deployment: keyledger node join.',
  '--admin names identities that get the admin role on the ledger once registered (the first admin); --public-url is the address people use to reach the server (dashboard links; https:// makes the dashboard cookie Secure).',
  '--tls-cert FILE --tls-key FILE (PEM): serve https:// and wss://; on SIGHUP both files are read again and serve new connections (live ones are kept); a bad pair is refused and the previous certificate keeps serving. Behind a TLS proxy instead: README, "Deploying".',
  'Also serves /admin (dashboard), /openapi.json and /docs, /metrics, /healthz, /readyz.',
  'Emailed codes: KEYLEDGER_SMTP_URL, KEYLEDGER_SMTP_FROM, or --smtp-url, --smtp-from.',
  'Console: after the banner, one line per event on stdout (time in UTC): registered, login, logout, ended (timeout, revoked…), revoked/rotated key, role, ALERT, refused; never a code, key or token. Refusals are summarised per source (IPv4 /24, IPv6 /64) every 10 s. --json: the start object, then one JSON object per event ("event": its kind). --quiet: no event lines (audit trail unchanged).',
  'The log in DATA/logs is encrypted to the server key, or to --operator-key FILE; --insecure-plain-logs also prints it in clear on stderr (development only).',
].join('\n\n');

/** The data directory `keyledger serve` opens: the one its configuration names, else the default. */
async function serveDataDir(v: OptionValues): Promise<string> {
  try {
    const { loadConfig, serverOptionsOf } = await import('../../server/config.js');
    const file = str(v, 'config');
    return serverOptionsOf(loadConfig({ ...(file ? { file } : {}), flags: serveFlagsWithPeers(v) })).dataDir;
  } catch {
    return str(v, 'data') ?? './keyledger-data';
  }
}

/** The settings given as `serve` flags, with `--peer` (setting `peers`, docs/configuration.md). */
function serveFlagsWithPeers(v: OptionValues): ConfigFile {
  const peers = Array.isArray(v.peer) ? (v.peer as string[]) : [];
  return { ...serveFlags(v), ...(peers.length > 0 ? { peers } : {}) };
}

/** `keyledger serve`: runs the server (initialising its data directory on first start). */
export function declareServe(program: Command, context: Context): void {
  const serve = program
    .command('serve')
    .summary('run the server (initialises its data directory on first start)')
    .description(SERVE_DESCRIPTION);
  withOptions(serve, [
    ...serveSettingOptions(),
    new Option(
      '--peer <URL>',
      'another server of this ledger, listed to clients in /v1/info (repeatable; setting peers)',
    ).argParser(collect),
    ...nodePassphraseOptions(),
    new Option('--insecure-plain-logs', 'also print the log in clear on stderr (development only)'),
    new Option('--json', 'the start object, then one JSON object per event'),
  ]);
  examples(serve, [
    'keyledger serve --data ./keyledger-data --admin alice@example.org',
    'keyledger serve --config /etc/keyledger.json --tls-cert cert.pem --tls-key key.pem',
    'keyledger serve --ledger evm --rpc http://127.0.0.1:8545',
    'keyledger serve --data ./kl1 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379',
  ]).action(
    act(
      context,
      async (v) =>
        (await commands.server()).serve({
          ...given('configFile', str(v, 'config')),
          flags: serveFlagsWithPeers(v),
          json: !!v.json,
          ...passphraseOf(v),
          insecurePlainLogs: !!v.insecurePlainLogs,
        }),
      serveDataDir,
    ),
  );
}

/** `keyledger config check | schema`: validates or describes the configuration of serve. */
export function declareConfig(program: Command, context: Context): void {
  const config = program
    .command('config')
    .summary('check | schema: validate or describe the configuration of serve')
    .description('The configuration keyledger serve uses (docs/configuration.md).');
  declareConfigCheck(config, context);
  declareConfigSchema(config, context);
  examples(config, ['keyledger config check', 'keyledger config schema']);
}

/** `keyledger config check`: validates the configuration serve would use, and prints it. */
function declareConfigCheck(config: Command, context: Context): void {
  const check = config
    .command('check')
    .summary('validate the configuration serve would use, and print it')
    .description(
      'Validates the configuration keyledger serve would use (file, then KEYLEDGER_* environment, then flags) against its schema and prints it with secrets hidden; exit 2 with every problem otherwise.',
    );
  withOptions(check, [...serveSettingOptions(), jsonOption()]);
  examples(check, [
    'keyledger config check --config /etc/keyledger.json',
    'keyledger config check --port 7000 --json',
  ]).action(
    act(context, async (v) =>
      (await commands.config()).configCheck({
        ...given('configFile', str(v, 'config')),
        flags: serveFlags(v),
        json: !!v.json,
      }),
    ),
  );
}

/** `keyledger config schema`: prints the JSON schema of the configuration file. */
function declareConfigSchema(config: Command, context: Context): void {
  examples(
    config
      .command('schema')
      .summary('print the JSON schema of the configuration file')
      .description('Prints the JSON schema of the configuration file (reference: docs/configuration.md).'),
    ['keyledger config schema > keyledger.schema.json'],
  ).action(act(context, async () => (await commands.config()).configSchema()));
}
