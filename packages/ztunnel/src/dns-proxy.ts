/**
 * The mesh DNS proxy (15053, UDP and TCP): answers A/AAAA for mesh service hostnames with their VIPs, so an
 * app that resolves `echo.demo` gets an address ztunnel will capture, and forwards every other question
 * unchanged to the host's resolver. Untrusted input: packets are validated before use, anything undecodable
 * gets FORMERR (or is dropped when not even a header), and the work in flight, TCP connections and TCP
 * buffers are all bounded.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, Socket, SocketAddress } from 'node:net';
import * as dns from 'dns-packet';
import { meshNameQuery } from './dns-names.js';
import { ZtunnelError } from './errors.js';
import type { Logger } from './logger.js';
import type { ProxyState } from './state.js';

/** Where the proxy's answers come from: the ztunnel state store in production, a table in tests. */
export interface DnsRecords {
  /** Addresses (VIPs) of the service with this full hostname, or undefined when there is no such service. */
  serviceAddresses(hostname: string): string[] | undefined;
  /** The namespace of the workload at this client address, for short names; undefined if unknown. */
  clientNamespace(clientAddress: string): string | undefined;
}

export interface DnsProxyOptions {
  records: DnsRecords;
  /** Cluster domain (default cluster.local). */
  clusterDomain?: string;
  /** The resolver for everything else (usually the first nameserver of /etc/resolv.conf); none: SERVFAIL. */
  upstream?: { address: string; port?: number };
  /** How long a forwarded question may take before the client gets SERVFAIL (default 5 s). */
  upstreamTimeoutMs?: number;
  /** Questions being answered or forwarded at once, UDP and TCP together (default 256); more are dropped. */
  maxInflight?: number;
  /** Concurrent TCP clients (default 128). */
  maxTcpConnections?: number;
  /** A TCP client silent for this long is closed (default 10 s). */
  tcpIdleTimeoutMs?: number;
  /** TTL of mesh answers in seconds (default 30: VIPs change rarely, but they do). */
  ttl?: number;
  logger?: Logger;
}

const HEADER_BYTES = 12;
const UDP_MAX_PLAIN = 512;
const QR = 0x8000;
const OPCODE_MASK = 0x7800;
const RD = 0x0100;
const RA = 0x0080;
const AA = 0x0400;
const TC = 0x0200;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
type Rcode = (typeof RCODE)[keyof typeof RCODE];

export class DnsProxy {
  private udp: UdpSocket | undefined;
  private readonly tcp: Server;
  private readonly tcpClients = new Set<Socket>();
  private readonly upstreamSockets = new Set<UdpSocket | Socket>();
  private readonly domain: string;
  private readonly timeoutMs: number;
  private readonly maxInflight: number;
  private readonly idleMs: number;
  private readonly ttl: number;
  private inflight = 0;
  private closed = false;
  private bound: { address: string; port: number } | undefined;

  constructor(private readonly opts: DnsProxyOptions) {
    this.domain = opts.clusterDomain ?? 'cluster.local';
    this.timeoutMs = opts.upstreamTimeoutMs ?? 5000;
    this.maxInflight = opts.maxInflight ?? 256;
    this.idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.ttl = opts.ttl ?? 30;
    this.tcp = createServer({ noDelay: true }, (s) => this.onTcpClient(s));
    this.tcp.maxConnections = opts.maxTcpConnections ?? 128;
  }

  /** Binds UDP and TCP on the same address and port (port 0: the TCP port picked is reused for UDP). */
  async listen(port: number, host: string): Promise<{ address: string; port: number }> {
    if (isIP(host) !== 4 && isIP(host) !== 6) {
      throw new ZtunnelError('ERR_ZTUNNEL_CONFIG', `dns proxy: listen address ${host} is not an IP address`);
    }
    if (this.closed || this.udp)
      throw new ZtunnelError('ERR_ZTUNNEL_CLOSED', 'dns proxy: listen() called twice or after close()');
    // An IPv6 wildcard answers both families (as the TCP listener on it does); a specific IPv6 address only its own.
    const udp = createSocket(isIP(host) === 6 ? { type: 'udp6', ipv6Only: !isIpv6Wildcard(host) } : { type: 'udp4' });
    this.udp = udp;
    try {
      const tcpPort = await new Promise<number>((resolve, reject) => {
        this.tcp.once('error', reject);
        this.tcp.listen({ port, host, exclusive: true }, () => {
          this.tcp.off('error', reject);
          resolve((this.tcp.address() as { port: number }).port);
        });
      });
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ port: tcpPort, address: host, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.destroy();
      throw new ZtunnelError(
        'ERR_ZTUNNEL_LISTEN',
        `dns proxy: cannot listen on ${host}:${port}: ${(err as Error).message} (choose another --dns-proxy address, or leave the DNS proxy off)`,
        { cause: err },
      );
    }
    udp.on('message', (msg, rinfo) => this.onUdpQuery(udp, msg, rinfo));
    udp.on('error', (err) => this.opts.logger?.warn('dns', 'udp socket error', { error: err.message }));
    this.bound = { address: host, port: (this.tcp.address() as { port: number }).port };
    return this.bound;
  }

