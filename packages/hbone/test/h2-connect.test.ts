import { once } from 'node:events';
import type { H2HeaderList, H2Stream } from '../src/h2/index.js';
import { createH2Connection } from '../src/h2/index.js';
import {
  cleanupAll,
  connectHeaders,
  digestOf,
  h2Pair,
  selfSigned,
  tlsConnect,
  tlsServer,
  writePattern,
} from './h2-support.js';

afterEach(cleanupAll);

/** Server side of a CONNECT echo: answers 200 and pipes the stream back into itself. */
function echo(stream: H2Stream): void {
  stream.respond(200);
  stream.on('error', () => undefined);
  stream.pipe(stream);
}

describe('h2 engine: our client <-> our server', () => {
  it('round-trips a CONNECT: request headers, 200 response, bytes both ways, clean close', async () => {
    const { client, server } = await h2Pair();
    const seen: H2HeaderList[] = [];
    server.on('stream', (stream, headers) => {
      seen.push(headers);
      echo(stream);
    });
    await client.ready();
    const stream = client.request([...connectHeaders('10.0.0.1:8080'), ['baggage', 'k8s.namespace.name=default']]);
    const [status, headers] = (await once(stream, 'response')) as [number, H2HeaderList];
    expect(status).toBe(200);
    expect(headers[0]).toEqual([':status', '200']);
    expect(seen[0]).toEqual([
      [':method', 'CONNECT'],
      [':authority', '10.0.0.1:8080'],
      ['baggage', 'k8s.namespace.name=default'],
    ]);
    const closed = once(stream, 'close');
    stream.end('hello h2');
    const body = await digestOf(stream);
    expect(body.bytes).toBe(8);
    await closed;
    expect(client.activeStreams).toBe(0);
    await client.close();
    expect(client.closed).toBe(true);
  });

  it('moves 64 MiB each way with sha256 integrity (1 MiB frames, 4 MiB / 16 MiB windows)', async () => {
    const settings = { initialWindowSize: 4 << 20, maxFrameSize: 1 << 20 };
    const { client, server } = await h2Pair(
      { settings, connectionWindowSize: 16 << 20 },
      { settings, connectionWindowSize: 16 << 20 },
    );
    const size = 64 << 20;
    const serverDone = new Promise<{ got: { bytes: number; sha256: string }; sent: string }>((resolve, reject) => {
      server.on('stream', (stream) => {
        stream.respond(200);
        Promise.all([digestOf(stream), writePattern(stream, size, 256 * 1024)]).then(
          ([got, sent]) => resolve({ got, sent }),
          reject,
        );
      });
    });
    const stream = client.request(connectHeaders());
    const [sent, got] = await Promise.all([writePattern(stream, size), digestOf(stream)]);
    const s = await serverDone;
    expect(s.got).toEqual({ bytes: size, sha256: sent });
    expect(got).toEqual({ bytes: size, sha256: s.sent });
  });

  it('works over TLS 1.3 with ALPN h2', async () => {
    const creds = await selfSigned();
    const port = await tlsServer(creds, (socket) => {
      expect(socket.alpnProtocol).toBe('h2');
      const conn = createH2Connection({ role: 'server', socket });
      conn.on('error', () => undefined);
      conn.on('stream', echo);
    });
    const socket = await tlsConnect(port, creds.cert);
    expect(socket.alpnProtocol).toBe('h2');
    const client = createH2Connection({ role: 'client', socket });
    client.on('error', () => undefined);
    const stream = client.request(connectHeaders());
    const [sent, got] = await Promise.all([writePattern(stream, 4 << 20), digestOf(stream)]);
    expect(got.sha256).toBe(sent);
    await client.close();
  });
});
