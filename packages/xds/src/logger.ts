/** Structured logger: a message plus fields. Nothing secret (keys, tokens) is ever passed to it. */
export interface XdsLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const noop = (): void => {};

/** The default: discard. Pass your own logger to see protocol events (NACKs, disconnects). */
export const silentLogger: XdsLogger = { debug: noop, info: noop, warn: noop, error: noop };
