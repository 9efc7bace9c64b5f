/**
 * A SOCKS5 server (RFC 1928), CONNECT only, no authentication: the way an unmodified app (curl
 * --socks5-hostname) enters the mesh without iptables. It only speaks the protocol; what a CONNECT is
 * allowed to reach is the outbound handler's business. Bounded: the handshake buffer is capped, a
 * handshake that stalls is cut, and the number of concurrent clients is limited.
 */
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { ZtunnelError } from './errors.js';
import type { Target } from './resolver.js';

/** RFC 1928 §6 reply codes. */
export const SocksReply = {
  SUCCEEDED: 0x00,
  GENERAL_FAILURE: 0x01,
  NOT_ALLOWED: 0x02,
  NETWORK_UNREACHABLE: 0x03,
  HOST_UNREACHABLE: 0x04,
  CONNECTION_REFUSED: 0x05,
  TTL_EXPIRED: 0x06,
  COMMAND_NOT_SUPPORTED: 0x07,
  ADDRESS_TYPE_NOT_SUPPORTED: 0x08,
} as const;
export type SocksReplyCode = (typeof SocksReply)[keyof typeof SocksReply];

/** A client's CONNECT request, waiting for the handler to accept (connected upstream) or reject it. */
export interface Socks5Request {
  readonly socket: Socket;
  readonly target: Target;
  /** Reply success; the socket then carries the client's bytes. Any bytes sent early are kept. */
  accept(): Socket;
  /** Reply a failure code and close. */
  reject(code: SocksReplyCode): void;
}

export interface Socks5ServerOptions {
  onRequest: (req: Socks5Request) => void;
  /** A client that has not finished the handshake within this is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Concurrent client connections (default 10,000). */
  maxConnections?: number;
  /** Called for protocol errors (bad version, bad command, oversize), for logging. */
  onProtocolError?: (err: ZtunnelError, socket: Socket) => void;
}

// Greeting: 2 + 255 methods; request: 4 + 1 + 255 + 2. Anything longer is not SOCKS5.
const MAX_HANDSHAKE_BYTES = 1024;

