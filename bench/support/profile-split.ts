/**
 * Splits a V8 CPU profile (the `.cpuprofile` format of the inspector's `Profiler` domain) into the
 * groups the benchmarks report (bench/README.md, "Profile split"): where a server's main thread spent
 * its busy time. Pure: no I/O.
 *
 * Self time of a sample is the interval from its timestamp to the next one (the last sample runs to
 * the profile's end), as Chrome DevTools counts it. A frame is grouped by its script URL. A native
 * frame (no URL: C++ bindings such as OpenSSL jobs or better-sqlite3 statements, and functions
 * compiled at run time such as ajv's validators) takes the group of its nearest caller, so OpenSSL
 * work entered from node:crypto counts as `crypto` and a SQLite step entered from src/ledger as
 * `ledger`; so do Node's general-purpose internals (node:buffer, node:events, node:internal/util…),
 * which serve whoever called them. V8 builtins (JSON.parse, JSON.stringify…) have no frame of their
 * own: they count in the group of the JavaScript function that called them. V8's own nodes:
 * `(garbage collector)` is `gc`, `(program)` (V8 and libuv outside JavaScript) is `other`, `(idle)`
 * is not busy time. What a frame at the top of the stack leaves unclaimed is `other`.
 */

/** The frame of a profile node (inspector `Runtime.CallFrame`). */
export interface CpuCallFrame {
  functionName: string;
  scriptId: string;
  url: string;
  /** 0-based. */
  lineNumber: number;
  /** 0-based. */
  columnNumber: number;
}

/** A node of the call tree (inspector `Profiler.ProfileNode`). */
export interface CpuProfileNode {
  id: number;
  callFrame: CpuCallFrame;
  hitCount?: number;
  children?: number[];
}

/** A CPU profile (inspector `Profiler.Profile`); times in microseconds. */
export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  /** The node id of each sample. */
  samples?: number[];
  /** Time since the previous sample (the first: since `startTime`), µs. */
  timeDeltas?: number[];
}

/** The groups of a split, in report order. */
export const PROFILE_GROUPS = ['openpgp', 'crypto', 'ledger', 'framing', 'http', 'gc', 'other'] as const;
/** One group of {@link PROFILE_GROUPS}. */
export type ProfileGroup = (typeof PROFILE_GROUPS)[number];

/**
 * Which script URLs belong to which group, tried in this order (the first match wins). URLs are
 * matched as the profiler reports them: `file:///…/node_modules/x/…`, `node:internal/…`.
 */
