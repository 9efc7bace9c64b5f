import type { Server } from 'node:net';
import { docs, httpGet, Mesh, pod, splitHostPort, svc, type ZtunnelProcess } from './helpers/mesh.js';
import { dial, echoServer, readAll, socksConnect } from './helpers/net.js';

// Node 1 = 127.0.21.x, node 2 = 127.0.22.x (unique to this file).
const N1 = '127.0.21.1';
const N2 = '127.0.22.1';
const CLIENT = '127.0.21.10';
const ECHO = '127.0.22.10';

jest.setTimeout(60_000);

describe('ztunnel end to end: two nodes, SOCKS5 in, HBONE across', () => {
  const mesh = new Mesh('basic');
  let z1: ZtunnelProcess;
  let z2: ZtunnelProcess;
  let echo: { server: Server; port: number };

  beforeAll(async () => {
    echo = await echoServer(ECHO);
    mesh.write(
      'mesh.yaml',
      docs(
        pod('client', { node: 'node-1', ip: CLIENT }),
        pod('echo', { node: 'node-2', ip: ECHO }),
        svc('echo', { vip: '10.96.21.1', ports: [{ port: 80, targetPort: echo.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-1', 'node-2']);
    [z1, z2] = await Promise.all([mesh.startZtunnel('node-1', N1), mesh.startZtunnel('node-2', N2)]);
    await Promise.all([z1.waitFor((l) => l.msg === 'ready'), z2.waitFor((l) => l.msg === 'ready')]);
  });
  afterAll(async () => {
    await mesh.close();
    echo.server.close();
  });

  it('is ready and reports it on /healthz/ready', async () => {
    expect(await httpGet(z1.readiness, '/healthz/ready')).toEqual({ status: 200, body: 'ready\n' });
  });

  it('carries a connection by service hostname through both ztunnels with identities on both ends', async () => {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, CLIENT);
    expect(await socksConnect(s, 'echo.default.svc.cluster.local', 80)).toBe(0);
    const inbound = z2.next((l) => l.scope === 'access' && l.direction === 'inbound');
    s.end('ping through the mesh');
    expect((await readAll(s)).toString()).toBe('ping through the mesh');
    const line = await inbound;
    expect(line).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/client',
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/echo',
      'src.workload': 'client',
      'dst.workload': 'echo',
      'dst.addr': `${ECHO}:${echo.port}`,
      'dst.hbone_addr': `${ECHO}:15008`,
      bytes_recv: 21,
      bytes_sent: 21,
    });
    const out = await z1.waitFor(
      (l) =>
        l.scope === 'access' && l.direction === 'outbound' && l['dst.service'] === 'echo.default.svc.cluster.local',
    );
    expect(out).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/client',
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/echo',
    });
  });

  it('exports Istio TCP metrics with source and destination reporters', async () => {
    const m1 = (await httpGet(z1.metrics, '/metrics')).body;
    const m2 = (await httpGet(z2.metrics, '/stats/prometheus')).body;
    expect(m1).toMatch(
      /istio_tcp_connections_opened_total\{reporter="source",source_workload="client",source_workload_namespace="default",source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/client"[^}]*destination_service="echo.default.svc.cluster.local"[^}]*connection_security_policy="mutual_tls"\} 1/,
    );
    expect(m2).toMatch(
      /istio_tcp_received_bytes_total\{reporter="destination"[^}]*destination_workload="echo"[^}]*\} 21/,
    );
    expect(m2).toContain('istio_tcp_connections_closed_total{reporter="destination"');
  });

  it('dumps config with certificates but never keys', async () => {
    const r = await httpGet(z2.admin, '/config_dump');
    expect(r.status).toBe(200);
    const dump = JSON.parse(r.body) as {
      certificates: Array<Record<string, string>>;
      workloads: Array<{ name: string }>;
      services: unknown[];
    };
    expect(dump.certificates).toEqual([
      expect.objectContaining({
        identity: 'spiffe://cluster.local/ns/default/sa/echo',
        state: 'available',
        serial: expect.any(String),
        notAfter: expect.any(String),
        issuer: expect.any(String),
      }),
    ]);
    expect(dump.workloads.map((w) => w.name).sort()).toEqual(['client', 'echo']);
    expect(r.body).not.toMatch(/PRIVATE KEY/);
    // Certificates only for its own node's workloads.
    const d1 = JSON.parse((await httpGet(z1.admin, '/config_dump')).body) as {
      certificates: Array<{ identity: string }>;
    };
    expect(d1.certificates.map((c) => c.identity)).toEqual(['spiffe://cluster.local/ns/default/sa/client']);
  });

  it('changes the log level through /logging and refuses a bad one', async () => {
    expect(await httpGet(z1.admin, '/logging?level=debug', 'POST')).toEqual({
      status: 200,
      body: 'current log level is debug\n',
    });
    expect((await httpGet(z1.admin, '/logging?level=loud', 'POST')).status).toBe(400);
    expect((await httpGet(z1.admin, '/logging?level=info', 'POST')).body).toBe('current log level is info\n');
  });

  it('refuses a source that is not a workload on its node', async () => {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, '127.0.21.99');
    expect(await socksConnect(s, 'echo.default.svc.cluster.local', 80)).toBe(2);
    const s2 = await dial(h, p, ECHO); // a workload, but on node 2
    expect(await socksConnect(s2, 'echo.default.svc.cluster.local', 80)).toBe(2);
    const line = await z1.waitFor((l) => l.scope === 'access' && String(l.error ?? '').includes('127.0.21.99'));
    expect(line.error).toMatch(/is not a workload on node node-1/);
  });

  it('refuses loops to its own ports and unknown mesh hostnames', async () => {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, CLIENT);
    expect(await socksConnect(s, h, p)).toBe(2);
    const s2 = await dial(h, p, CLIENT);
    expect(await socksConnect(s2, 'nope.default.svc.cluster.local', 80)).toBe(4);
  });

  it('prints no deprecation warning: no SNI is sent to a control plane addressed by IP (DEP0123)', () => {
    for (const z of [z1, z2]) expect(z.stderr.join('')).not.toMatch(/DEP0123|DeprecationWarning/);
  });
});
