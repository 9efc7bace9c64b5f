import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import * as dns from 'dns-packet';
import { meshNameQuery, nameserverFromResolvConf } from '../src/dns-names.js';
import { DnsProxy, type DnsRecords } from '../src/dns-proxy.js';

const hasDig = (() => {
  try {
    require('node:child_process').execFileSync('sh', ['-c', 'command -v dig'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const hasIPv6 = Object.values(require('node:os').networkInterfaces() as Record<string, { family: string }[]>)
  .flat()
  .some((i) => i.family === 'IPv6');
if (!hasIPv6) console.warn('dns-proxy: dual-stack test skipped: no IPv6 address on this machine');
if (!hasDig) console.warn('dns-proxy: dig tests skipped: dig is not installed (Debian: dnsutils)');

const SERVICES: Record<string, string[]> = {
  'echo.demo.svc.cluster.local': ['10.96.0.10', 'fd00:96::10'],
  'db.other.svc.cluster.local': ['10.96.0.20'],
  'headless.demo.svc.cluster.local': [],
};
const records: DnsRecords = {
  serviceAddresses: (h) => SERVICES[h],
  clientNamespace: (ip) => (ip === '127.0.0.1' ? 'demo' : undefined),
};

/** A stand-in for the host's resolver: answers `*.example.test` A 192.0.2.1 (UDP and TCP), NXDOMAIN otherwise. */
class FakeUpstream {
  readonly udp: UdpSocket = createSocket('udp4');
  readonly tcp: Server;
  readonly seen: string[] = [];
  silent = false;
  port = 0;

  constructor() {
    this.udp.on('message', (msg, r) => {
      const reply = this.reply(msg);
      if (reply) this.udp.send(reply, r.port, r.address);
    });
    this.tcp = createServer((s) => {
      s.once('data', (b: Buffer) => {
        const reply = this.reply(b.subarray(2));
        if (!reply) return;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(reply.length);
        s.end(Buffer.concat([len, reply]));
      });
      s.on('error', () => undefined);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.tcp.listen(0, '127.0.0.1', r));
    this.port = (this.tcp.address() as { port: number }).port;
    await new Promise<void>((r) => this.udp.bind(this.port, '127.0.0.1', r));
  }

  private reply(msg: Buffer): Buffer | undefined {
    const q = dns.decode(msg);
    const question = q.questions?.[0];
    if (!question) return undefined;
    this.seen.push(question.name);
    if (this.silent) return undefined;
    const known = question.name.endsWith('example.test') && question.type === 'A';
    return dns.encode({
      id: q.id,
      type: 'response',
      flags: dns.RECURSION_AVAILABLE | (known ? 0 : 3),
      questions: [question],
      answers: known ? [{ type: 'A', class: 'IN', name: question.name, ttl: 60, data: '192.0.2.1' }] : [],
    });
  }

  close(): void {
    this.udp.close();
    this.tcp.close();
  }
}

let upstream: FakeUpstream;
let proxy: DnsProxy;
let port: number;
const clients: (UdpSocket | Socket)[] = [];

beforeEach(async () => {
  upstream = new FakeUpstream();
  await upstream.start();
  proxy = new DnsProxy({ records, upstream: { address: '127.0.0.1', port: upstream.port }, upstreamTimeoutMs: 1000 });
  port = (await proxy.listen(0, '127.0.0.1')).port;
});

afterEach(async () => {
  for (const c of clients.splice(0)) 'destroy' in c ? c.destroy() : c.close();
  await proxy.close();
  upstream.close();
});

/** The data of every answer record (addresses for A/AAAA). */
function data(reply: dns.Packet | undefined): unknown[] {
  return (reply?.answers ?? []).map((a) => ('data' in a ? a.data : undefined));
}

let nextId = 1;
function query(name: string, type: dns.RecordType = 'A'): Buffer {
  return dns.encode({
    id: nextId++,
    type: 'query',
    flags: dns.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
  });
}

async function udpExchange(msg: Buffer): Promise<Buffer> {
  const sock = createSocket('udp4');
  clients.push(sock);
  await new Promise<void>((r) => sock.connect(port, '127.0.0.1', r));
  sock.send(msg);
  const [reply] = (await once(sock, 'message')) as [Buffer];
  return reply;
}

async function ask(name: string, type: dns.RecordType = 'A'): Promise<dns.DecodedPacket & { rcode?: string }> {
  return dns.decode(await udpExchange(query(name, type))) as dns.DecodedPacket & { rcode?: string };
}

function tcpClient(): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  clients.push(s);
  return once(s, 'connect').then(() => s);
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Reads `count` length-prefixed replies from a TCP socket. */
function readFrames(s: Socket, count: number): Promise<dns.DecodedPacket[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: dns.DecodedPacket[] = [];
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(dns.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
        if (out.length === count) resolve(out);
      }
    });
    s.once('error', reject);
    s.once('close', () => reject(new Error(`connection closed after ${out.length} replies`)));
  });
}

describe('meshNameQuery', () => {
  it('expands short forms within the client namespace', () => {
    const full = 'echo.demo.svc.cluster.local';
    expect(meshNameQuery('echo', 'demo', 'cluster.local')).toEqual({ candidates: [full], authoritative: false });
    expect(meshNameQuery('echo.demo', undefined, 'cluster.local').candidates).toEqual([full]);
    expect(meshNameQuery('Echo.Demo.svc.', undefined, 'cluster.local').candidates).toEqual([full]);
    expect(meshNameQuery(`${full}.`, undefined, 'cluster.local')).toEqual({ candidates: [full], authoritative: true });
  });

  it('owns the cluster domain, leaves other names alone, and rejects malformed names', () => {
    expect(meshNameQuery('pod.demo.pod.cluster.local', 'demo', 'cluster.local')).toEqual({
      candidates: [],
      authoritative: true,
    });
    expect(meshNameQuery('echo', undefined, 'cluster.local')).toEqual({ candidates: [], authoritative: false });
    expect(meshNameQuery('www.example.com', 'demo', 'cluster.local')).toEqual({ candidates: [], authoritative: false });
    expect(meshNameQuery('bad_label.demo', 'demo', 'cluster.local').candidates).toEqual([]);
    expect(meshNameQuery(`${'a'.repeat(64)}.demo`, 'demo', 'cluster.local').candidates).toEqual([]);
  });
});

describe('nameserverFromResolvConf', () => {
  it('takes the first nameserver, ignoring comments and other lines', () => {
    expect(nameserverFromResolvConf('# generated\nsearch x\nnameserver 10.0.0.2 # main\nnameserver 10.0.0.3\n')).toBe(
      '10.0.0.2',
    );
    expect(nameserverFromResolvConf('nameserver fd00::53\n')).toBe('fd00::53');
    expect(nameserverFromResolvConf('options ndots:5\n')).toBeUndefined();
  });
});

describe('DnsProxy over UDP', () => {
  it('answers A and AAAA for a full service hostname with its VIPs, authoritatively', async () => {
    const a = await ask('echo.demo.svc.cluster.local', 'A');
    expect(a.flag_aa).toBe(true);
    expect(a.rcode).toBe('NOERROR');
    expect(a.answers).toEqual([expect.objectContaining({ type: 'A', data: '10.96.0.10', ttl: 30 })]);
    const aaaa = await ask('echo.demo.svc.cluster.local', 'AAAA');
    expect(aaaa.answers).toEqual([expect.objectContaining({ type: 'AAAA', data: 'fd00:96::10' })]);
    expect(upstream.seen).toEqual([]);
  });

  it('answers the short forms within the asking pod namespace', async () => {
    for (const name of ['echo', 'echo.demo', 'echo.demo.svc']) {
      const r = await ask(name);
      expect(data(r)).toEqual(['10.96.0.10']);
      expect(r.questions?.[0]?.name).toBe(name);
    }
    expect(data(await ask('db.other'))).toEqual(['10.96.0.20']);
    expect(upstream.seen).toEqual([]);
  });

  it('says NXDOMAIN for unknown names under the cluster domain without asking upstream', async () => {
    const r = await ask('nope.demo.svc.cluster.local');
    expect(r.rcode).toBe('NXDOMAIN');
    expect(r.flag_aa).toBe(true);
    expect(upstream.seen).toEqual([]);
  });

  it('answers NOERROR with no data for a service without an address of the asked type', async () => {
    const r = await ask('db.other.svc.cluster.local', 'AAAA');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toEqual([]);
    expect((await ask('headless.demo.svc.cluster.local')).answers).toEqual([]);
  });

  it('forwards other names to the upstream resolver and relays its answer', async () => {
    const r = await ask('www.example.test');
    expect(data(r)).toEqual(['192.0.2.1']);
    expect(r.flag_aa).toBe(false);
    expect(upstream.seen).toEqual(['www.example.test']);
    // A two-label name that is no service, and a short name from a client outside the mesh, go upstream too.
    expect(data(await ask('example.test'))).toEqual(['192.0.2.1']);
  });

  it('answers SERVFAIL when the upstream does not answer in time', async () => {
    upstream.silent = true;
    const r = await ask('slow.example.test');
    expect(r.rcode).toBe('SERVFAIL');
    expect(upstream.seen).toEqual(['slow.example.test']);
  });

  it('survives garbage: drops short packets and responses, FORMERR for undecodable queries', async () => {
    const sock = createSocket('udp4');
    clients.push(sock);
    await new Promise<void>((r) => sock.connect(port, '127.0.0.1', r));
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    sock.send(Buffer.from([1, 2, 3]));
    const response = query('echo.demo');
    response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
    sock.send(response);
    const garbage = Buffer.alloc(40, 0xff);
    garbage.writeUInt16BE(0x1234, 0);
    garbage.writeUInt16BE(0x0100, 2);
    sock.send(garbage);
    const twoQuestions = dns.encode({
      id: 77,
      type: 'query',
      questions: [
        { name: 'echo', type: 'A' },
        { name: 'db', type: 'A' },
      ],
    });
    sock.send(twoQuestions);
    const notQuery = query('echo');
    notQuery.writeUInt16BE(notQuery.readUInt16BE(2) | (2 << 11), 2); // opcode STATUS
    sock.send(notQuery);
    const ok = query('echo');
    sock.send(ok);
    while (replies.length < 4) await once(sock, 'message');
    const decoded = replies.map((b) => dns.decode(b) as dns.DecodedPacket & { rcode?: string });
    expect(decoded.map((d) => [d.id, d.rcode])).toEqual([
      [0x1234, 'FORMERR'],
      [77, 'FORMERR'],
      [notQuery.readUInt16BE(0), 'NOTIMP'],
      [ok.readUInt16BE(0), 'NOERROR'],
    ]);
  });
});

describe('DnsProxy over TCP', () => {
  it('answers mesh names and forwards the rest, pipelined on one connection', async () => {
    const s = await tcpClient();
    const replies = readFrames(s, 2);
    s.write(Buffer.concat([frame(query('echo.demo')), frame(query('www.example.test'))]));
    const got = await replies;
    const byName = Object.fromEntries(got.map((r) => [r.questions?.[0]?.name, data(r)]));
    expect(byName).toEqual({ 'echo.demo': ['10.96.0.10'], 'www.example.test': ['192.0.2.1'] });
    expect(upstream.seen).toEqual(['www.example.test']);
  });

  it('accepts a message split across writes', async () => {
    const s = await tcpClient();
    const replies = readFrames(s, 1);
    const bytes = frame(query('echo.demo.svc.cluster.local'));
    s.write(bytes.subarray(0, 1));
    s.write(bytes.subarray(1, 9));
    s.write(bytes.subarray(9));
    expect(data((await replies)[0])).toEqual(['10.96.0.10']);
  });

  it('closes a connection announcing an impossible length and keeps serving others', async () => {
    const bad = await tcpClient();
    const closed = once(bad, 'close');
    bad.write(Buffer.from([0, 3, 1, 2, 3]));
    await closed;
    expect(data(await ask('echo.demo'))).toEqual(['10.96.0.10']);
  });
});

describe('DnsProxy lifecycle', () => {
  it('refuses a second listen and reports a busy port as ERR_ZTUNNEL_LISTEN', async () => {
    await expect(proxy.listen(0, '127.0.0.1')).rejects.toMatchObject({ code: 'ERR_ZTUNNEL_CLOSED' });
    const other = new DnsProxy({ records });
    await expect(other.listen(port, '127.0.0.1')).rejects.toMatchObject({ code: 'ERR_ZTUNNEL_LISTEN' });
    await other.close();
  });

  // '::0' and the long form are the same wildcard as '::' (the TCP listener treats them so; UDP must too).
  (hasIPv6 ? it.each : it.skip.each)(['::', '::0', '0:0:0:0:0:0:0:0'])(
    'on the IPv6 wildcard %s answers IPv4 pods too, over UDP and TCP, with their namespace',
    async (wildcard) => {
      const dual = new DnsProxy({ records, upstream: { address: '127.0.0.1', port: upstream.port } });
      try {
        const p = (await dual.listen(0, wildcard)).port;
        const sock = createSocket('udp4');
        clients.push(sock);
        await new Promise<void>((r) => sock.connect(p, '127.0.0.1', r));
        sock.send(query('echo'));
        const [udpReply] = (await once(sock, 'message')) as [Buffer];
        expect(data(dns.decode(udpReply))).toEqual(['10.96.0.10']);
        const s = connect(p, '127.0.0.1');
        clients.push(s);
        await once(s, 'connect');
        const replies = readFrames(s, 1);
        s.write(frame(query('echo.demo.svc')));
        expect(data((await replies)[0])).toEqual(['10.96.0.10']);
      } finally {
        await dual.close();
      }
    },
  );

  it('close() is idempotent', async () => {
    await proxy.close();
    await proxy.close();
    expect(proxy.address()?.port).toBe(port);
  });
});

(hasDig ? describe : describe.skip)('DnsProxy with dig', () => {
  function dig(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=5', '+tries=1', ...args], (err, out) =>
        err ? reject(err) : resolve(out),
      ),
    );
  }

  it('dig resolves a service over UDP and TCP, and a forwarded name', async () => {
    expect((await dig('+short', 'echo.demo.svc.cluster.local', 'A')).trim()).toBe('10.96.0.10');
    expect((await dig('+short', '+tcp', 'echo.demo.svc.cluster.local', 'AAAA')).trim()).toBe('fd00:96::10');
    expect((await dig('+short', 'www.example.test')).trim()).toBe('192.0.2.1');
    expect(await dig('nope.demo.svc.cluster.local')).toMatch(/status: NXDOMAIN/);
  });
});
