import { CaError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `15m`, `1h`, `24h`, `90d`, `1h30m` (or a bare number of seconds) into milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    consumed += m[0].length;
  }
  if (consumed === 0 || consumed !== s.length) {
    throw new CaError(
      'ERR_TTL_INVALID',
      `${JSON.stringify(text)} is not a duration: write e.g. 90s, 15m, 1h, 24h or 30d`,
    );
  }
  return total;
}

/** `36h` → "1d12h", for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
