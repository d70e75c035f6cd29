/** Parses durations such as `60s`, `15m`, `24h`, `7d` (a bare number is seconds). */
import { KlError } from '../protocol/errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds in `text`. @throws KlError `KL_BAD_INPUT` */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new KlError('KL_BAD_INPUT', `${option} must be a duration such as 60s, 15m, 24h or 7d`);
  const ms = Number(m[1]) * UNITS[m[2] ?? 's']!;
  if (!Number.isFinite(ms) || ms <= 0 || ms > 366 * 86_400_000)
    throw new KlError('KL_BAD_INPUT', `${option} is out of range`);
  return Math.round(ms);
}
