import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { CaClient } from '@ambient-ts/ca';
import { type HboneRequest, HboneServer } from '@ambient-ts/hbone';
import { docs, Mesh, pod, splitHostPort, svc, type ZtunnelProcess } from './helpers/mesh.js';
import { dial, echoServer, readAll, socksConnect } from './helpers/net.js';

// Node 1 = 127.0.41.x, node 2 = 127.0.42.x; a waypoint at 127.0.43.20; outside the mesh: 127.0.44.x.
const N1 = '127.0.41.1';
const N2 = '127.0.42.1';
const CLIENT = '127.0.41.10';
const ECHO = '127.0.42.10';
const WEB = '127.0.42.11';
const WAYPOINT = '127.0.43.20';
const OUTSIDE = '127.0.44.10';
const WAYPOINT_TOKEN = 'waypoint-bootstrap-token-0123456789';

const hasCurl = (() => {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

jest.setTimeout(60_000);

describe('ztunnel end to end: destinations (service, workload IP, waypoint, passthrough, local listener, curl)', () => {
  const mesh = new Mesh('routing');
  let z1: ZtunnelProcess;
  let z2: ZtunnelProcess;
  let echo: { server: Server; port: number };
  let outside: { server: Server; port: number };
  let web: HttpServer;
  let webPort: number;
  let waypoint: HboneServer;
  const waypointSeen: Array<{ authority: string; peer: string; forwarded?: string }> = [];

  beforeAll(async () => {
    echo = await echoServer(ECHO);
    outside = await echoServer(OUTSIDE);
    web = createHttpServer((req, res) => res.end(`hello ${req.headers.host} from web\n`));
    web.listen(0, WEB);
    await once(web, 'listening');
    webPort = (web.address() as { port: number }).port;
    mesh.write(
      'mesh.yaml',
      docs(
        pod('client', { node: 'node-1', ip: CLIENT }),
        pod('echo', { node: 'node-2', ip: ECHO }),
        pod('web', { node: 'node-2', ip: WEB }),
        pod('waypoint', {
          node: 'node-w',
          ip: WAYPOINT,
          labels: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
        }),
        svc('echo', { vip: '10.96.41.1', ports: [{ port: 80, targetPort: echo.port }] }),
        svc('web', { vip: '10.96.41.2', ports: [{ port: 80, targetPort: webPort }] }),
        svc('echo-wp', {
          vip: '10.96.41.3',
          selector: { app: 'echo' },
          ports: [{ port: 81, targetPort: echo.port }],
          labels: { 'istio.io/use-waypoint': 'waypoint' },
        }),
        svc('waypoint', {
          vip: '10.96.41.9',
          selector: { 'gateway.networking.k8s.io/gateway-name': 'waypoint' },
          ports: [{ port: 15008, targetPort: 15008, name: 'mesh' }],
        }),
        `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: default}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE}]
`,
      ),
    );
    // The waypoint stand-in gets its certificate from the mesh CA with its own bootstrap token.
    await mesh.startControlPlane(['node-1', 'node-2'], 0, [
      `- {token: ${WAYPOINT_TOKEN}, identity: "spiffe://cluster.local/ns/default/sa/waypoint", kind: waypoint}`,
    ]);
    [z1, z2] = await Promise.all([
      mesh.startZtunnel('node-1', N1, ['--local-listener', `${N1}:0=echo.default.svc.cluster.local:80`]),
      mesh.startZtunnel('node-2', N2),
    ]);
    await Promise.all([z1.waitFor((l) => l.msg === 'ready'), z2.waitFor((l) => l.msg === 'ready')]);
  });
  afterAll(async () => {
    await waypoint?.close();
    await mesh.close();
    echo.server.close();
    outside.server.close();
    web.close();
  });

  async function through(host: string, port: number, payload = 'data'): Promise<string> {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, CLIENT);
    const reply = await socksConnect(s, host, port);
    if (reply !== 0) {
      const why = await z1.waitFor((l) => l.scope === 'access' && l.error !== undefined && l['dst.addr'] !== undefined);
      return `refused ${reply}: ${String(z1.access().at(-1)?.error ?? why.error)}`;
    }
    s.end(payload);
    return (await readAll(s)).toString();
  }

  it('reaches a workload by its IP directly over HBONE', async () => {
    const inbound = z2.next((l) => l.scope === 'access' && l.direction === 'inbound');
    expect(await through(ECHO, echo.port, 'by ip')).toBe('by ip');
    expect(await inbound).toMatchObject({
      'dst.addr': `${ECHO}:${echo.port}`,
      'src.identity': 'spiffe://cluster.local/ns/default/sa/client',
    });
  });

  it('reaches a service by its VIP', async () => {
    expect(await through('10.96.41.1', 80, 'by vip')).toBe('by vip');
  });

  it('passes through a destination outside the mesh as plain TCP', async () => {
    const out = z1.next((l) => l.scope === 'access' && l['dst.addr'] === `${OUTSIDE}:${outside.port}`);
    expect(await through(OUTSIDE, outside.port, 'outside')).toBe('outside');
    const line = await out;
    expect(line['dst.hbone_addr']).toBeUndefined();
    expect(line['dst.identity']).toBeUndefined();
  });

  it('sends a service with a waypoint to the waypoint, authority = the original VIP:port', async () => {
    const ca = new CaClient({
      address: `127.0.0.1:${mesh.cpPort}`,
      trustBundle: () => readFileSync(join(mesh.stateDir, 'root-cert.pem')),
      token: WAYPOINT_TOKEN,
    });
    const cert = await ca.fetchCertificate('spiffe://cluster.local/ns/default/sa/waypoint');
    ca.close();
    waypoint = new HboneServer({
      credentials: cert,
      handler: async (req: HboneRequest) => {
        waypointSeen.push({
          authority: `${req.authority.host}:${req.authority.port}`,
          peer: req.peerIdentity.toString(),
          ...(req.forwarded?.host ? { forwarded: req.forwarded.host } : {}),
        });
        // A real waypoint would apply L7 policy and route; the stand-in forwards to the echo workload.
        const { connect } = await import('node:net');
        const up = connect({ host: ECHO, port: echo.port, allowHalfOpen: true });
        await once(up, 'connect');
        return up;
      },
    });
    await waypoint.listen(15008, WAYPOINT);
    expect(await through('echo-wp.default.svc.cluster.local', 81, 'via waypoint')).toBe('via waypoint');
    expect(waypointSeen).toEqual([
      {
        authority: '10.96.41.3:81',
        peer: 'spiffe://cluster.local/ns/default/sa/client',
        forwarded: 'echo-wp.default.svc.cluster.local',
      },
    ]);
    const line = await z1.waitFor(
      (l) => l.scope === 'access' && l['dst.service'] === 'echo-wp.default.svc.cluster.local',
    );
    expect(line).toMatchObject({
      'dst.hbone_addr': `${WAYPOINT}:15008`,
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/waypoint',
    });
  });

  it('takes connections on a per-service local listener, identified by source address', async () => {
    const [h, p] = splitHostPort((await z1.waitFor((l) => l.msg === 'started')).local_listeners as string);
    const s = await dial(h, p, CLIENT);
    s.end('local listener');
    expect((await readAll(s)).toString()).toBe('local listener');
    const stranger = await dial(h, p, '127.0.41.99');
    expect((await readAll(stranger).catch(() => Buffer.alloc(0))).toString()).toBe('');
  });

  (hasCurl ? it : it.skip)('carries curl --socks5-hostname (a client we did not write) through the mesh', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        'curl',
        [
          '-sS',
          '--max-time',
          '10',
          '--interface',
          CLIENT,
          '--socks5-hostname',
          z1.socks5,
          'http://web.default.svc.cluster.local/',
        ],
        (err, stdout, stderr) => (err ? reject(new Error(`curl failed: ${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(out).toBe('hello web.default.svc.cluster.local from web\n');
    const line = await z2.waitFor((l) => l.scope === 'access' && l['dst.workload'] === 'web');
    expect(line['src.identity']).toBe('spiffe://cluster.local/ns/default/sa/client');
  });
});
