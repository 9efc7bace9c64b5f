/** A small SOCKS5 client (RFC 1928 CONNECT by domain name) that binds the workload's own source address. */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

const REPLIES: Record<number, string> = {
  1: 'general failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
};

export class SocksRefused extends Error {
  constructor(readonly reply: number) {
    super(`SOCKS5 reply ${reply}: ${REPLIES[reply] ?? 'unknown'}`);
  }
}

export async function socksConnect(
  proxy: { host: string; port: number },
  from: string,
  host: string,
  port: number,
): Promise<Socket> {
  const s = connect({ host: proxy.host, port: proxy.port, localAddress: from, allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  const read = (n: number) => readExactly(s, n);
  s.write(Buffer.from([5, 1, 0]));
  const hello = await read(2);
  if (hello[1] !== 0) throw new Error('the SOCKS5 server refused "no authentication"');
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), Buffer.from(host), p]));
  const head = await read(4);
  await read(head[3] === 4 ? 18 : 6);
  if (head[1] !== 0) {
    s.destroy();
    throw new SocksRefused(head[1] as number);
  }
  return s;
}

export function readExactly(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < n) return;
      done();
      s.pause();
      if (buf.length > n) s.unshift(buf.subarray(n));
      resolve(buf.subarray(0, n));
    };
    const onEnd = () => {
      done();
      reject(new Error(`connection closed after ${buf.length} of ${n} bytes`));
    };
    const done = () => {
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
    s.resume();
  });
}

/** One HTTP/1.1 GET over an established socket; resolves with status line and body. */
export async function httpGet(s: Socket, host: string, path: string): Promise<{ status: string; body: string }> {
  s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.resume();
  await once(s, 'end');
  s.destroy();
  const text = Buffer.concat(chunks).toString('utf8');
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return { status: head.split('\r\n')[0] ?? '', body };
}
