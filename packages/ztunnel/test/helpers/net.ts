import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP echo server on host:0; returns it and its port. */
export async function echoServer(host: string): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

export async function dial(host: string, port: number, localAddress?: string): Promise<Socket> {
  const s = connect({ host, port, ...(localAddress ? { localAddress } : {}), allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Read exactly n bytes. */
export function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= n) {
        s.off('data', onData);
        s.off('end', onEnd);
        s.pause();
        const extra = buf.subarray(n);
        if (extra.length) s.unshift(extra);
        resolve(buf.subarray(0, n));
      }
    };
    const onEnd = () => reject(new Error(`stream ended after ${buf.length} of ${n} bytes`));
    s.on('data', onData);
    s.once('end', onEnd);
    s.resume();
  });
}

/** Everything until the peer ends. */
export function readAll(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('close', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
    s.resume();
  });
}

/** SOCKS5 CONNECT handshake as a client; returns the reply code. */
export async function socksConnect(s: Socket, host: string, port: number): Promise<number> {
  s.write(Buffer.from([5, 1, 0]));
  const hello = await readBytes(s, 2);
  if (hello[1] !== 0) throw new Error(`method refused: ${hello[1]}`);
  let addr: Buffer;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) addr = Buffer.from([1, ...host.split('.').map(Number)]);
  else addr = Buffer.concat([Buffer.from([3, host.length]), Buffer.from(host)]);
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, p]));
  const head = await readBytes(s, 4);
  const rest = head[3] === 4 ? 18 : 6;
  await readBytes(s, rest);
  return head[1] as number;
}
