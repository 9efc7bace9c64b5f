/**
 * The ztunnel's three small HTTP endpoints: admin (loopback only), readiness and Prometheus metrics.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isLogLevel, LOG_LEVELS, type Logger } from './logger.js';
import type { ZtunnelMetrics } from './metrics.js';

export interface AdminEndpointsOptions {
  logger: Logger;
  configDump: () => unknown;
  /** /quitquitquit: start a graceful shutdown. */
  onQuit: () => void;
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

function httpServer(routes: Record<string, Handler>): Server {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes[url.pathname];
    if (!route) {
      send(res, 404, `not found: ${url.pathname}\navailable: ${Object.keys(routes).join(' ')}\n`);
      return;
    }
    Promise.resolve(route(req, res, url)).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, `internal error: ${(err as Error).message}\n`);
      else res.destroy();
    });
  });
  // Admin clients are short-lived; never let an idle keep-alive connection hold shutdown back.
  server.keepAliveTimeout = 1000;
  return server;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function adminServer(opts: AdminEndpointsOptions): Server {
  return httpServer({
    '/': (_req, res) =>
      send(res, 200, 'ztunnel admin\n  /config_dump\n  /logging[?level=debug]\n  POST /quitquitquit\n'),
    '/config_dump': (_req, res) =>
      send(res, 200, `${JSON.stringify(opts.configDump(), null, 2)}\n`, 'application/json'),
    '/logging': (_req, res, url) => {
      const level = url.searchParams.get('level');
      if (level !== null) {
        if (!isLogLevel(level)) {
          send(res, 400, `unknown level ${JSON.stringify(level)}: use one of ${LOG_LEVELS.join(', ')}\n`);
          return;
        }
        const old = opts.logger.level;
        opts.logger.level = level;
        opts.logger.info('admin', 'log level changed', { from: old, to: level });
      }
      send(res, 200, `current log level is ${opts.logger.level}\n`);
    },
    '/quitquitquit': (req, res) => {
      if (req.method !== 'POST') {
        send(res, 405, 'use POST /quitquitquit\n');
        return;
      }
      send(res, 200, 'OK\n');
      opts.onQuit();
    },
  });
}

export function readinessServer(ready: () => { ready: boolean; pending: string[] }): Server {
  return httpServer({
    '/healthz/ready': (_req, res) => {
      const r = ready();
      if (r.ready) send(res, 200, 'ready\n');
      else send(res, 503, `not ready:\n  ${r.pending.join('\n  ')}\n`);
    },
  });
}

export function metricsServer(metrics: ZtunnelMetrics): Server {
  const scrape: Handler = async (_req, res) => send(res, 200, await metrics.text(), metrics.contentType);
  return httpServer({ '/metrics': scrape, '/stats/prometheus': scrape });
}
