/**
 * Interoperability with independent HTTP/2 implementations: Node's http2 (nghttp2) as client and server,
 * and curl (libcurl + nghttp2) when installed.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { createH2Connection, type H2HeaderList, type H2Stream } from '../src/h2/index.js';
import { cleanupAll, connectHeaders, digestOf, selfSigned, tlsConnect, writePattern } from './h2-support.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanups.splice(0)) fn();
  cleanupAll();
});

/** Header fields that make nghttp2 use its dynamic table and Huffman coding (long, repeated, mixed). */
function richHeaders(n: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < 40; i++) out.push([`x-custom-${i}`, `value-${i}-${'abcdefghij'.repeat(5)}-${n}`]);
  out.push(['baggage', 'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,service.name=reviews']);
  out.push(['forwarded', 'for="10.0.0.7:43210";host=reviews.default.svc.cluster.local']);
  out.push(['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00']);
  out.push(['x-binaryish', 'tab\there ~!@#$%^&*()_+{}|:"<>?`-=[]\\;\',./ end']);
  out.push(['x-big', 'Z'.repeat(6000)]);
  return out;
}

async function nodeConnectServer(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  settings?: http2.Settings,
): Promise<number> {
  const server = http2.createServer(settings ? { settings } : {});
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', onStream);
  cleanups.push(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function tcpConnect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Our server on a TCP listener; `onStream` handles each stream. */
async function ourServer(onStream: (stream: H2Stream, headers: H2HeaderList) => void): Promise<number> {
  const server = net.createServer((socket) => {
    const conn = createH2Connection({
      role: 'server',
      socket,
      settings: { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20, maxConcurrentStreams: 200 },
      connectionWindowSize: 16 << 20,
    });
    conn.on('error', () => undefined);
    conn.on('stream', onStream);
    cleanups.push(() => conn.destroy());
  });
  cleanups.push(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('h2 interop: our client -> node:http2 server', () => {
  it('opens CONNECT streams, exchanges HPACK-heavy headers and echoes 16 MiB with integrity', async () => {
    const received: http2.IncomingHttpHeaders[] = [];
    const port = await nodeConnectServer(
      (stream, headers) => {
        received.push(headers);
        const response: http2.OutgoingHttpHeaders = { ':status': 200 };
        for (const [k, v] of richHeaders(received.length)) response[k] = v;
        stream.respond(response);
        stream.pipe(stream);
      },
      { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 },
    );
    const socket = await tcpConnect(port);
    const client = createH2Connection({
      role: 'client',
      socket,
      settings: { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 },
      connectionWindowSize: 16 << 20,
    });
    client.on('error', () => undefined);
    cleanups.push(() => client.destroy());

    // Several streams in a row: the second and later header blocks come from nghttp2's dynamic table.
    for (let i = 1; i <= 3; i++) {
      const stream = client.request([...connectHeaders(`10.0.0.${i}:8080`), ...richHeaders(i)]);
      const [status, headers] = (await once(stream, 'response')) as [number, H2HeaderList];
      expect(status).toBe(200);
      const map = new Map(headers);
      for (const [k, v] of richHeaders(i)) expect(map.get(k)).toBe(v);
      expect(received[i - 1]![':authority']).toBe(`10.0.0.${i}:8080`);
      expect(received[i - 1]![':method']).toBe('CONNECT');
      expect(received[i - 1]!['x-big']).toBe('Z'.repeat(6000));
      expect(received[i - 1]!['x-binaryish']).toBe(richHeaders(i).find(([k]) => k === 'x-binaryish')![1]);
      const size = i === 1 ? 16 << 20 : 1000;
      const [sent, got] = await Promise.all([writePattern(stream, size), digestOf(stream)]);
      expect(got).toEqual({ bytes: size, sha256: sent });
    }
    await client.close();
  });

  it('talks to node:http2 over TLS with ALPN h2', async () => {
    const creds = await selfSigned();
    const server = http2.createSecureServer({ ...creds, ALPNProtocols: ['h2'] });
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.pipe(stream);
    });
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    cleanups.push(() => {
      for (const s of sessions) s.destroy();
      server.close();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = await tlsConnect((server.address() as AddressInfo).port, creds.cert);
    const client = createH2Connection({ role: 'client', socket });
    client.on('error', () => undefined);
    cleanups.push(() => client.destroy());
    const stream = client.request(connectHeaders());
    const [sent, got] = await Promise.all([writePattern(stream, 2 << 20), digestOf(stream)]);
    expect(got.sha256).toBe(sent);
    await client.close();
  });

  it('sees node:http2 refuse a stream with a non-200 status and end it', async () => {
    const port = await nodeConnectServer((stream) => {
      stream.respond({ ':status': 503, 'x-reason': 'no upstream' }, { endStream: true });
    });
    const client = createH2Connection({ role: 'client', socket: await tcpConnect(port) });
    client.on('error', () => undefined);
    cleanups.push(() => client.destroy());
    const stream = client.request(connectHeaders());
    const [status, headers] = (await once(stream, 'response')) as [number, H2HeaderList];
    expect(status).toBe(503);
    expect(new Map(headers).get('x-reason')).toBe('no upstream');
    stream.end();
    expect((await digestOf(stream)).bytes).toBe(0);
  });
});

describe('h2 interop: node:http2 client -> our server', () => {
  it('accepts CONNECT with HPACK-heavy headers and echoes 16 MiB each way with integrity', async () => {
    const seen: H2HeaderList[] = [];
    const port = await ourServer((stream, headers) => {
      seen.push(headers);
      stream.respond(200, richHeaders(seen.length));
      stream.on('error', () => undefined);
      stream.pipe(stream);
    });
    const session = http2.connect(`http://127.0.0.1:${port}`, {
      settings: { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 },
    });
    cleanups.push(() => session.destroy());
    session.on('error', () => undefined);
    for (let i = 1; i <= 3; i++) {
      const headers: http2.OutgoingHttpHeaders = { ':method': 'CONNECT', ':authority': '127.0.0.1:9' };
      for (const [k, v] of richHeaders(i)) headers[k] = v;
      const req = session.request(headers);
      const [response] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      expect(response[':status']).toBe(200);
      for (const [k, v] of richHeaders(i)) expect(response[k]).toBe(v);
      const got = new Map(seen[i - 1]);
      expect(got.get(':method')).toBe('CONNECT');
      expect(got.get(':authority')).toBe('127.0.0.1:9');
      for (const [k, v] of richHeaders(i)) expect(got.get(k)).toBe(v);
      const size = i === 2 ? 16 << 20 : 3000;
      const [sent, received] = await Promise.all([writePattern(req, size), digestOf(req)]);
      expect(received).toEqual({ bytes: size, sha256: sent });
    }
    session.close();
    await once(session, 'close');
  });

  it('serves many concurrent node:http2 streams on one connection', async () => {
    const port = await ourServer((stream) => {
      stream.respond(200);
      stream.on('error', () => undefined);
      stream.pipe(stream);
    });
    const session = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => session.destroy());
    session.on('error', () => undefined);
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const req = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${1000 + i}` });
        const [sent, got] = await Promise.all([writePattern(req, 100_000 + i), digestOf(req)]);
        return got.sha256 === sent && got.bytes === 100_000 + i;
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    session.close();
  });

  it('lets node:http2 ping us', async () => {
    const port = await ourServer(() => undefined);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    cleanups.push(() => session.destroy());
    await once(session, 'connect');
    const payload = Buffer.from('8bytes!!');
    const echoed = await new Promise<Buffer>((resolve, reject) =>
      session.ping(payload, (err, _ms, p) => (err ? reject(err) : resolve(p))),
    );
    expect(echoed.equals(payload)).toBe(true);
  });
});

const hasCurlH2 = ((): boolean => {
  try {
    const out = require('node:child_process').execFileSync('curl', ['--version'], { encoding: 'utf8' }) as string;
    return /\bHTTP2\b/.test(out);
  } catch {
    return false;
  }
})();

describe('h2 interop: curl', () => {
  (hasCurlH2 ? it : it.skip)('serves a curl --http2-prior-knowledge request (skipped without curl+HTTP2)', async () => {
    const port = await ourServer((stream, headers) => {
      const map = new Map(headers);
      stream.on('error', () => undefined);
      stream.respond(200, [['content-type', 'text/plain']]);
      stream.end(`${map.get(':method')} ${map.get(':path')} ${map.get('x-test')}`);
      stream.resume();
    });
    const body = await new Promise<string>((resolve, reject) =>
      execFile(
        'curl',
        ['-sS', '--http2-prior-knowledge', '-H', 'x-test: from-curl', `http://127.0.0.1:${port}/some/path?q=1`],
        { timeout: 20_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(body).toBe('GET /some/path?q=1 from-curl');
  });
});
