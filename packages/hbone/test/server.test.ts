import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import * as tls from 'node:tls';
import { type HboneError, type HboneRequest, HboneServer } from '../src/index.js';
import { FakeClock } from './support/fake-clock.js';
import {
  CLIENT_ID,
  cleanup,
  echoServer,
  forwardToAuthority,
  hboneClient,
  hboneServer,
  onCleanup,
  pki,
  readAll,
  rejection,
  SERVER_ID,
  via,
} from './support/harness.js';
import {
  ACK,
  END_HEADERS,
  frame,
  GOAWAY,
  HEADERS,
  literal,
  onFrames,
  PING,
  PREFACE,
  SETTINGS,
} from './support/raw-h2.js';

afterEach(cleanup);

describe('handler decisions', () => {
  it.each([400, 401, 503] as const)(
    'a handler rejection with %i reaches the client as ERR_HBONE_STATUS',
    async (status) => {
      const { server, port } = await hboneServer({ handler: (req) => req.reject(status, 'because') });
      const rejected = once(server, 'tunnelReject');
      const client = await hboneClient();
      const err = await rejection(client.connect({ address: '127.0.0.1', port: 9 }, via(port)));
      expect(err.code).toBe('ERR_HBONE_STATUS');
      expect(err.status).toBe(status);
      const [info, gotStatus, reason] = await rejected;
      expect(info.peerIdentity.toString()).toBe(CLIENT_ID);
      expect(gotStatus).toBe(status);
      expect(reason).toBe('because');
      // The connection survives a refused tunnel.
      expect(server.connectionCount).toBe(1);
    },
  );

  it('a handler that throws (upstream connect failed) answers 503', async () => {
    const { server, port } = await hboneServer();
    const rejected = once(server, 'tunnelReject');
    const client = await hboneClient();
    // The default test handler connects to the authority: port 1 refuses.
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(err.status).toBe(503);
    const [, , reason] = await rejected;
    expect(reason).toMatch(/upstream failed: connect ECONNREFUSED/);
  });

  it('a handler that never connects its upstream gets 503 at the upstream deadline', async () => {
    const clock = new FakeClock();
    let request: HboneRequest | undefined;
    const handlerCalled = new PassThrough();
    const { port } = await hboneServer({
      timers: clock,
      pingIntervalMs: 0,
      handler: (req) => {
        request = req;
        handlerCalled.end();
        return new Promise(() => {});
      },
    });
    const client = await hboneClient();
    const pending = rejection(client.connect({ address: '127.0.0.1', port: 9 }, via(port)));
    await once(handlerCalled, 'finish');
    clock.advance(10_000);
    const err = await pending;
    expect(err.status).toBe(503);
    expect(request?.signal.aborted).toBe(true);
  });

  it('gives the handler the parsed request', async () => {
    const echo = await echoServer();
    let seen: HboneRequest | undefined;
    const { port } = await hboneServer({
      handler: (req) => {
        seen = req;
        return forwardToAuthority(req);
      },
    });
    const client = await hboneClient();
    const t = await client.connect(
      { address: '127.0.0.1', port: echo.port },
      via(port, {
        baggage: {
          clusterName: 'c1',
          namespaceName: 'default',
          workloadName: 'sleep',
          serviceName: 'sleep',
          serviceVersion: 'v1',
        },
        forwarded: { for: { address: '10.1.2.3', port: 4567 }, host: 'sleep.default.svc.cluster.local' },
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
      }),
    );
    t.end('x');
    await readAll(t);
    expect(seen?.peerIdentity.toString()).toBe(CLIENT_ID);
    expect(seen?.authority).toEqual({ host: '127.0.0.1', port: echo.port, family: 4 });
    expect(seen?.baggage).toEqual({
      clusterName: 'c1',
      namespaceName: 'default',
      workloadKind: 'deployment',
      workloadName: 'sleep',
      serviceName: 'sleep',
      serviceVersion: 'v1',
    });
    expect(seen?.forwarded).toEqual({
      for: { address: '10.1.2.3', port: 4567 },
      host: 'sleep.default.svc.cluster.local',
    });
    expect(seen?.traceparent?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(seen?.remoteAddress).toBe('127.0.0.1');
    expect(seen?.headers).toContainEqual([':method', 'CONNECT']);
    // No originalDestination: the address the client dialled is the local one.
    expect([seen?.destinationAddress, seen?.destinationPort]).toEqual(['127.0.0.1', port]);
  });

  it('reports the original destination of a redirected connection, looked up once per connection', async () => {
    const echo = await echoServer();
    const seen: HboneRequest[] = [];
    const connections: Array<{ destinationAddress: string; destinationPort: number; localPort: number }> = [];
    const looked: number[] = [];
    const { server, port } = await hboneServer({
      // As SO_ORIGINAL_DST would answer after an iptables REDIRECT from the pod's address to this listener.
      originalDestination: (socket) => {
        looked.push(socket.remotePort ?? 0);
        return { address: '10.248.2.11', port: 15008 };
      },
      handler: (req) => {
        seen.push(req);
        return forwardToAuthority(req);
      },
    });
    server.on('connection', (info) => connections.push(info));
    const client = await hboneClient();
    for (let i = 0; i < 2; i++) {
      const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
      t.end('x');
      await readAll(t);
    }
    expect(looked).toHaveLength(1); // two tunnels, one pooled connection
    expect(connections).toEqual([
      expect.objectContaining({ destinationAddress: '10.248.2.11', destinationPort: 15008 }),
    ]);
    expect(connections[0]?.localPort).toBe(port);
    for (const req of seen) {
      expect([req.destinationAddress, req.destinationPort]).toEqual(['10.248.2.11', 15008]);
      expect([req.localAddress, req.localPort]).toEqual(['127.0.0.1', port]);
    }
  });

  it('falls back to the local address when originalDestination throws or has no answer', async () => {
    const echo = await echoServer();
    for (const lookup of [
      () => {
        throw new Error('ENOENT: no conntrack entry');
      },
      () => undefined,
    ]) {
      let seen: HboneRequest | undefined;
      const { port } = await hboneServer({
        originalDestination: lookup,
        handler: (req) => {
          seen = req;
          return forwardToAuthority(req);
        },
      });
      const client = await hboneClient();
      const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
      t.end('x');
      await readAll(t);
      expect([seen?.destinationAddress, seen?.destinationPort]).toEqual(['127.0.0.1', port]);
    }
  });

  it('refuses an originalDestination that is not a function', async () => {
    const { server: creds } = await pki();
    expect(
      () =>
        new HboneServer({
          credentials: creds,
          handler: forwardToAuthority,
          originalDestination: 'SO_ORIGINAL_DST' as never,
        }),
    ).toThrow(expect.objectContaining({ code: 'ERR_HBONE_INVALID_OPTION' }));
  });
});

describe('requests that are not HBONE', () => {
  async function h2Session(port: number): Promise<http2.ClientHttp2Session> {
    const { client, ca } = await pki();
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      key: client.key,
      cert: client.certChain,
      ca: ca.certPem,
      checkServerIdentity: () => undefined,
    });
    session.on('error', () => {});
    onCleanup(() => session.destroy());
    await once(session, 'remoteSettings');
    return session;
  }

  async function status(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<number> {
    const req = session.request(headers, { endStream: false });
    req.on('error', () => {});
    const [h] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
    req.close();
    return Number(h[':status']);
  }

  it('answers 400 to a non-CONNECT method and to a malformed authority, on the same connection', async () => {
    const { port, server } = await hboneServer();
    const reasons: string[] = [];
    server.on('tunnelReject', (_i, _s, reason) => reasons.push(reason));
    const session = await h2Session(port);
    expect(await status(session, { ':method': 'GET', ':path': '/', ':authority': '127.0.0.1:80' })).toBe(400);
    expect(await status(session, { ':method': 'CONNECT', ':authority': 'no-port-here' })).toBe(400);
    expect(await status(session, { ':method': 'CONNECT', ':authority': '[::1:80' })).toBe(400);
    expect(await status(session, { ':method': 'CONNECT', ':authority': '10.0.0.1:99999' })).toBe(400);
    expect(reasons[0]).toMatch(/method "GET" is not CONNECT/);
    expect(reasons[1]).toMatch(/has no port/);
    expect(server.connectionCount).toBe(1);
  });
});

