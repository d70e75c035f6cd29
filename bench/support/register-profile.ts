/**
 * Where a server spends a registration: a V8 CPU profile of the server's main thread
 * (profiler.ts) split into the parts of docs/protocol.md "Phase 1", step 4 — OpenPGP.js (key policy,
 * proof of possession, the sealed identity proof), the ledger and its SQLite, the invitation and
 * nonce checks, HTTP + Fastify, schema checks, the rest of the server's code, GC. Pure: no I/O.
 *
 * A sample counts for the part of the innermost frame that belongs to one. Frames of shared helpers
 * belong to none and pass the sample to their caller: native code (no URL: OpenSSL, SQLite steps,
 * V8 builtins such as JSON.stringify), Node's own modules other than its HTTP stack, @noble, and
 * src/protocol apart from its schemas. So an Ed25519 signature made through node:crypto for a
 * ledger block counts as ledger, and canonical JSON made for a registration statement counts for
 * the server code that asked for it; crypto whose caller is not on the stack (an async function
 * resumed from the microtask queue) counts as `crypto`. Self time of a sample is the interval to the
 * next sample (the last runs to the profile's end), as Chrome DevTools counts it (profile-split.ts
 * does the same).
 *
 * Samples measure the main thread's wall time: a thread waiting in a system call (fsync) or for a
 * core on a busy machine is sampled as busy in the frame it waits in. Shares are shares of that
 * time; given the process's CPU time over the same window, the ms per registration are that CPU
 * time shared out by them (an estimate: it assumes waits fall evenly on the parts).
 */
import { type CpuProfile, selfTimes } from './profile-split.js';

/** The parts of a registration, in report order. */
export const REGISTRATION_PARTS = [
  'openpgp',
  'ledger',
  'invites',
  'http',
  'schemas',
  'server',
  'crypto',
  'gc',
  'program',
  'other',
] as const;
/** One of {@link REGISTRATION_PARTS}. */
export type RegistrationPart = (typeof REGISTRATION_PARTS)[number];

/** What each part holds, for the report. */
export const PART_LABELS: Record<RegistrationPart, string> = {
  openpgp: 'OpenPGP.js (src/pgp, openpgp)',
  ledger: 'ledger + SQLite (src/ledger, better-sqlite3)',
  invites: 'invitation + nonce checks (identity-proofs, registration-nonces)',
  http: 'HTTP + Fastify (node:http, fastify, its serializers)',
  schemas: 'schema checks (ajv, typebox, src/protocol/schemas)',
  server: 'other server code (src/server)',
  crypto: 'node:crypto, caller not on the stack (resumed after an await)',
  gc: 'garbage collector',
  program: 'V8 (program): native, compiler, outside JS',
  other: 'other',
};