  address(): { address: string; port: number } | undefined {
    return this.bound;
  }

  /** Stops listening; questions already forwarded get their answer or time out (bounded by upstreamTimeoutMs). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const waits: Promise<void>[] = [];
    if (this.tcp.listening) waits.push(new Promise((r) => this.tcp.close(() => r())));
    for (const s of this.tcpClients) s.end();
    const udp = this.udp;
    if (udp) waits.push(new Promise((r) => udp.close(() => r())));
    await Promise.all(waits);
    for (const s of this.upstreamSockets) closeQuietly(s);
  }

  destroy(): void {
    this.closed = true;
    this.tcp.close();
    for (const s of this.tcpClients) s.destroy();
    for (const s of this.upstreamSockets) closeQuietly(s);
    if (this.udp) closeQuietly(this.udp);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private onUdpQuery(udp: UdpSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (this.closed) return;
    void this.answer(msg, rinfo.address, 'udp').then((reply) => {
      if (reply && !this.closed) udp.send(reply, rinfo.port, rinfo.address);
    });
  }

  private onTcpClient(socket: Socket): void {
    this.tcpClients.add(socket);
    socket.setTimeout(this.idleMs, () => socket.destroy());
    socket.on('close', () => this.tcpClients.delete(socket));
    socket.on('error', () => socket.destroy());
    const client = socket.remoteAddress ?? '';
    let buffered: Buffer = Buffer.alloc(0);
    let pending = 0;
    socket.on('data', (chunk: Buffer) => {
      // At most one full message (2 + 65535 bytes) plus a chunk is ever held.
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (len < HEADER_BYTES) {
          socket.destroy();
          return;
        }
        if (buffered.length < 2 + len) break;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        pending++;
        // A client that pipelines faster than we answer waits (TCP backpressure), it does not queue without bound.
        if (pending >= 16) socket.pause();
        void this.answer(Buffer.from(msg), client, 'tcp').then((reply) => {
          pending--;
          if (pending < 16 && !socket.destroyed) socket.resume();
          if (!reply || socket.destroyed || !socket.writable) return;
          const framed = Buffer.allocUnsafe(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          socket.write(framed);
        });
      }
    });
  }

  /** The reply to one query message, or undefined to stay silent (not a query, or over the in-flight limit). */
  private async answer(msg: Buffer, client: string, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    if (msg.length < HEADER_BYTES) return undefined;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    // Never answer a response: that would let two resolvers bounce packets between each other forever.
    if (flags & QR) return undefined;
    if (this.inflight >= this.maxInflight) return undefined;
    this.inflight++;
    try {
      if ((flags & OPCODE_MASK) !== 0) return headerOnly(id, flags, RCODE.NOTIMP);
      let query: dns.DecodedPacket;
      try {
        query = dns.decode(msg);
      } catch {
        return headerOnly(id, flags, RCODE.FORMERR);
      }
      const question = query.questions?.[0];
      if (!question || query.questions?.length !== 1) return headerOnly(id, flags, RCODE.FORMERR);
      const local = this.answerLocally(query, question, client, transport);
      if (local) return local;
      return await this.forward(msg, id, flags, transport);
    } finally {
      this.inflight--;
    }
  }

  private answerLocally(
    query: dns.DecodedPacket,
    question: dns.Question,
    client: string,
    transport: 'udp' | 'tcp',
  ): Buffer | undefined {
    if (question.class !== 'IN') return undefined;
    const clientNs = this.opts.records.clientNamespace(unmapIPv4(client));
    const { candidates, authoritative } = meshNameQuery(question.name, clientNs, this.domain);
    let addresses: string[] | undefined;
    for (const host of candidates) {
      addresses = this.opts.records.serviceAddresses(host);
      if (addresses) break;
    }
    if (!addresses && !authoritative) return undefined;
    const family = question.type === 'A' ? 4 : question.type === 'AAAA' ? 6 : 0;
    const answers: dns.Answer[] = [];
    for (const a of addresses ?? []) {
      if (family !== 0 && isIP(a) === family) {
        answers.push({ type: question.type as 'A' | 'AAAA', class: 'IN', name: question.name, ttl: this.ttl, data: a });
      }
    }
    // A service without an address of the asked type (or an asked type other than A/AAAA) exists: NOERROR, no data.
    const rcode = addresses ? RCODE.NOERROR : RCODE.NXDOMAIN;
    const reply: dns.Packet = {
      id: query.id ?? 0,
      type: 'response',
      flags: AA | RA | ((query.flags ?? 0) & RD) | rcode,
      questions: [question],
      answers,
    };
    let bytes: Buffer = dns.encode(reply);
    if (transport === 'udp' && bytes.length > UDP_MAX_PLAIN) {
      bytes = dns.encode({ ...reply, answers: [], flags: (reply.flags ?? 0) | TC });
    }
    return bytes;
  }