const URL_GROUPS: Array<[Exclude<ProfileGroup, 'gc' | 'other'>, RegExp[]]> = [
  ['openpgp', [/\/node_modules\/openpgp\//, /\/src\/pgp\//]],
  [
    'crypto',
    [
      /^node:(internal\/)?crypto(\/|$)/,
      /\/node_modules\/@noble\//,
      // The project's thin wrappers over node:crypto (the Node crypto backend, SHA-256, X25519, HKDF,
      // the resume HMAC).
      /\/src\/protocol\/crypto\//,
      /\/src\/protocol\/(hash|x25519|key-schedule|resume)\.ts$/,
    ],
  ],
  ['ledger', [/\/src\/ledger\//, /\/node_modules\/better-sqlite3\//]],
  [
    'framing',
    [
      /\/node_modules\/ws\//,
      /\/node_modules\/@fastify\/websocket\//,
      /\/node_modules\/(bufferutil|utf-8-validate)\//,
      /\/node_modules\/ajv[^/]*\//,
      /\/src\/protocol\/schemas\//,
      // Frames, the session channel, and the encodings of what goes on the wire (canonical JSON,
      // signed statements, byte codecs).
      /\/src\/protocol\/(frame|channel|canonical-json|statements|bytes)\.ts$/,
    ],
  ],
  [
    'http',
    [
      /\/node_modules\/(fastify|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|fast-uri)\//,
      /\/node_modules\/@fastify\/(?!websocket\/)/,
      // node:http and the sockets under it and under ws (net, their streams, stream_base writes).
      /^node:(_http_\w+|https?|net|stream|internal\/(http|net|stream_base_commons|streams\/|js_stream_socket))/,
    ],
  ],
];

/**
 * The group of a script URL, or undefined when the frame takes its caller's: a native frame (no
 * URL) or a Node internal outside every group.
 */
export function groupOfUrl(url: string): ProfileGroup | undefined {
  if (url === '') return undefined;
  for (const [group, patterns] of URL_GROUPS) if (patterns.some((p) => p.test(url))) return group;
  return url.startsWith('node:') ? undefined : 'other';
}

/** One function among the heaviest by self time. */
export interface TopFunction {
  /** Function name (`(anonymous)` when it has none). */
  fn: string;
  /**
   * `path:line` (1-based; path relative to the repository when under it). A native frame:
   * `(native) from fn path:line`, its nearest caller outside Node's internals (where the work was
   * asked for), or `(native)` without one.
   */
  at: string;
  group: ProfileGroup;
  selfMs: number;
  /** Share of busy time, 0…1. */
  share: number;
}

/** Time of one group. */
export interface GroupTime {
  ms: number;
  /** Share of busy time, 0…1. */
  share: number;
}

/** A CPU profile split by group. */
export interface ProfileSplit {
  /** Samples taken. */
  samples: number;
  /** From the first to the end of the profile, ms. */
  sampledMs: number;
  /** Of which the thread was idle (waiting in the event loop), ms. */
  idleMs: number;
  /** Sampled minus idle: JavaScript, native calls, GC and `(program)` (V8 and libuv outside JS), ms. */
  busyMs: number;
  /** Busy time per group; the shares add up to 1 (rounding aside). */
  groups: Record<ProfileGroup, GroupTime>;
  /** The heaviest functions by self time, heaviest first. */
  top: TopFunction[];
}

const round = (x: number, digits: number) => +x.toFixed(digits);

/**
 * Self time per profile node, µs: each sample counts until the next one (the last until the
 * profile's end), so the times add up to the sampled span (`sampledUs`).
 */
export function selfTimes(profile: CpuProfile): {
  self: Map<number, number>;
  samples: number;
  sampledUs: number;
} {
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let t = profile.startTime;
  const stamps = samples.map((_, i) => {
    t += Math.max(0, deltas[i] ?? 0);
    return t;
  });
  for (let i = 0; i < samples.length; i++) {
    const until = i + 1 < samples.length ? stamps[i + 1]! : Math.max(profile.endTime, stamps[i]!);
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (until - stamps[i]!));
  }
  const sampledUs = samples.length === 0 ? 0 : Math.max(profile.endTime, stamps.at(-1)!) - stamps[0]!;
  return { self, samples: samples.length, sampledUs };
}

/**
 * Splits `profile` into groups of busy time and lists the `top` heaviest functions by self time.
 * `root` (a file path, e.g. the repository) is removed from the front of `file://` URLs in `top`.
 */
export function splitProfile(profile: CpuProfile, { top = 20, root }: { top?: number; root?: string } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Group of every node: its URL's, or its caller's for a native frame; the special V8 nodes apart.
  const groupOf = new Map<number, ProfileGroup | 'idle'>();
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const resolve = (id: number): ProfileGroup | 'idle' => {
    const known = groupOf.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    let g: ProfileGroup | 'idle';
    if (node === undefined) g = 'other';
    else {
      const { functionName, url } = node.callFrame;
      if (url === '' && functionName === '(idle)') g = 'idle';
      else if (url === '' && functionName === '(garbage collector)') g = 'gc';
      else if (url === '' && functionName.startsWith('('))
        g = 'other'; // (program), (root)
      else {
        const own = groupOfUrl(url);
        const parent = parentOf.get(id);
        const inherited = parent === undefined ? 'other' : resolve(parent);
        g = own ?? (inherited === 'idle' || inherited === 'gc' ? 'other' : inherited);
      }
    }
    groupOf.set(id, g);
    return g;
  };

  /** The nearest caller of node `id` with a script outside Node's internals, as a list of 0 or 1. */
  const callerOf = (id: number): CpuCallFrame[] => {
    for (let p = parentOf.get(id); p !== undefined; p = parentOf.get(p)) {
      const url = byId.get(p)?.callFrame.url ?? '';
      if (url !== '' && !url.startsWith('node:')) return [byId.get(p)!.callFrame];
    }
    return [];
  };

  const { self, samples: sampleCount, sampledUs } = selfTimes(profile);

  const groupUs = Object.fromEntries(PROFILE_GROUPS.map((g) => [g, 0])) as Record<ProfileGroup, number>;
  let idleUs = 0;
  const fnUs = new Map<string, { fn: string; at: string; group: ProfileGroup; us: number }>();
  for (const [id, us] of self) {
    const g = resolve(id);
    if (g === 'idle') {
      idleUs += us;
      continue;
    }
    groupUs[g] += us;
    const f = byId.get(id)?.callFrame;
    const fn = f?.functionName || '(anonymous)';
    const at =
      f === undefined
        ? '(native)'
        : f.url !== ''
          ? position(f, root)
          : `(native)${callerOf(id).map((c) => ` from ${c.functionName || '(anonymous)'} ${position(c, root)}`)}`;
    const key = `${fn}\u0000${at}\u0000${g}`;
    const entry = fnUs.get(key) ?? { fn, at, group: g, us: 0 };
    entry.us += us;
    fnUs.set(key, entry);
  }
  const busyUs = PROFILE_GROUPS.reduce((s, g) => s + groupUs[g], 0);
  const share = (us: number) => (busyUs === 0 ? 0 : round(us / busyUs, 4));
  const split: ProfileSplit = {
    samples: sampleCount,
    sampledMs: round(sampledUs / 1000, 1),
    idleMs: round(idleUs / 1000, 1),
    busyMs: round(busyUs / 1000, 1),
    groups: Object.fromEntries(
      PROFILE_GROUPS.map((g) => [g, { ms: round(groupUs[g] / 1000, 1), share: share(groupUs[g]) }]),
    ) as Record<ProfileGroup, GroupTime>,
    top: [...fnUs.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({
        fn: e.fn,
        at: e.at,
        group: e.group,
        selfMs: round(e.us / 1000, 1),
        share: share(e.us),
      })),
  };
  return split;
}

/** `path:line` of a frame (1-based line). */
function position(f: CpuCallFrame, root: string | undefined): string {
  return `${shortUrl(f.url, root)}:${f.lineNumber + 1}`;
}

/** `url` without `file://` and `root/`, for reading. */
function shortUrl(url: string, root: string | undefined): string {
  let path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  if (root !== undefined) {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    if (path.startsWith(prefix)) path = path.slice(prefix.length);
  }
  return path;
}

/**
 * Each group's share of busy time and its milliseconds per operation (e.g. per login):
 * `share × totalMs / operations`. `totalMs` is what the shares divide: by default the sampled busy
 * time, a wall-clock measure that also counts time the thread was ready but not scheduled; pass
 * the profiled thread's CPU time instead for CPU per operation.
 */
export function perOperation(split: ProfileSplit, operations: number, totalMs = split.busyMs) {
  return Object.fromEntries(
    PROFILE_GROUPS.map((g) => [
      g,
      {
        share: split.groups[g].share,
        msPerOp: round((split.groups[g].share * totalMs) / Math.max(1, operations), 3),
      },
    ]),
  ) as Record<ProfileGroup, { share: number; msPerOp: number }>;
}

/**
 * Human lines for a summary: the split (share, ms per operation as {@link perOperation} counts it
 * with `totalMs`) and the top functions.
 */
export function formatSplit(
  split: ProfileSplit,
  operations: number,
  { unit = 'login', totalMs = split.busyMs }: { unit?: string; totalMs?: number } = {},
): string[] {
  const per = perOperation(split, operations, totalMs);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  return [
    ...PROFILE_GROUPS.map(
      (g) => `    ${g.padEnd(8)} ${pct(per[g].share).padStart(7)}  ${per[g].msPerOp.toFixed(3)} ms/${unit}`,
    ),
    `  top ${split.top.length} functions by self time (share of busy time, sampled ms):`,
    ...split.top.map(
      (f) =>
        `    ${pct(f.share).padStart(7)} ${f.selfMs.toFixed(1).padStart(8)} ms  ${f.group.padEnd(8)} ${f.fn}  ${f.at}`,
    ),
  ];
}
