/** Shared helpers of the h2-*.test.ts files: real sockets on 127.0.0.1:0, digests, a throwaway TLS identity. */
import 'reflect-metadata';
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import * as tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { createH2Connection, type H2Connection, type H2ConnectionOptions } from '../src/h2/index.js';

x509.cryptoProvider.set(globalThis.crypto);

export type SideOptions = Omit<H2ConnectionOptions, 'role' | 'socket'>;

export interface Pair {
  client: H2Connection;
  server: H2Connection;
  clientSocket: Duplex;
  serverSocket: Duplex;
}

const cleanups: Array<() => void> = [];

/** Destroys everything the helpers opened (call from afterEach). */
export function cleanupAll(): void {
  for (const fn of cleanups.splice(0)) fn();
}

/** A connected pair of raw TCP sockets on 127.0.0.1. */
export async function socketPair(): Promise<{ a: net.Socket; b: net.Socket }> {
  const server = net.createServer();
  cleanups.push(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const a = net.connect(port, '127.0.0.1');
  cleanups.push(() => a.destroy());
  const [b] = (await accepted) as [net.Socket];
  cleanups.push(() => b.destroy());
  await once(a, 'connect').catch(() => undefined);
  return { a, b };
}

/** Our client and our server over plain TCP. */
export async function h2Pair(clientOptions: SideOptions = {}, serverOptions: SideOptions = {}): Promise<Pair> {
  const { a, b } = await socketPair();
  const server = createH2Connection({ role: 'server', socket: b, ...serverOptions });
  const client = createH2Connection({ role: 'client', socket: a, ...clientOptions });
  for (const c of [client, server]) {
    c.on('error', () => undefined);
    cleanups.push(() => c.destroy());
  }
  return { client, server, clientSocket: a, serverSocket: b };
}

/** A self-signed P-256 certificate for "localhost". */
export async function selfSigned(): Promise<{ key: string; cert: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=localhost',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }])],
  });
  const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
  return { key, cert: cert.toString('pem') };
}

/** A TLS 1.3 server on 127.0.0.1:0 with ALPN h2; `onSocket` gets each secured socket. */
export async function tlsServer(
  creds: { key: string; cert: string },
  onSocket: (socket: tls.TLSSocket) => void,
): Promise<number> {
  const server = tls.createServer({ ...creds, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3' }, onSocket);
  const sockets = new Set<tls.TLSSocket>();
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

export async function tlsConnect(port: number, ca: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['h2'] });
  cleanups.push(() => socket.destroy());
  await once(socket, 'secureConnect');
  return socket;
}

/**
 * Reads a stream to its end, hashing as it goes (never holds the whole body). Uses events, not for-await:
 * async iteration destroys a Duplex whose writable side is still open when the readable side ends.
 */
export function digestOf(stream: Readable): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    stream.once('error', reject);
    stream.resume(); // a 'data' listener alone does not restart a stream that was explicitly paused
  });
}

/** 2 MiB of random bytes; chunks are views at varying offsets, so every chunk differs at no cost. */
const PATTERN = randomBytes(2 << 20);

/**
 * Writes `total` bytes in `chunkSize` chunks (at most 1 MiB), honouring backpressure, then ends the stream;
 * resolves with the sha256 of what was written.
 */
export async function writePattern(stream: Duplex, total: number, chunkSize = 64 * 1024): Promise<string> {
  const hash: Hash = createHash('sha256');
  let left = total;
  let i = 0;
  while (left > 0) {
    const n = Math.min(chunkSize, left, 1 << 20);
    const offset = (i++ * 7919) % (PATTERN.length - n);
    const chunk = PATTERN.subarray(offset, offset + n);
    hash.update(chunk);
    left -= n;
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  return hash.digest('hex');
}

export const connectHeaders = (authority = '127.0.0.1:9'): Array<[string, string]> => [
  [':method', 'CONNECT'],
  [':authority', authority],
];

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/**
 * A hand-driven HTTP/2 peer on a raw socket: writes exactly the bytes a test wants (valid or not) and
 * parses what comes back into frames, so tests can check codes on the wire.
 */
export class RawPeer {
  readonly frames: RawFrame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  /** `skipPreface`: the peer is a client of ours, whose bytes start with the 24-octet connection preface. */
  constructor(
    readonly socket: net.Socket,
    private skipPreface = 0,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      if (this.skipPreface > 0) {
        const n = Math.min(this.skipPreface, this.buf.length);
        this.buf = this.buf.subarray(n);
        this.skipPreface -= n;
      }
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({
          type: this.buf[3]!,
          flags: this.buf[4]!,
          streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: this.buf.subarray(9, 9 + len),
        });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static frame(type: number, flags: number, streamId: number, payload: Buffer | number[] = []): Buffer {
    const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
    const head = Buffer.alloc(9);
    head.writeUIntBE(p.length, 0, 3);
    head[3] = type;
    head[4] = flags;
    head.writeUInt32BE(streamId, 5);
    return Buffer.concat([head, p]);
  }

  static settings(entries: Array<[number, number]> = []): Buffer {
    const p = Buffer.alloc(entries.length * 6);
    entries.forEach(([id, value], i) => {
      p.writeUInt16BE(id, i * 6);
      p.writeUInt32BE(value, i * 6 + 2);
    });
    return RawPeer.frame(4, 0, 0, p);
  }

  static u32(value: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    return b;
  }

  send(...chunks: Buffer[]): void {
    this.socket.write(Buffer.concat(chunks));
  }

  /** Waits for the first frame (from `from` on) that matches; resolves undefined if the socket closes first. */
  async waitFor(match: (f: RawFrame) => boolean, from = 0): Promise<RawFrame | undefined> {
    for (;;) {
      const found = this.frames.slice(from).find(match);
      if (found) return found;
      if (this.closed) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Fake timers for the connection's `timers` option: tests fire them by hand. */
export class ManualTimers {
  private next = 1;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.pending.set(id, { fn, ms });
    return id;
  };
  clearTimeout = (handle: unknown): void => {
    this.pending.delete(handle as number);
  };
  /** Fires every timer armed now (not those they arm in turn); returns how many fired. */
  fireAll(): number {
    const due = [...this.pending.entries()];
    for (const [id] of due) this.pending.delete(id);
    for (const [, t] of due) t.fn();
    return due.length;
  }
}

/** events.once for an H2Connection (the contract types its events, not the whole EventEmitter surface). */
export function connectionEvent(conn: H2Connection, event: string): Promise<unknown[]> {
  return once(conn as unknown as import('node:events').EventEmitter, event);
}
