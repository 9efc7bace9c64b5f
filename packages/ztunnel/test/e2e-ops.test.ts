import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:net';
import { docs, httpGet, Mesh, pod, splitHostPort, svc, type ZtunnelProcess } from './helpers/mesh.js';
import { dial, echoServer, readAll, readBytes, socksConnect } from './helpers/net.js';

// Node 1 = 127.0.51.x, node 2 = 127.0.52.x.
const N1 = '127.0.51.1';
const N2 = '127.0.52.1';
const CLIENT = '127.0.51.10';
const ECHO = '127.0.52.10';

jest.setTimeout(120_000);

describe('ztunnel end to end: control plane outage, certificate rotation, drain', () => {
  const mesh = new Mesh('ops');
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
        svc('echo', { vip: '10.96.51.1', ports: [{ port: 80, targetPort: echo.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-1', 'node-2']);
    // 80 s certificates: with the CA's one-minute backdating the rotation agent renews them within seconds.
    const opts = ['--cert-ttl', '80s', '--drain-timeout', '2s'];
    [z1, z2] = await Promise.all([mesh.startZtunnel('node-1', N1, opts), mesh.startZtunnel('node-2', N2, opts)]);
    await Promise.all([z1.waitFor((l) => l.msg === 'ready'), z2.waitFor((l) => l.msg === 'ready')]);
  });
  afterAll(async () => {
    await mesh.close();
    echo.server.close();
  });

  async function open() {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, CLIENT);
    expect(await socksConnect(s, 'echo.default.svc.cluster.local', 80)).toBe(0);
    return s;
  }

  async function roundTrip(): Promise<string> {
    const s = await open();
    s.end('round trip');
    return (await readAll(s)).toString();
  }

  it('keeps a long transfer intact across certificate renewals on both ends', async () => {
    const renewed = Promise.all([
      z1.next((l) => l.msg === 'certificate renewed'),
      z2.next((l) => l.msg === 'certificate renewed'),
    ]);
    const s = await open();
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let sentBytes = 0;
    let receivedBytes = 0;
    s.on('data', (c: Buffer) => {
      received.update(c);
      receivedBytes += c.length;
    });
    s.resume();
    const ended = once(s, 'end');
    let stop = false;
    void renewed.then(() => {
      stop = true;
    });
    let i = 0;
    while (!stop) {
      const chunk = Buffer.alloc(64 * 1024, i++ % 251);
      sent.update(chunk);
      sentBytes += chunk.length;
      if (!s.write(chunk)) await once(s, 'drain');
    }
    // One more megabyte after both renewals, then close our side.
    for (let k = 0; k < 16; k++) {
      const chunk = Buffer.alloc(64 * 1024, k);
      sent.update(chunk);
      sentBytes += chunk.length;
      if (!s.write(chunk)) await once(s, 'drain');
    }
    s.end();
    await ended;
    expect(receivedBytes).toBe(sentBytes);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    const [r1, r2] = await renewed;
    expect(r1.serial).not.toBe(r1.previous_serial);
    expect(r2.identity).toBe('spiffe://cluster.local/ns/default/sa/echo');
    // New connections use the renewed certificates.
    expect(await roundTrip()).toBe('round trip');
  });

  it('keeps working on its last configuration while the control plane is down, and resyncs when it returns', async () => {
    const lost = z1.next((l) => l.msg === 'control plane connection lost; keeping the last configuration');
    await mesh.cp?.close();
    await lost;
    expect(await roundTrip()).toBe('round trip');
    const reconnected = [
      z1.next((l) => l.msg === 'connected to the control plane'),
      z2.next((l) => l.msg === 'connected to the control plane'),
    ];
    await mesh.startControlPlane(['node-1', 'node-2'], mesh.cpPort);
    await Promise.all(reconnected);
    // A change made after the return reaches the ztunnels: deny everything, then allow again.
    const applied = z2.next((l) => l.msg === 'configuration updated' && l.type === 'Authorization');
    mesh.write(
      'deny.yaml',
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: default}\nspec: {}\n',
    );
    await applied;
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, CLIENT);
    expect(await socksConnect(s, 'echo.default.svc.cluster.local', 80)).toBe(2);
    const removed = z2.next((l) => l.msg === 'configuration updated' && l.type === 'Authorization');
    mesh.remove('deny.yaml');
    await removed;
    expect(await roundTrip()).toBe('round trip');
  });

  it('drains on SIGTERM: stops accepting, lets open connections finish, cuts the rest at the deadline, exits 0', async () => {
    const finishing = await open();
    const lingering = await open();
    const draining = z1.next((l) => l.msg === 'draining');
    z1.child.kill('SIGTERM');
    expect((await draining).open_connections).toBe(2);
    expect((await httpGet(z1.readiness, '/healthz/ready')).status).toBe(503);
    // New connections are refused: the SOCKS5 listener is closed.
    const [h, p] = splitHostPort(z1.socks5);
    await expect(dial(h, p, CLIENT)).rejects.toThrow(/ECONNREFUSED/);
    // The open one still works both ways and finishes normally.
    finishing.write('during drain');
    expect((await readBytes(finishing, 12)).toString()).toBe('during drain');
    finishing.end();
    await readAll(finishing);
    // The other is cut at the drain deadline; then the process exits cleanly.
    const lingeringEnd = readAll(lingering).catch(() => Buffer.alloc(0));
    const cut = z1.waitFor((l) => l.msg === 'drain deadline reached: connections cut');
    expect(await z1.exited).toBe(0);
    expect((await cut).cut).toBe(1);
    await lingeringEnd;
    expect(z1.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });
});
