import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { ConnectionTracker } from '../src/connections.js';
import { adminServer, metricsServer, readinessServer } from '../src/http-endpoints.js';
import { Logger } from '../src/logger.js';
import { ZtunnelMetrics } from '../src/metrics.js';
import { splice } from '../src/splice.js';
import { logAccess, tcpLabels } from '../src/telemetry.js';
import { httpGet } from './helpers/mesh.js';
import { readAll } from './helpers/net.js';

const HOST = '127.0.12.1';

async function listen(server: Server): Promise<string> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return `${HOST}:${(server.address() as { port: number }).port}`;
}

describe('logger and access log', () => {
  it('writes key=value or JSON, quotes awkward values, and honours the level', () => {
    const lines: string[] = [];
    const now = () => new Date('2026-01-01T00:00:00Z');
    const kv = new Logger({ format: 'kv', write: (l) => lines.push(l), now });
    kv.info('x', 'hello', { a: 'plain', b: 'two words', c: '', d: 3, skip: undefined });
    kv.debug('x', 'hidden');
    expect(lines).toEqual(['2026-01-01T00:00:00.000Z info x hello a=plain b="two words" c="" d=3\n']);
    const json = new Logger({ format: 'json', level: 'debug', write: (l) => lines.push(l), now });
    logAccess(
      { logger: json, config: { accessLog: false } },
      { direction: 'outbound', srcAddr: 'x', dstAddr: 'y', mtls: false },
      { bytesSent: 0, bytesRecv: 0, durationMs: 0 },
    );
    logAccess(
      { logger: json },
      {
        direction: 'inbound',
        srcAddr: '127.0.0.1:1',
        dstAddr: '127.0.0.2:2',
        srcIdentity: 'spiffe://td/ns/a/sa/b',
        mtls: true,
      },
      { bytesSent: 1, bytesRecv: 2, durationMs: 3.4 },
    );
    expect(JSON.parse(lines[1] as string)).toEqual({
      time: '2026-01-01T00:00:00.000Z',
      level: 'info',
      scope: 'access',
      msg: 'connection complete',
      'src.addr': '127.0.0.1:1',
      'src.identity': 'spiffe://td/ns/a/sa/b',
      'dst.addr': '127.0.0.2:2',
      direction: 'inbound',
      bytes_sent: 1,
      bytes_recv: 2,
      duration: '3ms',
    });
  });
});

describe('splice', () => {
  it('carries bytes both ways, a half-close, and counts', async () => {
    const upstream = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      // Answer only after the client half-closed: the reverse direction must still be open.
      s.on('end', () => s.end(Buffer.concat([Buffer.from('got:'), ...chunks])));
    });
    const up = await listen(upstream);
    let spliced: Promise<Error | undefined> | undefined;
    const counters = { received: 0, sent: 0 };
    const proxy = createServer({ allowHalfOpen: true }, (down) => {
      const [h, p] = up.split(':') as [string, string];
      const u = connect({ host: h, port: Number(p), allowHalfOpen: true });
      spliced = splice(down, u, counters);
    });
    const px = await listen(proxy);
    const [h, p] = px.split(':') as [string, string];
    const c: Socket = connect({ host: h, port: Number(p), allowHalfOpen: true });
    await once(c, 'connect');
    c.end('abc');
    expect((await readAll(c)).toString()).toBe('got:abc');
    expect(await spliced).toBeUndefined();
    expect(counters).toEqual({ received: 3, sent: 7 });
    upstream.close();
    proxy.close();
  });
});

describe('http endpoints and metrics', () => {
  it('serves /config_dump, /logging, POST-only /quitquitquit, readiness and Prometheus text', async () => {
    const logger = new Logger({ write: () => {} });
    let quits = 0;
    const admin = adminServer({ logger, configDump: () => ({ ok: true }), onQuit: () => quits++ });
    const a = await listen(admin as unknown as Server);
    expect(JSON.parse((await httpGet(a, '/config_dump')).body)).toEqual({ ok: true });
    expect((await httpGet(a, '/quitquitquit')).status).toBe(405);
    expect((await httpGet(a, '/quitquitquit', 'POST')).status).toBe(200);
    expect(quits).toBe(1);
    expect((await httpGet(a, '/nope')).status).toBe(404);
    let ready = false;
    const rd = readinessServer(() => ({ ready, pending: ready ? [] : ['waiting for workloads'] }));
    const r = await listen(rd as unknown as Server);
    expect(await httpGet(r, '/healthz/ready')).toEqual({ status: 503, body: 'not ready:\n  waiting for workloads\n' });
    ready = true;
    expect((await httpGet(r, '/healthz/ready')).status).toBe(200);
    const metrics = new ZtunnelMetrics();
    const labels = tcpLabels({ direction: 'outbound', srcAddr: '', dstAddr: '', mtls: false }, 'source');
    const t = metrics.connectionOpened(labels, 'outbound');
    t.received = 10;
    const ms = metricsServer(metrics);
    const m = await listen(ms as unknown as Server);
    const text = (await httpGet(m, '/stats/prometheus')).body;
    expect(text).toContain('istio_tcp_received_bytes_total{reporter="source",source_workload="unknown"');
    expect(text).toMatch(/istio_tcp_received_bytes_total\{[^}]*connection_security_policy="unknown"\} 10/);
    expect(text).toMatch(/ztunnel_active_connections\{direction="outbound"\} 1/);
    for (const s of [admin, rd, ms]) s.close();
  });
});

describe('ConnectionTracker', () => {
  it('closes connections that policy now denies and cuts the rest at the drain deadline', async () => {
    const tracker = new ConnectionTracker();
    const destroyed: string[] = [];
    const info = { direction: 'inbound' as const, srcAddr: 'a', dstAddr: 'b', mtls: true };
    let allowed = true;
    tracker.add({
      info,
      stillAllowed: () => ({ allowed, reason: 'DENY p' }),
      destroy: (r) => destroyed.push(`in:${r}`),
    });
    const untrackOut = tracker.add({
      info: { ...info, direction: 'outbound' },
      destroy: (r) => destroyed.push(`out:${r}`),
    });
    expect(tracker.reevaluate()).toHaveLength(0);
    allowed = false;
    expect(tracker.reevaluate()).toHaveLength(1);
    expect(destroyed).toEqual(['in:denied after a policy change: DENY p']);
    untrackOut();
    expect(await tracker.drain(10)).toEqual({ cut: 1 });
    expect(destroyed[1]).toBe('in:drain deadline reached');
    const t2 = new ConnectionTracker();
    const untrack = t2.add({ info, destroy: () => {} });
    const drained = t2.drain(60_000);
    untrack();
    expect(await drained).toEqual({ cut: 0 });
  });
});
