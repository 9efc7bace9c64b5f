import { X509Certificate } from 'node:crypto';
import type { SpiffeId } from '@ambient-ts/identity';
import { Client, credentials, Server, status } from '@grpc/grpc-js';
import {
  type AuthenticatedCaller,
  CaClient,
  CaError,
  CaServer,
  CertificateAuthority,
  ServingCredentials,
  TokenAuthenticator,
} from '../src/index.js';
import { HOUR, HTTPBIN, SLEEP, ZTUNNEL } from './helpers.js';

const SLEEP_TOKEN = 'sleep-token-0123456789';
const ZTUNNEL_TOKEN = 'ztunnel-node1-token';
const ECHO_PATH = '/test.Echo/Echo';
const refused = (grpcCode: number) => expect.objectContaining({ code: 'ERR_CA_REFUSED', grpcCode });

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await CertificateAuthority.create();
});
afterAll(() => ca.close());

/** A grpc.Server owned by the test, serving an echo service, with a CaServer attached to it. */
async function sharedServer(options: Omit<ConstructorParameters<typeof CaServer>[0], 'ca'>) {
  const server = new Server();
  server.addService(
    {
      Echo: {
        path: ECHO_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    { Echo: (call: { request: Buffer }, cb: (e: null, v: Buffer) => void) => cb(null, call.request) },
  );
  const caServer = new CaServer({ ca, ...options }).attachTo(server);
  const serving = new ServingCredentials({ ca, dnsNames: ['cp.example'] });
  cleanups.push(() => server.forceShutdown());
  cleanups.push(() => serving.stop());
  cleanups.push(() => caServer.close());
  const creds = await serving.start();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  const client = (token: string | undefined, impersonate = false) => {
    const c = new CaClient({
      address: `127.0.0.1:${port}`,
      serverName: 'cp.example',
      trustBundle: () => ca.trustBundle,
      ...(token === undefined ? {} : { token }),
      impersonate,
    });
    cleanups.push(() => c.close());
    return c;
  };
  const echo = async (text: string): Promise<string> => {
    const raw = new Client(`127.0.0.1:${port}`, credentials.createSsl(Buffer.from(ca.trustBundle)), {
      'grpc.ssl_target_name_override': 'cp.example',
    });
    cleanups.push(() => raw.close());
    const out = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest(
        ECHO_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(text),
        (err, v) => (err ? reject(err) : resolve(v as Buffer)),
      ),
    );
    return out.toString();
  };
  return { caServer, serving, client, echo };
}

const tokens = () =>
  new TokenAuthenticator([
    { token: SLEEP_TOKEN, identity: SLEEP },
    { token: ZTUNNEL_TOKEN, identity: ZTUNNEL, node: 'node-1' },
  ]);

describe('CaServer.attachTo: the CA service on a grpc.Server someone else owns', () => {
  it('issues certificates next to the owner’s other services, behind ServingCredentials issued by the CA', async () => {
    const s = await sharedServer({ authenticators: [tokens()] });
    const cert = await s.client(SLEEP_TOKEN).fetchCertificate(SLEEP, { ttl: HOUR });
    expect(cert.identity).toBe(SLEEP);
    expect(await s.echo('same port')).toBe('same port');
    expect(s.serving.certificateChain).toBeDefined();
    expect(new X509Certificate(s.serving.certificateChain as string).subjectAltName).toBe(
      'DNS:cp.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    // The CaServer's own listener was never started.
    expect(s.caServer.port).toBeUndefined();
    expect(s.caServer.servingCertificate).toBeUndefined();
    expect(s.caServer.stats.issued).toBe(1);
  });

  it('applies the impersonation rules and the per-caller rate limit there too', async () => {
    const s = await sharedServer({
      authenticators: [tokens()],
      trustedNodeAccounts: [ZTUNNEL],
      isWorkloadOnNode: (node, id) => node === 'node-1' && id.toString() === HTTPBIN,
      rateLimit: { burst: 2, perSecond: 0.001 },
    });
    const zt = s.client(ZTUNNEL_TOKEN, true);
    await expect(zt.fetchCertificate(HTTPBIN)).resolves.toMatchObject({ identity: HTTPBIN });
    await expect(s.client(SLEEP_TOKEN, true).fetchCertificate(HTTPBIN)).rejects.toThrow(
      refused(status.PERMISSION_DENIED),
    );
    const bad = s.client('not-a-known-token');
    await expect(bad.fetchCertificate(SLEEP)).rejects.toThrow(refused(status.UNAUTHENTICATED));
    await expect(bad.fetchCertificate(SLEEP)).rejects.toThrow(refused(status.UNAUTHENTICATED));
    await expect(bad.fetchCertificate(SLEEP)).rejects.toThrow(refused(status.RESOURCE_EXHAUSTED));
    expect(s.caServer.stats.rateLimited).toBe(1);
    // Other callers are not slowed.
    await expect(zt.fetchCertificate(HTTPBIN)).resolves.toMatchObject({ identity: HTTPBIN });
  });

  it('refuses calls with UNAVAILABLE after close(), while the owner keeps serving', async () => {
    const s = await sharedServer({ authenticators: [tokens()] });
    const refusals: string[] = [];
    s.caServer.on('refused', (e) => refusals.push(e.code));
    await s.caServer.close();
    await expect(s.client(SLEEP_TOKEN).fetchCertificate(SLEEP)).rejects.toMatchObject({
      grpcCode: status.UNAVAILABLE,
    });
    expect(refusals).toEqual(['ERR_CLOSED']);
    expect(await s.echo('still up')).toBe('still up');
    expect(() => s.caServer.attachTo(new Server())).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });
});

describe('CaServer authorize hook', () => {
  it('sees the requested identity (own or impersonated) and can only narrow what is allowed', async () => {
    const seen: Array<{ caller: string; node?: string; requested: string }> = [];
    const authorize = (caller: AuthenticatedCaller, requested: SpiffeId) => {
      seen.push({ caller: caller.identity.toString(), requested: requested.toString(), node: caller.node });
      if (requested.toString() === HTTPBIN && caller.node === 'node-1') return false;
      if (requested.toString() === SLEEP && caller.identity.toString() === SLEEP) {
        throw new CaError('ERR_IDENTITY_INVALID', 'sleep is retired: use a new service account');
      }
      return true;
    };
    const s = await sharedServer({
      authenticators: [tokens()],
      trustedNodeAccounts: [ZTUNNEL],
      isWorkloadOnNode: () => true,
      authorize,
    });
    // Refused by the hook although the built-in rules allow it.
    await expect(s.client(ZTUNNEL_TOKEN, true).fetchCertificate(HTTPBIN)).rejects.toThrow(
      /may not obtain a certificate for .*httpbin: refused by this CA's authorization rules/,
    );
    // A CaError thrown by the hook keeps its code and message.
    await expect(s.client(SLEEP_TOKEN).fetchCertificate(SLEEP)).rejects.toThrow(
      expect.objectContaining({
        grpcCode: status.INVALID_ARGUMENT,
        message: expect.stringMatching(/sleep is retired/),
      }),
    );
    // Allowed by the hook.
    await expect(s.client(ZTUNNEL_TOKEN, false).fetchCertificate(ZTUNNEL)).resolves.toMatchObject({
      identity: ZTUNNEL,
    });
    // The hook never widens: a caller the built-in rules refuse is refused before the hook runs.
    await expect(s.client(SLEEP_TOKEN, true).fetchCertificate(HTTPBIN)).rejects.toThrow(/not a trusted node account/);
    expect(seen).toEqual([
      { caller: ZTUNNEL, node: 'node-1', requested: HTTPBIN },
      { caller: SLEEP, node: undefined, requested: SLEEP },
      { caller: ZTUNNEL, node: 'node-1', requested: ZTUNNEL },
    ]);
  });
});
