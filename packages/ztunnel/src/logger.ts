/**
 * Structured logging: one line per event, as JSON or as key=value pairs. The level can be changed at runtime
 * (admin `/logging`). Callers never pass keys or tokens here; the logger does not try to guess secrets.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LogFormat = 'json' | 'kv';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to process.stdout. */
  write?: (line: string) => void;
  /** Clock for timestamps (tests). */
  now?: () => Date;
}

export class Logger {
  level: LogLevel;
  readonly format: LogFormat;
  private readonly sink: (line: string) => void;
  private readonly now: () => Date;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? 'info';
    this.format = options.format ?? 'kv';
    this.sink = options.write ?? ((line) => process.stdout.write(line));
    this.now = options.now ?? (() => new Date());
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.level];
  }

  error(scope: string, msg: string, fields?: LogFields): void {
    this.log('error', scope, msg, fields);
  }
  warn(scope: string, msg: string, fields?: LogFields): void {
    this.log('warn', scope, msg, fields);
  }
  info(scope: string, msg: string, fields?: LogFields): void {
    this.log('info', scope, msg, fields);
  }
  debug(scope: string, msg: string, fields?: LogFields): void {
    this.log('debug', scope, msg, fields);
  }

  log(level: LogLevel, scope: string, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const time = this.now().toISOString();
    if (this.format === 'json') {
      const record: Record<string, unknown> = { time, level, scope, msg };
      for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined && v !== null) record[k] = v;
      this.sink(`${JSON.stringify(record)}\n`);
      return;
    }
    let line = `${time} ${level} ${scope} ${msg}`;
    for (const [k, v] of Object.entries(fields ?? {})) {
      if (v === undefined || v === null) continue;
      line += ` ${k}=${formatKvValue(v)}`;
    }
    this.sink(`${line}\n`);
  }
}

/** Quote values that would break key=value parsing (spaces, quotes, equals signs, empty strings). */
function formatKvValue(v: string | number | boolean): string {
  const s = String(v);
  return s === '' || /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}