  private forward(msg: Buffer, id: number, flags: number, transport: 'udp' | 'tcp'): Promise<Buffer> {
    const up = this.opts.upstream;
    if (!up || this.closed) return Promise.resolve(headerOnly(id, flags, RCODE.SERVFAIL));
    const port = up.port ?? 53;
    if (this.bound && up.address === this.bound.address && port === this.bound.port) {
      return Promise.resolve(headerOnly(id, flags, RCODE.SERVFAIL));
    }
    return transport === 'udp'
      ? this.forwardUdp(msg, id, flags, up.address, port)
      : this.forwardTcp(msg, id, flags, up.address, port);
  }

  private forwardUdp(msg: Buffer, id: number, flags: number, address: string, port: number): Promise<Buffer> {
    return new Promise((resolve) => {
      // One socket per question: a fresh random source port, and only the upstream's replies get through.
      const sock = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
      this.upstreamSockets.add(sock);
      const finish = (reply: Buffer) => {
        clearTimeout(timer);
        this.upstreamSockets.delete(sock);
        closeQuietly(sock);
        resolve(reply);
      };
      const timer = setTimeout(() => finish(headerOnly(id, flags, RCODE.SERVFAIL)), this.timeoutMs);
      timer.unref();
      sock.on('error', () => finish(headerOnly(id, flags, RCODE.SERVFAIL)));
      sock.on('message', (reply) => {
        if (reply.length >= HEADER_BYTES && reply.readUInt16BE(0) === id && reply.readUInt16BE(2) & QR) finish(reply);
      });
      sock.connect(port, address, () => sock.send(msg));
    });
  }

  private forwardTcp(msg: Buffer, id: number, flags: number, address: string, port: number): Promise<Buffer> {
    return new Promise((resolve) => {
      const sock = new Socket();
      this.upstreamSockets.add(sock);
      let buffered: Buffer = Buffer.alloc(0);
      const finish = (reply: Buffer) => {
        clearTimeout(timer);
        this.upstreamSockets.delete(sock);
        sock.destroy();
        resolve(reply);
      };
      const timer = setTimeout(() => finish(headerOnly(id, flags, RCODE.SERVFAIL)), this.timeoutMs);
      timer.unref();
      sock.on('error', () => finish(headerOnly(id, flags, RCODE.SERVFAIL)));
      sock.on('close', () => finish(headerOnly(id, flags, RCODE.SERVFAIL)));
      sock.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2) return;
        const len = buffered.readUInt16BE(0);
        if (buffered.length >= 2 + len) {
          const reply = buffered.subarray(2, 2 + len);
          finish(
            reply.length >= HEADER_BYTES && reply.readUInt16BE(0) === id
              ? Buffer.from(reply)
              : headerOnly(id, flags, RCODE.SERVFAIL),
          );
        }
      });
      sock.connect(port, address, () => {
        const framed = Buffer.allocUnsafe(2 + msg.length);
        framed.writeUInt16BE(msg.length, 0);
        msg.copy(framed, 2);
        sock.write(framed);
      });
    });
  }
}

/** A reply carrying only a header: the query's id and RD bit, QR set, the given rcode, no sections. */
function headerOnly(id: number, queryFlags: number, rcode: Rcode): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(QR | (queryFlags & (OPCODE_MASK | RD)) | RA | rcode, 2);
  return b;
}

function closeQuietly(s: UdpSocket | Socket): void {
  try {
    if ('destroy' in s) s.destroy();
    else s.close();
  } catch {
    // already closed
  }
}

/** `::`, `::0`, `0:0:0:0:0:0:0:0`…: any spelling of the IPv6 unspecified address (compared in canonical form). */
function isIpv6Wildcard(host: string): boolean {
  return new SocketAddress({ address: host, family: 'ipv6' }).address === '::';
}

/** `::ffff:10.0.0.1` (an IPv4 client of a dual-stack socket) → `10.0.0.1`, so it matches the workload's address. */
function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** DnsRecords over the ztunnel state store: services by hostname, client namespace from its workload. */
export function stateDnsRecords(state: ProxyState): DnsRecords {
  return {
    serviceAddresses(hostname) {
      const svc = state.serviceByHostname(hostname);
      return svc ? svc.addresses.map((a) => a.address) : undefined;
    },
    clientNamespace(address) {
      return state.workloadByAddress(address)?.namespace;
    },
  };
}
