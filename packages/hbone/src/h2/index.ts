/** Internal HTTP/2 engine of @ambient-ts/hbone (not part of the public API). */
import { H2ConnectionImpl } from './connection.js';
import type { H2Connection, H2ConnectionOptions } from './types.js';

export function createH2Connection(options: H2ConnectionOptions): H2Connection {
  return new H2ConnectionImpl(options);
}

export * from './types.js';
