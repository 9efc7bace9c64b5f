import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import type { Server } from 'node:net';
import { originalDstSupport } from '@ambient-ts/original-dst';
import * as dns from 'dns-packet';
import { Logger } from '../src/logger.js';
import type { OriginalDstLookup } from '../src/outbound-capture.js';
import { Ztunnel } from '../src/ztunnel.js';
import { LogTap } from './helpers/log-tap.js';
import { docs, Mesh, pod, splitHostPort, svc } from './helpers/mesh.js';
import { dial, echoServer, readAll, readBytes } from './helpers/net.js';

// Node 1 (127.0.111.x) runs in process with the capture listener and the DNS proxy; node 2 (127.0.112.x) is a
// real ztunnel process serving the echo workload. Without iptables on loopback, the original destination is
// injected: the test plays the kernel's part, everything after it (source workload, resolution, HBONE) is real.
const N1 = '127.0.111.1';
const CLIENT = '127.0.111.10';
const N2 = '127.0.112.1';
const ECHO = '127.0.112.10';
const VIP = '10.96.111.1';
// A node-1 pod that comes and goes, so its address is no longer a ztunnel listener once it is gone.
const GONE = '127.0.111.20';

jest.setTimeout(60_000);

function config(mesh: Mesh, extra: string[]) {
  return mesh.ztunnelConfig('node-1', N1, extra);
}

describe('ztunnel outbound capture and DNS proxy (loopback)', () => {
  const mesh = new Mesh('capture');
  let echo: { server: Server; port: number };
  const log = new LogTap();
  let z1: Ztunnel;
  let target = { address: VIP, port: 80, family: 4 as const };
  const injected: OriginalDstLookup = {
    support: () => ({ available: true }),
    lookup: () => target,
  };

  /** Resolves with the next log line of z1 (after this call) that matches. */
  function nextLine(match: (line: string) => boolean): Promise<string> {
    return log.next(match);
  }

  beforeAll(async () => {
    echo = await echoServer(ECHO);
    mesh.write(
      'mesh.yaml',
      docs(
        pod('client', { node: 'node-1', ip: CLIENT }),
        pod('echo', { node: 'node-2', ip: ECHO }),
        svc('echo', { vip: VIP, ports: [{ port: 80, targetPort: echo.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-1', 'node-2']);
    const z2 = await mesh.startZtunnel('node-2', N2);
    await z2.waitFor((l) => l.msg === 'ready');
    z1 = await Ztunnel.start({
      config: config(mesh, [
        '--capture-outbound',
        `${N1}:0`,
        '--dns-proxy',
        `${N1}:0`,
        '--dns-upstream',
        '127.0.0.1:9',
      ]),
      logger: new Logger({ write: log.write }),
      originalDst: injected,
    });
    await z1.whenReady();
  });
  afterAll(async () => {
    await z1?.close();
    echo?.server.close();
    await mesh.close();
  });

  it('sends a captured connection to its original destination (a VIP) over HBONE', async () => {
    const [host, port] = splitHostPort(z1.addresses().captureOutbound);
    const s = await dial(host, port, CLIENT);
    s.write('hello through capture');
    expect((await readBytes(s, 21)).toString()).toBe('hello through capture');
    s.end();
    await readAll(s);
    expect(log.lines.join('')).toMatch(/dst\.service=echo\.default\.svc\.cluster\.local/);
  });

  it('refuses a captured connection from an address that is no workload on the node', async () => {
    const [host, port] = splitHostPort(z1.addresses().captureOutbound);
    const s = await dial(host, port, N1);
    const data = await readAll(s);
    expect(data.length).toBe(0);
  });

  it('forgets both inbound listeners of a workload that left, so its address is no longer refused as one', async () => {
    const [host, port] = splitHostPort(z1.addresses().captureOutbound);
    const plaintextPort = z1.config.ports.plaintext;
    /** One captured connection to GONE's plaintext port: the first log line that tells what became of it. */
    async function captured(): Promise<string> {
      target = { address: GONE, port: plaintextPort, family: 4 };
      const outcome = nextLine((l) => l.includes('is a ztunnel listener') || / (info|warn) access /.test(l));
      const s = await dial(host, port, CLIENT);
      s.end();
      await readAll(s).catch(() => Buffer.alloc(0));
      return outcome;
    }
    try {
      const opened = nextLine((l) => l.includes('inbound listening') && l.includes(`workload_ip=${GONE}`));
      mesh.write('gone.yaml', docs(pod('gone', { node: 'node-1', ip: GONE })));
      await opened;
      expect(await captured()).toContain(`original destination is a ztunnel listener`);
      const closed = nextLine((l) => l.includes('inbound stopped listening') && l.includes(`workload_ip=${GONE}`));
      mesh.remove('gone.yaml');
      await closed;
      // Now an ordinary destination (nobody listens there any more): dialled, and refused by the kernel.
      expect(await captured()).toMatch(new RegExp(`dst\\.addr=${GONE.replaceAll('.', '\\.')}:${plaintextPort}`));
    } finally {
      target = { address: VIP, port: 80, family: 4 };
    }
  });

  it('answers a pod short name with the service VIP from the state store', async () => {
    const [host, port] = splitHostPort(z1.addresses().dnsProxy);
    const sock = createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, CLIENT, () => r()));
      sock.send(
        dns.encode({ type: 'query', id: 7, flags: dns.RECURSION_DESIRED, questions: [{ type: 'A', name: 'echo' }] }),
        port,
        host,
      );
      const [msg] = (await once(sock, 'message')) as [Buffer];
      const answer = dns.decode(msg);
      expect((answer.flags ?? 0) & 0xf).toBe(0);
      expect(answer.answers?.map((a) => (a as { data: string }).data)).toEqual([VIP]);
    } finally {
      sock.close();
    }
  });

  it('starts without capture, saying once why, when original destinations are unavailable', async () => {
    const out: string[] = [];
    const z = await Ztunnel.start({
      config: config(mesh, ['--capture-outbound', `${N1}:0`, '--plaintext-port', '0']),
      logger: new Logger({ write: (l) => out.push(l) }),
      originalDst: { support: () => ({ available: false, reason: 'test: no addon here' }), lookup: injected.lookup },
    });
    try {
      expect(z.addresses().captureOutbound).toBe('');
      expect(z.addresses().socks5).toMatch(/^127\.0\.111\.1:\d+$/);
      const warned = out.filter((l) => l.includes('transparent capture unavailable'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toContain('test: no addon here');
    } finally {
      await z.close();
    }
  });

  const support = originalDstSupport();
  (support.available ? it : it.skip)(
    'closes a connection the kernel never redirected (real SO_ORIGINAL_DST)',
    async () => {
      const z = await Ztunnel.start({
        config: config(mesh, ['--capture-outbound', `${N1}:0`, '--plaintext-port', '0', '--log-level', 'debug']),
        logger: new Logger({ write: () => {} }),
      });
      try {
        const [host, port] = splitHostPort(z.addresses().captureOutbound);
        const s = await dial(host, port, CLIENT);
        expect((await readAll(s)).length).toBe(0);
      } finally {
        await z.close();
      }
    },
  );
});
