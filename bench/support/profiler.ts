/**
 * A CPU profile of the calling process's main thread, through node:inspector's `Profiler` domain
 * (the same profile `node --cpu-prof` writes), started and stopped around one phase of a benchmark.
 * The benchmark server child answers the IPC messages "profile-start" and "profile-stop" with it
 * (auth-server.ts); bench-server.ts asks for them. The process CPU time over the same window is
 * returned too: it includes threads the profile does not see (libuv's pool, GC helpers).
 */

import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';
import type { CpuProfile } from './profile-split.js';

/** CPU time spent while a profile ran, ms. */
export interface ProfileCpu {
  /** The whole process: every thread, the profiler's own sampling thread included. */
  processCpuMs: number;
  /** The main thread alone (Linux /proc; undefined elsewhere): the thread the profile samples. */
  mainThreadCpuMs: number | undefined;
}

/** A running profile. */
export interface RunningProfile {
  /** Stops profiling: the profile, and the CPU time spent since the start. */
  stop(): Promise<{ profile: CpuProfile } & ProfileCpu>;
}

/**
 * CPU time of this process's main thread so far, ms, from Linux /proc: the thread's schedstat
 * (nanoseconds on a CPU), else its stat (utime + stime, 10 ms ticks); undefined elsewhere.
 */
export function mainThreadCpuMs(): number | undefined {
  const task = `/proc/self/task/${process.pid}`;
  try {
    return Number(readFileSync(`${task}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    try {
      const stat = readFileSync(`${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime, proc(5) fields 14 and 15, in clock ticks (100 per second on Linux).
      return (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      return undefined;
    }
  }
}

/** Starts profiling this process's main thread, one sample every `intervalUs` µs (V8's default 1,000). */
export async function startCpuProfile(intervalUs = 1000): Promise<RunningProfile> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpuMs();
  return {
    async stop() {
      // Before the profile is built, which costs CPU too.
      const cpu = process.cpuUsage(cpu0);
      const main = mainThreadCpuMs();
      const { profile } = await session.post('Profiler.stop');
      await session.post('Profiler.disable');
      session.disconnect();
      return {
        profile: mapToSources(profile as CpuProfile),
        processCpuMs: (cpu.user + cpu.system) / 1000,
        mainThreadCpuMs: main === undefined || main0 === undefined ? undefined : +(main - main0).toFixed(1),
      };
    },
  };
}

/**
 * Rewrites the positions of `profile`'s frames from the code V8 ran to the sources, where a source
 * map is loaded (tsx runs TypeScript compiled to one line per file, with an inline source map), so
 * `url:line` points into the .ts file. Frames without a source map keep their positions. Mutates
 * and returns `profile`.
 */
export function mapToSources(profile: CpuProfile): CpuProfile {
  const maps = new Map<string, ReturnType<typeof findSourceMap>>();
  for (const { callFrame: f } of profile.nodes) {
    if (!f.url.startsWith('file://') || f.lineNumber < 0) continue;
    if (!maps.has(f.url)) maps.set(f.url, findSourceMap(f.url));
    const entry = maps.get(f.url)?.findEntry(f.lineNumber, f.columnNumber);
    if (entry === undefined || !('originalLine' in entry)) continue;
    f.lineNumber = entry.originalLine;
    f.columnNumber = entry.originalColumn;
  }
  return profile;
}
