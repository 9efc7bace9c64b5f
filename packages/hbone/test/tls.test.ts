import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { HboneError, type TlsCredentials } from '../src/index.js';
import {
  CLIENT_ID,
  cleanup,
  echoServer,
  hboneClient,
  hboneServer,
  onCleanup,
  pki,
  readAll,
  rejection,
  SERVER_ID,
  via,
} from './support/harness.js';
import { createCa, expiredOptions } from './support/pki.js';

afterEach(cleanup);

/** A plain Node TLS server standing in for a non-conforming HBONE peer. */
async function tlsPeer(options: tls.TlsOptions, onSecure?: (s: tls.TLSSocket) => void): Promise<number> {
  const server = tls.createServer(options, (s) => {
    s.on('error', () => {});
    if (onSecure) onSecure(s);
    else s.destroy();
  });
  server.on('tlsClientError', () => {});
  onCleanup(() => new Promise((r) => server.close(r)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function serverOptions(c: TlsCredentials, extra: tls.TlsOptions = {}): tls.TlsOptions {
  return { key: c.key, cert: c.certChain, ca: c.trustBundle, ALPNProtocols: ['h2'], ...extra };
}

/** A raw TLS client against an HboneServer; resolves once the connection ended, however it ended. */
function rawClient(port: number, options: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    s.on('error', () => {});
    s.on('close', () => resolve());
    s.resume();
  });
}

describe('client verifies the server', () => {
  it('refuses a server whose identity is not expected', async () => {
    const echo = await echoServer();
    const { port } = await hboneServer();
    const client = await hboneClient();
    const err = await rejection(
      client.connect(
        { address: '127.0.0.1', port: echo.port },
        via(port, { expectedIdentities: ['spiffe://cluster.local/ns/default/sa/someone-else'] }),
      ),
    );
    expect(err).toBeInstanceOf(HboneError);
    expect(err.code).toBe('ERR_HBONE_IDENTITY_MISMATCH');
    expect(err.message).toContain(SERVER_ID);
    expect(err.message).toContain('someone-else');
  });

  it('refuses a server certificate from an untrusted CA', async () => {
    const rogue = await createCa('rogue');
    const creds = await rogue.issue(SERVER_ID);
    const port = await tlsPeer(serverOptions(creds));
    const client = await hboneClient();
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/untrusted server certificate/);
  });

  it('refuses an expired server certificate', async () => {
    const { ca } = await pki();
    const creds = await ca.issue(SERVER_ID, expiredOptions());
    const port = await tlsPeer(serverOptions(creds));
    const client = await hboneClient();
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/server certificate has expired/);
  });

  it('refuses a TLS 1.2-only server', async () => {
    const { server } = await pki();
    const port = await tlsPeer(serverOptions(server, { maxVersion: 'TLSv1.2' }));
    const client = await hboneClient();
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/does not speak TLS 1\.3/);
  });

  it('refuses a server that does not select ALPN h2', async () => {
    const { server } = await pki();
    const client = await hboneClient();
    const http1 = await tlsPeer(serverOptions(server, { ALPNProtocols: ['http/1.1'] }));
    const e1 = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(http1)));
    expect(e1.code).toBe('ERR_HBONE_ALPN');
    const none = await tlsPeer(serverOptions(server, { ALPNProtocols: [] }), () => {});
    const e2 = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(none)));
    expect(e2.code).toBe('ERR_HBONE_ALPN');
    expect(e2.message).toMatch(/did not select ALPN "h2"/);
  });

  it('sends no SNI', async () => {
    const { server } = await pki();
    let servername: string | false | null | undefined;
    const port = await tlsPeer(serverOptions(server), (s) => {
      servername = s.servername;
      s.destroy();
    });
    const client = await hboneClient();
    await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(servername).toBe(false);
  });

  it('reports an unreachable server as ERR_HBONE_CONNECT', async () => {
    const client = await hboneClient();
    // Port 1 on loopback: nothing listens there.
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 80 }, via(1)));
    expect(err.code).toBe('ERR_HBONE_CONNECT');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe('server verifies the client', () => {
  async function expectRefused(
    clientCreds: TlsCredentials | undefined,
    message: RegExp,
    code = 'ERR_HBONE_TLS',
  ): Promise<void> {
    const { port, server } = await hboneServer();
    const tlsError = once(server, 'tlsError');
    if (clientCreds) {
      const client = await hboneClient({ credentials: clientCreds });
      const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
      expect(err.code).toMatch(/^ERR_HBONE_TLS$|^ERR_H2_CONNECTION_CLOSED$/);
    }
    const [err] = (await tlsError) as [HboneError];
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    expect(server.connectionCount).toBe(0);
  }

  it('refuses a client certificate from an untrusted CA, and the client says why it was probably refused', async () => {
    const rogue = await createCa('rogue');
    const { ca } = await pki();
    // The client trusts the real server, but its own certificate comes from the rogue CA.
    const creds = await rogue.issue(CLIENT_ID, { trustBundle: ca.certPem });
    const { port, server } = await hboneServer();
    const tlsError = once(server, 'tlsError');
    const client = await hboneClient({ credentials: creds });
    const err = await rejection(client.connect({ address: '127.0.0.1', port: 1 }, via(port)));
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/rejected our client certificate/);
    const [serverErr] = (await tlsError) as [HboneError];
    expect(serverErr.message).toMatch(/untrusted client certificate/);
  });

  it('refuses an expired client certificate', async () => {
    const { ca } = await pki();
    await expectRefused(await ca.issue(CLIENT_ID, expiredOptions()), /client certificate has expired/);
  });

  it('refuses a client from another trust domain', async () => {
    const { ca } = await pki();
    await expectRefused(
      await ca.issue('spiffe://other.domain/ns/default/sa/client'),
      /trust domain "other.domain", not ours \("cluster.local"\)/,
      'ERR_HBONE_PEER_IDENTITY',
    );
  });

  it('refuses a client without a certificate', async () => {
    const { port, server } = await hboneServer();
    const tlsError = once(server, 'tlsError');
    await rawClient(port, { ALPNProtocols: ['h2'] });
    const [err] = (await tlsError) as [HboneError];
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/missing client certificate/);
  });

  it('refuses a TLS 1.2-only client', async () => {
    const { client } = await pki();
    const { port, server } = await hboneServer();
    const tlsError = once(server, 'tlsError');
    await rawClient(port, { ALPNProtocols: ['h2'], key: client.key, cert: client.certChain, maxVersion: 'TLSv1.2' });
    const [err] = (await tlsError) as [HboneError];
    expect(err.code).toBe('ERR_HBONE_TLS');
    expect(err.message).toMatch(/does not speak TLS 1\.3/);
  });

  it('refuses a client that does not offer ALPN h2', async () => {
    const { client } = await pki();
    const { port, server } = await hboneServer();
    const errors: HboneError[] = [];
    server.on('tlsError', (e) => errors.push(e));
    await rawClient(port, { ALPNProtocols: ['http/1.1'], key: client.key, cert: client.certChain });
    await rawClient(port, { key: client.key, cert: client.certChain });
    expect(errors.map((e) => e.code)).toEqual(['ERR_HBONE_ALPN', 'ERR_HBONE_ALPN']);
  });
});

