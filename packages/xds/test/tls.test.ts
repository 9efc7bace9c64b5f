import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ADDRESS_TYPE_URL, type XdsAuthRequest, XdsClient, XdsError } from '../src/index.js';
import { type Harness, seedWorkloads, startServer, waitFor } from './helpers.js';

let hasOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  hasOpenssl = false;
}
const withOpenssl = hasOpenssl ? describe : describe.skip;

const SPIFFE = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
let dir: string;
let pem: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', Buffer>;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(() => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), 'xds-tls-'));
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
  );
  const leaf = (name: string, san: string) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${name}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  };
  leaf('server', 'IP:127.0.0.1,DNS:localhost');
  leaf('client', `URI:${SPIFFE}`);
  const r = (f: string) => readFileSync(join(dir, f));
  pem = {
    ca: r('ca.pem'),
    serverCert: r('server.pem'),
    serverKey: r('server.key'),
    clientCert: r('client.pem'),
    clientKey: r('client.key'),
  };
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function uriSan(req: XdsAuthRequest): string {
  const san = req.certificate?.subjectaltname ?? '';
  const uri = san.split(', ').find((s) => s.startsWith('URI:'));
  if (!uri) throw new Error('client certificate has no URI SAN');
  return uri.slice(4);
}

withOpenssl('TLS with client authentication (openssl test certificates)', () => {
  async function tlsServer(): Promise<Harness> {
    const h = await startServer(
      { authenticate: (req) => uriSan(req) },
      undefined,
      grpc.ServerCredentials.createSsl(pem.ca, [{ cert_chain: pem.serverCert, private_key: pem.serverKey }], true),
    );
    cleanups.push(() => h.server.destroy());
    seedWorkloads(h.cache, 2);
    return h;
  }

  it('a client with a mesh certificate is served and its identity becomes the principal', async () => {
    const h = await tlsServer();
    const c = new XdsClient({
      target: h.target,
      node: { id: 'zt' },
      credentials: grpc.credentials.createSsl(pem.ca, pem.clientKey, pem.clientCert),
    }).subscribe(ADDRESS_TYPE_URL);
    cleanups.push(() => c.destroy());
    await c.start().ready();
    expect(c.resources(ADDRESS_TYPE_URL).size).toBe(2);
    expect(h.server.clients()[0]?.principal).toBe(SPIFFE);
  });

  it('a client without a certificate is refused', async () => {
    const h = await tlsServer();
    const c = new XdsClient({
      target: h.target,
      node: { id: 'zt' },
      credentials: grpc.credentials.createSsl(pem.ca),
    }).subscribe(ADDRESS_TYPE_URL);
    cleanups.push(() => c.destroy());
    const [err] = await waitFor<[XdsError]>(c.start(), 'disconnected');
    expect(err).toBeInstanceOf(XdsError);
    expect(err.code).toBe('ERR_XDS_STREAM');
    expect(h.server.stats().connected).toBe(0);
  });
});

describe('bearer token authentication hook', () => {
  async function tokenServer(): Promise<Harness> {
    const h = await startServer({
      authenticate: (req) =>
        req.bearerToken === 's3cret' ? { sub: 'system:serviceaccount:istio-system:ztunnel' } : undefined,
    });
    cleanups.push(() => h.server.destroy());
    seedWorkloads(h.cache, 1);
    return h;
  }

  it('accepts the right token and records the principal', async () => {
    const h = await tokenServer();
    const c = new XdsClient({ target: h.target, node: { id: 'zt' }, token: () => 's3cret' }).subscribe(
      ADDRESS_TYPE_URL,
    );
    cleanups.push(() => c.destroy());
    await c.start().ready();
    expect(h.server.clients()[0]?.principal).toEqual({ sub: 'system:serviceaccount:istio-system:ztunnel' });
  });

  it('refuses a wrong token with UNAUTHENTICATED and serves nothing', async () => {
    const h = await tokenServer();
    const c = new XdsClient({ target: h.target, node: { id: 'zt' }, token: async () => 'wrong' }).subscribe(
      ADDRESS_TYPE_URL,
    );
    cleanups.push(() => c.destroy());
    const [err] = await waitFor<[XdsError]>(c.start(), 'disconnected');
    expect((err.cause as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect(c.resources(ADDRESS_TYPE_URL).size).toBe(0);
  });
});