describe('lifecycle', () => {
  it('drains: GOAWAY, open tunnels finish, new tunnels are refused, close() resolves after the last one', async () => {
    const echo = await echoServer();
    const { server, port } = await hboneServer();
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
    t.write('before drain;');
    const reply = readAll(t);
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    // New tunnels: the pooled connection is draining and the listener is gone.
    const err = await rejection(client.connect({ address: '127.0.0.1', port: echo.port }, via(port)));
    expect(err.code).toMatch(/ERR_HBONE_CONNECT|ERR_H2_REFUSED/);
    expect(closed).toBe(false);
    // The open tunnel still carries bytes both ways.
    t.end('after drain');
    expect((await reply).toString()).toBe('before drain;after drain');
    await closing;
    expect(server.connectionCount).toBe(0);
  });

  it('force-closes tunnels still open at the drain deadline', async () => {
    const clock = new FakeClock();
    const echo = await echoServer();
    const { server, port } = await hboneServer({ timers: clock, pingIntervalMs: 0 });
    const closedTunnel = once(server, 'tunnelClose');
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
    const tunnelError = new Promise<Error>((resolve) => {
      t.on('error', resolve);
      t.on('close', () => resolve(new Error('closed')));
    });
    t.resume();
    const closing = server.close();
    // Let GOAWAY go out, then pass the 5 s deadline.
    await new Promise((r) => setImmediate(r));
    clock.advance(5_000);
    await closing;
    await tunnelError;
    const [, stats] = await closedTunnel;
    expect(t.destroyed).toBe(true);
    expect(stats).toBeDefined();
    expect(server.connectionCount).toBe(0);
  });

  it('swaps certificates while tunnels are open: old tunnels keep working, new connections get the new one', async () => {
    const { ca } = await pki();
    const echo = await echoServer();
    const { server, port } = await hboneServer();
    const client = await hboneClient();
    const old = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port));
    const oldReply = readAll(old);
    old.write('old tunnel;');
    const rotatedId = 'spiffe://cluster.local/ns/default/sa/server-rotated';
    server.setCredentials(await ca.issue(rotatedId));
    // A new connection (new pool key: other expected identity) sees the rotated certificate.
    const fresh = await client.connect(
      { address: '127.0.0.1', port: echo.port },
      via(port, { expectedIdentities: [rotatedId] }),
    );
    fresh.end('new tunnel');
    expect((await readAll(fresh)).toString()).toBe('new tunnel');
    // And a connection expecting the old identity now fails: the server no longer presents it.
    const c2 = await hboneClient();
    const err = await rejection(c2.connect({ address: '127.0.0.1', port: echo.port }, via(port)));
    expect(err.code).toBe('ERR_HBONE_IDENTITY_MISMATCH');
    old.end('still here');
    expect((await oldReply).toString()).toBe('old tunnel;still here');
  });

  it('close() and destroy() are idempotent; a closed client refuses new tunnels', async () => {
    const { server } = await hboneServer();
    const client = await hboneClient();
    await Promise.all([server.close(), server.close()]);
    server.destroy();
    await client.close();
    await client.close();
    client.destroy();
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(1)));
    expect(err.code).toBe('ERR_HBONE_CLOSED');
    await expect(server.listen(0)).rejects.toMatchObject({ code: 'ERR_HBONE_CLOSED' });
  });
});