describe('credentials', () => {
  it('accepts a trust bundle with several roots', async () => {
    const { ca, client } = await pki();
    const second = await createCa('second root');
    const serverCreds = await second.issue(SERVER_ID, { trustBundle: ca.certPem + second.certPem });
    const echo = await echoServer();
    const { port } = await hboneServer({ credentials: serverCreds });
    const c = await hboneClient({ credentials: { ...client, trustBundle: second.certPem + ca.certPem } });
    const t = await c.connect({ address: '127.0.0.1', port: echo.port }, via(port));
    t.end('multi-root');
    expect((await readAll(t)).toString()).toBe('multi-root');
  });

  it('picks server credentials by the local address the connection arrived on', async () => {
    const { ca } = await pki();
    const a = await ca.issue('spiffe://cluster.local/ns/default/sa/workload-a');
    const b = await ca.issue('spiffe://cluster.local/ns/default/sa/workload-b');
    const seen: string[] = [];
    const echo = await echoServer();
    const { server, port } = await hboneServer(
      {
        credentials: async (local) => {
          seen.push(local.address);
          return local.address === '127.0.0.2' ? b : a;
        },
      },
      '0.0.0.0',
    );
    server.on('tlsError', (e) => seen.push(e.message));
    const client = await hboneClient();
    const t1 = await client.connect(
      { address: '127.0.0.1', port: echo.port },
      {
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/workload-a'],
        server: { address: '127.0.0.1', port },
      },
    );
    const t2 = await client.connect(
      { address: '127.0.0.1', port: echo.port },
      {
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/workload-b'],
        server: { address: '127.0.0.2', port },
      },
    );
    t1.end('a');
    t2.end('b');
    expect((await readAll(t1)).toString()).toBe('a');
    expect((await readAll(t2)).toString()).toBe('b');
    expect(seen).toEqual(['127.0.0.1', '127.0.0.2']);
  });

  it('client credentials come from a provider keyed by source identity', async () => {
    const { ca } = await pki();
    const echo = await echoServer();
    const { server, port } = await hboneServer();
    const peers: string[] = [];
    server.on('connection', (info) => peers.push(info.peerIdentity.toString()));
    const asked: Array<string | undefined> = [];
    const client = await hboneClient({
      credentials: async (source) => {
        asked.push(source);
        return ca.issue(source ?? CLIENT_ID);
      },
    });
    for (const source of ['spiffe://cluster.local/ns/a/sa/one', 'spiffe://cluster.local/ns/b/sa/two']) {
      const t = await client.connect({ address: '127.0.0.1', port: echo.port }, via(port, { sourceIdentity: source }));
      t.end('.');
      await readAll(t);
    }
    expect(asked).toEqual(['spiffe://cluster.local/ns/a/sa/one', 'spiffe://cluster.local/ns/b/sa/two']);
    expect(peers).toEqual(asked);
  });

  it('rejects unusable credentials with ERR_HBONE_INVALID_OPTION', async () => {
    const { ca, client } = await pki();
    const other = await ca.issue(CLIENT_ID);
    const { HboneServer } = await import('../src/index.js');
    const make = (credentials: TlsCredentials) => () =>
      new HboneServer({ credentials, handler: () => ({ status: 503 }) as never });
    expect(make({ ...client, key: other.key })).toThrow(/does not belong to the leaf certificate/);
    expect(make({ ...client, certChain: 'nope' })).toThrow(/not a PEM certificate chain/);
    expect(make({ ...client, trustBundle: '' })).toThrow(/trustBundle is missing/);
    const noSpiffe = await ca.issue('https://example.com/not-spiffe');
    expect(make(noSpiffe)).toThrow(/no SPIFFE identity/);
    try {
      make({ ...client, key: other.key })();
    } catch (err) {
      expect((err as HboneError).code).toBe('ERR_HBONE_INVALID_OPTION');
    }
  });
});