/** Script URLs of each part, tried in order; the first match wins. */
const URL_PARTS: Array<[RegistrationPart, RegExp[]]> = [
  ['openpgp', [/\/node_modules\/openpgp\//, /\/src\/pgp\//]],
  ['ledger', [/\/src\/ledger\//, /\/node_modules\/better-sqlite3\//]],
  ['invites', [/\/src\/server\/(identity-proofs|registration-nonces)\.ts$/]],
  ['schemas', [/\/node_modules\/(ajv[^/]*|typebox|@sinclair\/typebox)\//, /\/src\/protocol\/schemas\//]],
  [
    'http',
    [
      /\/node_modules\/(fastify|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|fast-uri|secure-json-parse|proxy-addr|ipaddr\.js|@fastify\/[^/]+)\//,
      /^node:(_http_\w+|https?|net|stream|internal\/(http|net|stream_base_commons|streams\/|js_stream_socket))/,
    ],
  ],
  ['server', [/\/src\/server\//]],
];

/** Frames that pass their samples to their caller (see the module comment). */
const PASS_THROUGH: RegExp[] = [/^node:/, /\/node_modules\/@noble\//, /\/src\/protocol\/(?!schemas\/)/];

/** Crypto frames: a sample no part claims counts as `crypto` when one of these is on its stack. */
const CRYPTO = /^node:(internal\/)?crypto(\/|$)|\/src\/protocol\/crypto\/|\/node_modules\/@noble\//;

/** The part of one frame, or undefined when it passes its samples to its caller. */
function partOfFrame(functionName: string, url: string): RegistrationPart | undefined {
  // Validators that ajv compiles (new Function) have no URL and are named validateN.
  if (url === '') return /^validate\d*$/.test(functionName) ? 'schemas' : undefined;
  for (const [part, patterns] of URL_PARTS) if (patterns.some((p) => p.test(url))) return part;
  if (PASS_THROUGH.some((p) => p.test(url))) return undefined;
  return 'other';
}

/** A function with its time. */
export interface FunctionTime {
  fn: string;
  /** `path:line:column` (1-based, relative to `root` when under it), or `(native)`. */
  at: string;
  /** The part its samples counted for (a native function's caller decides). */
  part: RegistrationPart;
  /** Sampled main-thread time, ms. */
  ms: number;
  /** ms per registration (see {@link RegistrationProfile.msBasis}). */
  msPerRegistration: number;
  /** Share of busy time, 0…1. */
  share: number;
}

/** A registration profile, split. */
export interface RegistrationProfile {
  registrations: number;
  samples: number;
  sampledMs: number;
  idleMs: number;
  /** Main-thread time not idle, ms. */
  busyMs: number;
  /**
   * What `msPerRegistration` shares out: `process CPU` (the CPU time given, by share of busy
   * samples) or `sampled time` (busy main-thread time, waits included).
   */
  msBasis: 'process CPU' | 'sampled time';
  /** Per part: ms, ms per registration, share of busy time. */
  parts: Record<RegistrationPart, { ms: number; msPerRegistration: number; share: number }>;
  /** Heaviest functions by self time. */
  topSelf: FunctionTime[];
  /** Busy time by the innermost src/ file on the stack (what code of this project asked for it). */
  srcFiles: Array<{ file: string; ms: number; msPerRegistration: number; share: number }>;
  /**
   * Heaviest src/ functions by inclusive time (samples with the function anywhere on the stack).
   * Async functions count only up to their first await: later parts run from the microtask queue.
   */
  inclusiveSrc: FunctionTime[];
}

const round = (x: number, digits: number) => +x.toFixed(digits);

function shortUrl(url: string, root: string | undefined): string {
  let path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  if (root !== undefined) {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    if (path.startsWith(prefix)) path = path.slice(prefix.length);
  }
  const nm = path.lastIndexOf('/node_modules/');
  return nm >= 0 ? path.slice(nm + '/node_modules/'.length) : path;
}

/**
 * `path:line:column` of a frame, 1-based (a transpiled file may be one line long: the column tells
 * its functions apart).
 */
function where(f: CpuProfile['nodes'][number]['callFrame'], root: string | undefined): string {
  return `${shortUrl(f.url, root)}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
}

/**
 * Splits `profile`, taken over `registrations` registrations. `root` (the repository) is removed
 * from the front of file paths; `top` functions are listed; `cpuMs`, the process's CPU time over
 * the profile, is shared out by share of busy samples (without it: sampled time).
 */
export function splitRegistrationProfile(
  profile: CpuProfile,
  registrations: number,
  { top = 15, root, cpuMs }: { top?: number; root?: string; cpuMs?: number } = {},
): RegistrationProfile {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

  /** The stack of a node, innermost first. */
  const stackOf = (id: number) => {
    const stack = [];
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const node = byId.get(at);
      if (node) stack.push(node);
    }
    return stack;
  };

  const { self, samples: sampleCount, sampledUs } = selfTimes(profile);

  const partUs = Object.fromEntries(REGISTRATION_PARTS.map((p) => [p, 0])) as Record<
    RegistrationPart,
    number
  >;
  const selfUs = new Map<string, { fn: string; at: string; part: RegistrationPart; us: number }>();
  const fileUs = new Map<string, number>();
  const inclusiveUs = new Map<string, { fn: string; at: string; part: RegistrationPart; us: number }>();
  let idleUs = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url } = node.callFrame;
    if (url === '' && functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const stack = stackOf(id);
    let part: RegistrationPart;
    if (url === '' && functionName === '(garbage collector)') part = 'gc';
    else if (url === '' && functionName === '(program)') part = 'program';
    else {
      part = 'other';
      for (const n of stack) {
        const p = partOfFrame(n.callFrame.functionName, n.callFrame.url);
        if (p !== undefined) {
          part = p;
          break;
        }
      }
      if (part === 'other' && stack.some((n) => CRYPTO.test(n.callFrame.url))) part = 'crypto';
    }
    partUs[part] += us;
    const fn = functionName || '(anonymous)';
    const at = url === '' ? '(native)' : where(node.callFrame, root);
    const key = `${fn}\u0000${at}\u0000${part}`;
    const entry = selfUs.get(key) ?? { fn, at, part, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
    const src = stack.find((n) => /\/src\//.test(n.callFrame.url));
    const file = src ? shortUrl(src.callFrame.url, root) : '(no src/ frame)';
    fileUs.set(file, (fileUs.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (const n of stack) {
      if (!/\/src\//.test(n.callFrame.url)) continue;
      const f = n.callFrame;
      const k = `${f.functionName || '(anonymous)'}\u0000${where(f, root)}`;
      if (seen.has(k)) continue;
      seen.add(k);
      const e = inclusiveUs.get(k) ?? {
        fn: f.functionName || '(anonymous)',
        at: where(f, root),
        part: partOfFrame(f.functionName, f.url) ?? 'other',
        us: 0,
      };
      e.us += us;
      inclusiveUs.set(k, e);
    }
  }
  const busyUs = REGISTRATION_PARTS.reduce((s, p) => s + partUs[p], 0);
  const share = (us: number) => (busyUs === 0 ? 0 : round(us / busyUs, 4));
  const n = Math.max(1, registrations);
  const perReg = (us: number) =>
    round(cpuMs === undefined ? us / 1000 / n : busyUs === 0 ? 0 : ((us / busyUs) * cpuMs) / n, 4);
  const fnTimes = (m: Map<string, { fn: string; at: string; part: RegistrationPart; us: number }>) =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({
        fn: e.fn,
        at: e.at,
        part: e.part,
        ms: round(e.us / 1000, 1),
        msPerRegistration: perReg(e.us),
        share: share(e.us),
      }));
  return {
    registrations,
    samples: sampleCount,
    sampledMs: round(sampledUs / 1000, 1),
    idleMs: round(idleUs / 1000, 1),
    busyMs: round(busyUs / 1000, 1),
    msBasis: cpuMs === undefined ? 'sampled time' : 'process CPU',
    parts: Object.fromEntries(
      REGISTRATION_PARTS.map((p) => [
        p,
        { ms: round(partUs[p] / 1000, 1), msPerRegistration: perReg(partUs[p]), share: share(partUs[p]) },
      ]),
    ) as RegistrationProfile['parts'],
    topSelf: fnTimes(selfUs),
    srcFiles: [...fileUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, us]) => ({
        file,
        ms: round(us / 1000, 1),
        msPerRegistration: perReg(us),
        share: share(us),
      })),
    inclusiveSrc: fnTimes(inclusiveUs),
  };
}

/** Human lines for the summary on stderr. */
export function formatRegistrationProfile(p: RegistrationProfile): string[] {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`.padStart(7);
  const ms = (x: number) => x.toFixed(3).padStart(7);
  const fnLine = (f: FunctionTime) =>
    `    ${pct(f.share)} ${ms(f.msPerRegistration)} ms  ${f.part.padEnd(8)} ${f.fn}  ${f.at}`;
  return [
    `  main thread busy ${p.busyMs} ms of ${p.sampledMs} ms sampled (${p.samples} samples), ` +
      `${(p.busyMs / Math.max(1, p.registrations)).toFixed(3)} ms per registration; share, then ms per ` +
      `registration (${p.msBasis === 'process CPU' ? 'process CPU shared out by share' : 'sampled time'}):`,
    ...REGISTRATION_PARTS.map(
      (part) =>
        `    ${pct(p.parts[part].share)} ${ms(p.parts[part].msPerRegistration)} ms  ${PART_LABELS[part]}`,
    ),
    `  top ${p.topSelf.length} functions by self time (share, ms per registration, part):`,
    ...p.topSelf.map(fnLine),
    '  by the innermost src/ file on the stack:',
    ...p.srcFiles.map((f) => `    ${pct(f.share)} ${ms(f.msPerRegistration)} ms  ${f.file}`),
    '  src/ functions by inclusive time (up to their first await):',
    ...p.inclusiveSrc.map(fnLine),
  ];
}