export class Socks5Server {
  readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly opts: Socks5ServerOptions) {
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.handle(socket));
    this.server.maxConnections = opts.maxConnections ?? 10_000;
  }

  listen(port: number, host: string): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen({ port, host, exclusive: true }, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: host, port });
      });
    });
  }

  /** Stop accepting; connections in their handshake are dropped, spliced ones belong to their handler. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
    const timer = setTimeout(() => {
      this.protocolError(socket, 'the SOCKS5 handshake did not finish in time');
    }, this.opts.handshakeTimeoutMs ?? 10_000);
    timer.unref();
    let buf: Buffer = Buffer.alloc(0);
    let stage: 'greeting' | 'request' = 'greeting';
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (buf.length > MAX_HANDSHAKE_BYTES) return fail('the SOCKS5 handshake is longer than any valid one');
      if (stage === 'greeting') {
        if (buf.length < 2) return;
        if (buf[0] !== 5) return fail(`not SOCKS5 (version byte ${buf[0]})`);
        const n = buf[1] as number;
        if (buf.length < 2 + n) return;
        const methods = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (!methods.includes(0x00)) {
          endAndClose(socket, Buffer.from([5, 0xff]));
          return fail('the client offered no method this server supports (only "no authentication")', false);
        }
        socket.write(Buffer.from([5, 0x00]));
        stage = 'request';
      }
      if (buf.length < 4) return;
      if (buf[0] !== 5) return fail(`bad request version ${buf[0]}`);
      const cmd = buf[1];
      const atyp = buf[3];
      let host: string;
      let end: number;
      if (atyp === 0x01) {
        end = 4 + 4 + 2;
        if (buf.length < end) return;
        host = [...buf.subarray(4, 8)].join('.');
      } else if (atyp === 0x04) {
        end = 4 + 16 + 2;
        if (buf.length < end) return;
        const parts: string[] = [];
        for (let i = 0; i < 8; i++) parts.push(buf.readUInt16BE(4 + i * 2).toString(16));
        host = compressIPv6(parts);
      } else if (atyp === 0x03) {
        if (buf.length < 5) return;
        const len = buf[4] as number;
        end = 5 + len + 2;
        if (buf.length < end) return;
        host = buf.subarray(5, 5 + len).toString('latin1');
        if (len === 0 || !/^[A-Za-z0-9._:-]+$/.test(host))
          return reply(SocksReply.HOST_UNREACHABLE, `invalid domain name ${JSON.stringify(host)}`);
      } else {
        return reply(SocksReply.ADDRESS_TYPE_NOT_SUPPORTED, `address type ${atyp} is not supported`);
      }
      const port = buf.readUInt16BE(end - 2);
      const rest = buf.subarray(end);
      if (cmd !== 0x01)
        return reply(SocksReply.COMMAND_NOT_SUPPORTED, `command ${cmd} is not supported (only CONNECT)`);
      if (port === 0) return reply(SocksReply.HOST_UNREACHABLE, 'destination port 0');
      socket.off('data', onData);
      socket.pause();
      clearTimeout(timer);
      if (rest.length > 0) socket.unshift(rest);
      let answered = false;
      this.opts.onRequest({
        socket,
        target: { host, port },
        accept: () => {
          if (answered) throw new ZtunnelError('ERR_ZTUNNEL_SOCKS', 'SOCKS5 request already answered');
          answered = true;
          this.sockets.delete(socket);
          socket.write(successReply(socket));
          return socket;
        },
        reject: (code) => {
          if (answered) return;
          answered = true;
          endAndClose(socket, replyBytes(code));
        },
      });
    };
    const reply = (code: SocksReplyCode, why: string) => {
      endAndClose(socket, replyBytes(code));
      fail(why, false);
    };
    const fail = (why: string, destroy = true) => {
      socket.off('data', onData);
      clearTimeout(timer);
      this.protocolError(socket, why, destroy);
    };
    socket.on('data', onData);
    socket.once('close', () => clearTimeout(timer));
  }

  private protocolError(socket: Socket, why: string, destroy = true): void {
    this.opts.onProtocolError?.(new ZtunnelError('ERR_ZTUNNEL_SOCKS', `SOCKS5: ${why}`), socket);
    if (destroy) socket.destroy();
  }
}

/** The listener is half-open capable (tunnels carry half-close); a refusal closes both ways. */
function endAndClose(socket: Socket, bytes: Buffer): void {
  socket.end(bytes, () => socket.destroy());
}

function replyBytes(code: SocksReplyCode): Buffer {
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

/** Success carries the bound address; we report the local end of the client's socket. */
function successReply(socket: Socket): Buffer {
  const addr = socket.localAddress ?? '0.0.0.0';
  const port = socket.localPort ?? 0;
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  if (isIPv4(v4)) {
    const b = Buffer.from([5, 0, 0, 1, ...v4.split('.').map(Number), 0, 0]);
    b.writeUInt16BE(port, 8);
    return b;
  }
  if (isIPv6(addr)) {
    const b = Buffer.alloc(22);
    b.set([5, 0, 0, 4]);
    const groups = expandIPv6(addr);
    for (let i = 0; i < 8; i++) b.writeUInt16BE(groups[i] ?? 0, 4 + i * 2);
    b.writeUInt16BE(port, 20);
    return b;
  }
  return replyBytes(SocksReply.SUCCEEDED);
}

function compressIPv6(parts: string[]): string {
  // Canonical form (RFC 5952): collapse the longest run of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

function expandIPv6(addr: string): number[] {
  const [head, tail] = addr.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const mid = new Array(8 - h.length - t.length).fill('0');
  return [...h, ...(tail === undefined ? [] : mid), ...t].map((x) => Number.parseInt(x, 16) || 0);
}
