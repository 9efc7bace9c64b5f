/** HBONE against an HTTP/2 implementation we did not write: Node's own http2 module, both directions. */
import { once } from 'node:events';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import {
  cleanup,
  echoServer,
  hboneClient,
  hboneServer,
  onCleanup,
  pki,
  readAll,
  SERVER_ID,
  via,
} from './support/harness.js';

afterEach(cleanup);

it('a node:http2 client with a client certificate tunnels through HboneServer', async () => {
  const { client, ca } = await pki();
  const echo = await echoServer();
  const { port } = await hboneServer();
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    key: client.key,
    cert: client.certChain,
    ca: ca.certPem,
    minVersion: 'TLSv1.3',
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => {});
  onCleanup(() => session.destroy());
  const req = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${echo.port}` }, { endStream: false });
  const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
  expect(headers[':status']).toBe(200);
  const reply = readAll(req);
  const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
  req.write(big);
  req.end('!');
  const got = await reply;
  expect(got.length).toBe(big.length + 1);
  expect(got.subarray(-1).toString()).toBe('!');
});

it('HboneClient tunnels through a node:http2 server that implements CONNECT', async () => {
  const { server: creds, ca } = await pki();
  const echo = await echoServer();
  const peers: string[] = [];
  const h2server = http2.createSecureServer({
    key: creds.key,
    cert: creds.certChain,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  h2server.on('stream', (stream, headers) => {
    const tlsSocket = stream.session?.socket as import('node:tls').TLSSocket | undefined;
    peers.push(String(tlsSocket?.getPeerX509Certificate()?.subjectAltName));
    if (headers[':method'] !== 'CONNECT') {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    const [host, portText] = String(headers[':authority']).split(':');
    const up = net.connect({ host: host!, port: Number(portText), allowHalfOpen: true }, () => {
      stream.respond({ ':status': 200 });
      up.pipe(stream);
      stream.pipe(up);
    });
    up.on('error', () => stream.close(http2.constants.NGHTTP2_CONNECT_ERROR));
    stream.on('error', () => up.destroy());
  });
  h2server.on('sessionError', () => {});
  onCleanup(() => new Promise((r) => h2server.close(r)));
  h2server.listen(0, '127.0.0.1');
  await once(h2server, 'listening');
  const port = (h2server.address() as net.AddressInfo).port;
  const client = await hboneClient();
  const tunnels = await Promise.all(
    [1, 2, 3].map(() => client.connect({ address: '127.0.0.1', port: echo.port }, via(port))),
  );
  const replies = await Promise.all(
    tunnels.map((t, i) => {
      const r = readAll(t);
      t.end(`through nghttp2 #${i}`);
      return r;
    }),
  );
  expect(replies.map(String)).toEqual(['through nghttp2 #0', 'through nghttp2 #1', 'through nghttp2 #2']);
  expect(peers).toEqual([
    'URI:spiffe://cluster.local/ns/default/sa/client',
    'URI:spiffe://cluster.local/ns/default/sa/client',
    'URI:spiffe://cluster.local/ns/default/sa/client',
  ]);
  expect(client.stats().connections).toBe(1);
  expect(SERVER_ID).toBe('spiffe://cluster.local/ns/default/sa/server');
});
