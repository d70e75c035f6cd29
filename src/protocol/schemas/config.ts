/**
 * The server's configuration file as a schema (docs/configuration.md): every setting, its limits and
 * its description; src/server/config.ts reads, merges and checks the settings against it.
 */
import { type Static, Type } from 'typebox';

const closed = { additionalProperties: false } as const;
const duration = (description: string) =>
  Type.String({
    pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)?$',
    description: `${description} A duration: 500ms, 60s, 15m, 12h, 7d (a bare number is seconds).`,
  });
const count = (description: string, max = 1e12) => Type.Integer({ minimum: 1, maximum: max, description });
const limit = (description: string) =>
  Type.Object(
    {
      burst: count('Requests allowed at once.', 1e9),
      perSecond: Type.Number({ exclusiveMinimum: 0, maximum: 1e9, description: 'Refill rate.' }),
    },
    { ...closed, description },
  );

/** The schema of the configuration file (JSON). Every setting is optional; defaults in its text. */
export const CONFIG_SCHEMA = Type.Object(
  {
    dataDir: Type.Optional(
      Type.String({ minLength: 1, description: 'Data directory. Default ./keyledger-data.' }),
    ),
    host: Type.Optional(
      Type.String({ minLength: 1, description: 'Address to listen on. Default 127.0.0.1.' }),
    ),
    port: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 65535, description: 'Port. Default 7420 (0: any free port).' }),
    ),
    quiet: Type.Optional(
      Type.Boolean({
        description:
          'No event lines on the console of keyledger serve (the audit trail and the encrypted log are unchanged). Default false.',
      }),
    ),
    publicUrl: Type.Optional(
      Type.String({
        pattern: '^https?://',
        description:
          'The URL people use to reach the server (dashboard links); https makes the dashboard cookie Secure.',
      }),
    ),
    tls: Type.Optional(
      Type.Object(
        {
          cert: Type.String({
            minLength: 1,
            description: 'PEM file: the certificate, then any intermediates.',
          }),
          key: Type.String({
            minLength: 1,
            description: 'PEM file: its private key (not passphrase-protected; mode 0600).',
          }),
        },
        {
          ...closed,
          description:
            'Serve HTTPS and WSS with this certificate and key (PEM files, reloaded on SIGHUP); makes the dashboard cookie Secure. Default off (plain HTTP, e.g. behind a TLS-terminating proxy).',
        },
      ),
    ),
    admins: Type.Optional(
      Type.Array(Type.String({ minLength: 3, maxLength: 254 }), {
        maxItems: 100,
        description: 'Identities that get the admin role on the ledger once registered (the first admins).',
      }),
    ),
    corsOrigins: Type.Optional(
      Type.Array(Type.String({ pattern: '^https?://[^/?#\\s]+$', maxLength: 255 }), {
        maxItems: 100,
        description:
          'Origins (scheme://host[:port], no path) whose pages may call the public routes from a browser (CORS); never the admin API. Default none.',
      }),
    ),
    peers: Type.Optional(
      Type.Array(Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048 }), {
        maxItems: 15,
        description:
          "Public URLs of the other servers of this ledger (same genesis, same chain), listed after this server's public URL in /v1/info servers; clients check each before using it. Default none.",
      }),
    ),
    challengeTtl: Type.Optional(duration('How long a login challenge stays valid. Default 60s.')),
    handshakeTimeout: Type.Optional(duration('How long a login may take on one connection. Default 30s.')),
    operatorKey: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Armored OpenPGP public key file of the operator: the server's log is encrypted to it. Default: the server key.",
      }),
    ),
    ledgerBatchWait: Type.Optional(duration('Group-commit window of the ledger. Default 2ms.')),
    nativeOpenPgp: Type.Optional(
      Type.Boolean({
        description:
          'The native OpenPGP path for v4 Ed25519/Cv25519 keys (docs/protocol.md); false sends every OpenPGP operation to OpenPGP.js. Default true.',
      }),
    ),
    session: Type.Optional(
      Type.Object(
        {
          idleTimeout: Type.Optional(duration('A session idle this long ends. Default 15m.')),
          maxLifetime: Type.Optional(duration('No session lives longer. Default 12h.')),
          renewAfterFrames: Type.Optional(
            count('Renew the keys after this many frames in one direction. Default 10000.'),
          ),
          renewAfterBytes: Type.Optional(count('…or this many bytes. Default 67108864 (64 MiB).')),
          renewAfter: Type.Optional(duration('…or this long. Default 10m.')),
        },
        { ...closed, description: 'Session lifetime and key renewal.' },
      ),
    ),
    hijack: Type.Optional(
      Type.Object(
        {
          maxAnomalies: Type.Optional(
            count('Rejected frames within anomalyWindow that end a session. Default 3.', 1e6),
          ),
          anomalyWindow: Type.Optional(duration('Default 60s.')),
          maxFramesPerWindow: Type.Optional(
            count('Frames per rateWindow above which a session ends. Default 2000.'),
          ),
          rateWindow: Type.Optional(duration('Default 10s.')),
          endOnIpChange: Type.Optional(
            Type.Boolean({ description: 'End a session resumed from another address. Default true.' }),
          ),
          baselineFactor: Type.Optional(
            Type.Number({
              minimum: 0,
              maximum: 1e6,
              description: "Abnormal above this many times the identity's usual rate (0: off). Default 10.",
            }),
          ),
          baselineMinFrames: Type.Optional(count('…and above this many frames per window. Default 300.')),
          baselineMinHistory: Type.Optional(
            count('Active windows learnt before the baseline applies. Default 5.', 1e6),
          ),
        },
        { ...closed, description: 'Hijack detection thresholds (docs/protocol.md).' },
      ),
    ),
    rateLimits: Type.Optional(
      Type.Object(
        {
          registerPerIp: Type.Optional(
            limit('Registration and emailed-code requests per source address. Default burst 60, 1/s.'),
          ),
          registerPerIdentity: Type.Optional(
            limit('Registrations per identity whose code verified. Default burst 10, 0.1/s.'),
          ),
          wrongCodePerIp: Type.Optional(
            limit('Wrong invitation or emailed codes per source address. Default burst 10, 1/min.'),
          ),
          wrongEmailCodeGlobal: Type.Optional(
            limit('Wrong emailed codes, server-wide. Default burst 30, 1/min.'),
          ),
          loginPerIp: Type.Optional(
            limit('Login hellos and resumes per source address. Default burst 600, 50/s.'),
          ),
          loginGlobal: Type.Optional(
            limit('Login hellos and resumes, server-wide. Default burst 2000, 500/s.'),
          ),
          loginPerIdentity: Type.Optional(limit('Verified logins per identity. Default burst 20, 1/s.')),
          emailPerIdentity: Type.Optional(
            limit(
              'Emails per address; when used up, no mail is sent and the codes sent meanwhile stay valid. Default burst 3, 1/min.',
            ),
          ),
          deviceRequestPerIp: Type.Optional(
            limit('New devices’ requests to join an identity, per source address. Default burst 10, 1/min.'),
          ),
          wrongDeviceCodePerIdentity: Type.Optional(
            limit('Device codes matching no request, per logged-in identity. Default burst 10, 1/min.'),
          ),
          recoveryPerIp: Type.Optional(
            limit('Recoveries (POST /v1/recover), per source address. Default burst 5, 1/min.'),
          ),
          recoveryGlobal: Type.Optional(limit('Recoveries, server-wide. Default burst 100, 2/s.')),
        },
        {
          ...closed,
          description:
            'Token buckets per source address, server-wide, and per identity (charged only by what proved something: docs/protocol.md, "Rate limits").',
        },
      ),
    ),
    trustProxy: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
        maxItems: 64,
        description:
          'Reverse proxies whose X-Forwarded-For is believed for the client address (addresses, CIDR ranges, loopback, linklocal, uniquelocal). Default none.',
      }),
    ),
    ledger: Type.Optional(
      Type.Object(
        {
          engine: Type.Optional(
            Type.Enum(['embedded', 'evm', 'etcd'], {
              description:
                'embedded (default); evm: a permissioned EVM chain orders the ledger (docs/deploy-besu.md); etcd: an etcd cluster orders it (docs/deploy-etcd.md).',
            }),
          ),
          etcd: Type.Optional(
            Type.Array(Type.String({ pattern: '^https?://', maxLength: 256 }), {
              minItems: 1,
              maxItems: 16,
              description:
                "etcd: the cluster members' client URLs (http(s)://host:2379); kept in DATA/etcd.json on first start.",
            }),
          ),
          etcdPrefix: Type.Optional(
            Type.String({
              pattern: '^(/[A-Za-z0-9._~:@+=-]+)+$',
              maxLength: 128,
              description:
                'etcd: the key prefix of a new ledger (/keyledger/NAME; default /keyledger/<name>-<random>). Named by the genesis.',
            }),
          ),
          rpcUrl: Type.Optional(
            Type.String({ pattern: '^(https?|wss?)://', description: "EVM: the node's JSON-RPC URL." }),
          ),
          contract: Type.Optional(
            Type.String({
              pattern: '^0x[0-9a-fA-F]{40}$',
              description: 'EVM: attach to this deployed KeyRegistry instead of deploying one.',
            }),
          ),
          fromBlock: Type.Optional(
            Type.Integer({
              minimum: 0,
              description: 'EVM: the block the attached contract was deployed in.',
            }),
          ),
          confirmations: Type.Optional(
            count('EVM: confirmations before a write is final. Default 1 (QBFT).', 1000),
          ),
          pollMs: Type.Optional(
            count('EVM, etcd: how often to read new blocks (entries), ms. Default 250 (etcd 100).', 60_000),
          ),
          maxStaleness: Type.Optional(
            duration(
              'EVM: refuse logins while the chain has not been read for this long (fail closed). Default 30s.',
            ),
          ),
          insecureAllowStale: Type.Optional(
            Type.Boolean({
              description:
                'EVM: let logins through however long the chain is unreadable (a revocation may be missed).',
            }),
          ),
          behindWait: Type.Optional(
            duration(
              'EVM: how long a ledger read at a block this server has not read yet waits for it before KL_LEDGER_BEHIND (503, retryable). Default 3s; 0 answers at once.',
            ),
          ),
        },
        {
          ...closed,
          description: 'Which engine orders the ledger (fixed when the data directory is initialised).',
        },
      ),
    ),
    smtp: Type.Optional(
      Type.Object(
        {
          url: Type.String({
            pattern: '^smtps?://',
            description: 'smtp://user:pass@host:587 (STARTTLS) or smtps://.',
          }),
          from: Type.Optional(
            Type.String({ minLength: 3, description: 'Sender. Default keyledger <no-reply@localhost>.' }),
          ),
          insecurePlaintext: Type.Optional(
            Type.Boolean({ description: 'Allow a relay without TLS (development only).' }),
          ),
        },
        {
          ...closed,
          description: 'Emailed one-time codes. Without it, registration is by invitation only.',
        },
      ),
    ),
  },
  {
    ...closed,
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'keyledger server configuration',
  },
);

/** The configuration as written in a file (durations as text): the type of {@link CONFIG_SCHEMA}. */
export type ConfigFile = Static<typeof CONFIG_SCHEMA>;
