import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Logger } from '../src/logger.js';
import type { OriginalDstLookup } from '../src/outbound-capture.js';
import { Ztunnel } from '../src/ztunnel.js';
import { LogTap } from './helpers/log-tap.js';
import { docs, Mesh, pod, splitHostPort, svc } from './helpers/mesh.js';
import { dial, readAll } from './helpers/net.js';

// Plaintext inbound after iptables REDIRECT, on loopback: node 1's ztunnel (127.0.113.1, in this process) takes
// plaintext on one listener bound to the node address, as REDIRECT delivers it, and the test plays the kernel's
// part by injecting each connection's original destination. Everything after that (which workload, which port,
// policy, the connection to the app) is the real path. The app `web` listens on two ports, only one of which a
// service names; `remote` lives on node 2.
const N1 = '127.0.113.1';
const WEB = '127.0.113.10';
const OUTSIDER = '127.0.113.50';
const REMOTE = '127.0.114.10';

jest.setTimeout(60_000);

/** A server that answers `<tag> <bytes received>` once the client ends, so the test knows which port it reached. */
async function taggedServer(host: string, tag: string): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s: Socket) => {
    s.on('error', () => {});
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      got += c;
    });
    s.once('end', () => s.end(`${tag} ${got}`));
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

describe('plaintext inbound takes its target from the original destination', () => {
  const mesh = new Mesh('inbound-capture');
  const log = new LogTap();
  let served: { server: Server; port: number };
  let unlisted: { server: Server; port: number };
  let z: Ztunnel;
  // What the "kernel" reports for the next plaintext connection; a function so a test can also make it throw.
  let original: () => { address: string; port: number; family: 4 | 6 } = () => {
    throw new Error('not redirected');
  };
  const lookups: string[] = [];
  const injected: OriginalDstLookup = {
    support: () => ({ available: true }),
    lookup: (socket) => {
      lookups.push(`${socket.remoteAddress}:${socket.remotePort}`);
      return original();
    },
  };

  function config(hbonePort = 15208) {
    return mesh.ztunnelConfig('node-1', N1, [
      '--inbound-bind',
      N1,
      '--hbone-port',
      String(hbonePort),
      '--plaintext-port',
      '0',
    ]);
  }

  /** Resolves with the next log line (after this call) that matches. */
  function nextLog(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const parse = (line: string) => JSON.parse(line) as Record<string, unknown>;
    return log.next((line) => match(parse(line))).then(parse);
  }

  beforeAll(async () => {
    served = await taggedServer(WEB, 'served');
    unlisted = await taggedServer(WEB, 'unlisted');
    mesh.write(
      'mesh.yaml',
      docs(
        pod('web', { node: 'node-1', ip: WEB }),
        pod('remote', { node: 'node-2', ip: REMOTE }),
        svc('web', { vip: '10.96.113.1', ports: [{ port: 80, targetPort: served.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-1']);
    z = await Ztunnel.start({
      config: config(),
      logger: new Logger({ format: 'json', write: log.write }),
      originalDst: injected,
    });
    await z.whenReady();
  });
  afterAll(async () => {
    await z?.close();
    served?.server.close();
    unlisted?.server.close();
    await mesh.close();
  });

  /**
   * One plaintext round trip through the node's plaintext listener from `from`: what came back ('' when refused)
   * and the connection's access line. The line is written when the splice finishes, which can be after the
   * client sees the end, so it is awaited rather than read from the log.
   */
  async function plain(from: string, payload = 'hi'): Promise<{ reply: string; access: Record<string, unknown> }> {
    const access = nextLog((l) => l.scope === 'access');
    const [host, port] = splitHostPort(z.addresses().plaintext[0] as string);
    const s = await dial(host, port, from);
    s.end(payload);
    const reply = (await readAll(s).catch(() => Buffer.alloc(0))).toString();
    return { reply, access: await access };
  }

  it('listens for plaintext on the node address, not on the workloads', () => {
    expect(z.addresses().plaintext).toEqual([expect.stringMatching(/^127\.0\.113\.1:\d+$/)]);
  });

  it('reaches the pod and port the client asked for, including a port no service names', async () => {
    original = () => ({ address: WEB, port: served.port, family: 4 });
    const one = await plain(OUTSIDER, 'one');
    expect(one.reply).toBe('served one');
    original = () => ({ address: WEB, port: unlisted.port, family: 4 });
    const two = await plain(OUTSIDER, 'two');
    expect(two.reply).toBe('unlisted two');
    expect([one.access, two.access].map((l) => [l['dst.addr'], l['dst.workload'], l.error])).toEqual([
      [`${WEB}:${served.port}`, 'web', undefined],
      [`${WEB}:${unlisted.port}`, 'web', undefined],
    ]);
    expect(one.access['src.addr']).toMatch(/^127\.0\.113\.50:\d+$/);
    expect(one.access['src.identity']).toBeUndefined();
  });

  it('refuses an original destination that is no workload on this node', async () => {
    original = () => ({ address: REMOTE, port: 8080, family: 4 });
    expect(await plain(OUTSIDER)).toMatchObject({
      reply: '',
      access: { error: `no local workload has address ${REMOTE}` },
    });
  });

  it('refuses an original destination that is one of its own listeners', async () => {
    original = () => ({ address: WEB, port: 15208, family: 4 });
    expect(await plain(OUTSIDER)).toMatchObject({
      reply: '',
      access: { error: `original destination ${WEB}:15208 is a ztunnel listener` },
    });
  });

  it('falls back to the local address when the connection was not redirected', async () => {
    original = () => {
      throw new Error('ERR_ORIGINAL_DST_NOT_FOUND');
    };
    const before = lookups.length;
    const refused = { reply: '', access: { error: `no local workload has address ${N1}` } };
    expect(await plain(OUTSIDER)).toMatchObject(refused);
    expect(lookups.length).toBe(before + 1);
    // Tracked but not rewritten: the original destination is the listener itself.
    const [, port] = splitHostPort(z.addresses().plaintext[0] as string);
    original = () => ({ address: N1, port, family: 4 });
    expect(await plain(OUTSIDER)).toMatchObject(refused);
  });

  const policyUpdate = (l: Record<string, unknown>) => l.msg === 'configuration updated' && l.type === 'Authorization';
  const webUpdate = (l: Record<string, unknown>) =>
    l.msg === 'configuration updated' && l.type === 'Address' && String(l.updated ?? '').includes('web');

  it('refuses redirected plaintext under STRICT PeerAuthentication, as for any plaintext', async () => {
    original = () => ({ address: WEB, port: served.port, family: 4 });
    // STRICT arrives as a policy and reaches the workload through its policy list: wait for both.
    const applied = Promise.all([nextLog(policyUpdate), nextLog(webUpdate)]);
    mesh.write(
      'strict.yaml',
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec: {mtls: {mode: STRICT}}\n',
    );
    await applied;
    const denied = await plain(OUTSIDER);
    expect(denied.reply).toBe('');
    expect(String(denied.access.error)).toMatch(/^denied by policy/);
    const removed = Promise.all([nextLog(policyUpdate), nextLog(webUpdate)]);
    mesh.remove('strict.yaml');
    await removed;
    expect((await plain(OUTSIDER, 'again')).reply).toBe('served again');
  });

  it('without original destinations (no addon) takes the local address and never asks', async () => {
    const asked: string[] = [];
    let sawAccess: (line: string) => void = () => {};
    const accessLine = new Promise<string>((resolve) => {
      sawAccess = resolve;
    });
    const other = await Ztunnel.start({
      config: config(15209),
      logger: new Logger({
        format: 'json',
        write: (l) => {
          if ((JSON.parse(l) as Record<string, unknown>).scope === 'access') sawAccess(l);
        },
      }),
      originalDst: {
        support: () => ({ available: false, reason: 'test: no addon' }),
        lookup: () => {
          asked.push('lookup');
          return { address: WEB, port: served.port, family: 4 };
        },
      },
    });
    try {
      await other.whenReady();
      const [host, port] = splitHostPort(other.addresses().plaintext[0] as string);
      const s = await dial(host, port, OUTSIDER);
      s.end('x');
      expect((await readAll(s).catch(() => Buffer.alloc(0))).length).toBe(0);
      expect(asked).toEqual([]);
      expect(JSON.parse(await accessLine)).toMatchObject({ error: `no local workload has address ${N1}` });
    } finally {
      await other.close();
    }
  });
});
