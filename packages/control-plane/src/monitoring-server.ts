import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatIp } from '@ambient-ts/xds';

/** What the monitoring port serves; each handler returns the body (JSON unless it is a string). */
export interface MonitoringHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): boolean;
  configDump(): unknown;
  connections(): unknown;
  configErrors(): unknown;
}

/** The monitoring HTTP listener (15014): /metrics, /ready, /debug/config_dump, /debug/connections, /debug/config-errors. */
export class MonitoringServer {
  readonly #server: Server;
  readonly #handlers: MonitoringHandlers;
  #closed = false;

  constructor(handlers: MonitoringHandlers) {
    this.#handlers = handlers;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    // Debug pages are small; a slow client must not hold a socket forever.
    this.#server.requestTimeout = 30_000;
    this.#server.headersTimeout = 10_000;
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    try {
      switch (path) {
        case '/metrics': {
          const m = await this.#handlers.metrics();
          res.writeHead(200, { 'content-type': m.contentType }).end(m.body);
          return;
        }
        case '/ready':
        case '/healthz/ready': {
          const ok = this.#handlers.ready() && !this.#closed;
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'not ready\n');
          return;
        }
        case '/debug/config_dump':
          return json(res, this.#handlers.configDump());
        case '/debug/connections':
          return json(res, this.#handlers.connections());
        case '/debug/config-errors':
          return json(res, this.#handlers.configErrors());
        default:
          res
            .writeHead(404, { 'content-type': 'text/plain' })
            .end('not found: try /metrics, /ready, /debug/config_dump, /debug/connections, /debug/config-errors\n');
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${(err as Error).message}\n`);
    }
  }

  /** Stops listening and closes idle keep-alive connections. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  destroy(): void {
    this.#closed = true;
    this.#server.close();
    this.#server.closeAllConnections();
  }
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, replacer, 2)}\n`);
}

/** IP bytes print as text; Maps and Sets as objects and arrays. */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Uint8Array)
    return value.length === 4 || value.length === 16 ? formatIp(value) : Buffer.from(value).toString('base64');
  if (
    value &&
    typeof value === 'object' &&
    (value as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((value as { data?: unknown }).data)
  ) {
    return replacer(_key, Uint8Array.from((value as { data: number[] }).data));
  }
  return value;
}