describe('GOAWAY', () => {
  it('a stream refused by GOAWAY is retried on a new connection', async () => {
    const { server: creds } = await pki();
    let connections = 0;
    const peer = tls.createServer(
      { key: creds.key, cert: creds.certChain, ca: creds.trustBundle, ALPNProtocols: ['h2'] },
      (s) => {
        const n = ++connections;
        s.on('error', () => {});
        s.write(frame(SETTINGS, 0, 0));
        onFrames(s, true, (type, flags, id) => {
          if (type === SETTINGS && !(flags & ACK)) s.write(frame(SETTINGS, ACK, 0));
          if (type !== HEADERS) return;
          if (n === 1) {
            // The first connection goes away without processing the stream (last stream id 0).
            const payload = Buffer.alloc(8);
            s.write(frame(GOAWAY, 0, 0, payload));
          } else {
            s.write(frame(HEADERS, END_HEADERS, id, Buffer.from([0x88])));
          }
        });
      },
    );
    onCleanup(() => {
      peer.close();
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    const client = await hboneClient();
    const t = await client.connect({ address: '127.0.0.1', port: 80 }, via((peer.address() as AddressInfo).port));
    expect(connections).toBe(2);
    t.destroy();
  });
});

describe('dead peers (PING keepalive)', () => {
  it('the client errors the tunnel when the server stops answering PINGs', async () => {
    const { server: creds } = await pki();
    // A server that completes the handshake, answers the first CONNECT with 200, then goes silent.
    const peer = tls.createServer(
      { key: creds.key, cert: creds.certChain, ca: creds.trustBundle, ALPNProtocols: ['h2'] },
      (s) => {
        s.on('error', () => {});
        s.write(frame(SETTINGS, 0, 0));
        onFrames(s, true, (type, flags, id) => {
          if (type === SETTINGS && !(flags & ACK)) s.write(frame(SETTINGS, ACK, 0));
          // :status 200 is HPACK static index 8.
          if (type === HEADERS) s.write(frame(HEADERS, END_HEADERS, id, Buffer.from([0x88])));
        });
      },
    );
    onCleanup(() => {
      peer.close();
    });
    peer.listen(0, '127.0.0.1');
    await once(peer, 'listening');
    const clock = new FakeClock();
    const client = await hboneClient({ timers: clock, pingIntervalMs: 10_000, pingTimeoutMs: 20_000 });
    const t = await client.connect({ address: '127.0.0.1', port: 80 }, via((peer.address() as AddressInfo).port));
    const failed = once(t, 'error');
    clock.advance(10_000);
    await new Promise((r) => setImmediate(r));
    clock.advance(20_000);
    const [err] = (await failed) as [HboneError];
    expect(`${err.code} ${(err.cause as HboneError | undefined)?.code}`).toMatch(/ERR_H2_PING_TIMEOUT/);
    expect(client.stats().connections).toBe(0);
  });

  it('the server drops a client that stops answering PINGs, closing its tunnels', async () => {
    const { client: creds, ca } = await pki();
    const echo = await echoServer();
    const clock = new FakeClock();
    const { server, port } = await hboneServer({ timers: clock, pingIntervalMs: 10_000, pingTimeoutMs: 20_000 });
    const opened = once(server, 'tunnelOpen');
    const connClosed = once(server, 'connectionClose');
    const s = tls.connect({
      host: '127.0.0.1',
      port,
      key: creds.key,
      cert: creds.certChain,
      ca: ca.certPem,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    });
    s.on('error', () => {});
    onCleanup(() => s.destroy());
    await once(s, 'secureConnect');
    // Preface, empty SETTINGS, then CONNECT 127.0.0.1:<echo> on stream 1; after that: silence.
    const block = Buffer.concat([literal(2, 'CONNECT'), literal(1, `127.0.0.1:${echo.port}`)]);
    s.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0), frame(HEADERS, END_HEADERS, 1, block)]));
    const pings: number[] = [];
    onFrames(s, false, (type) => {
      if (type === PING) pings.push(type);
    });
    s.resume();
    await opened;
    clock.advance(10_000);
    await new Promise((r) => setImmediate(r));
    clock.advance(20_000);
    const [info, err] = (await connClosed) as [unknown, HboneError];
    expect(info).toBeDefined();
    expect(`${err?.code} ${(err?.cause as HboneError | undefined)?.code}`).toMatch(/ERR_H2_PING_TIMEOUT/);
    expect(server.connectionCount).toBe(0);
  });
});

it('exposes the server identity constants used by the tests', () => {
  expect(SERVER_ID).toMatch(/^spiffe:\/\//);
});
