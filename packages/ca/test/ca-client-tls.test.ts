import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { CaClient, CaServer, CertificateAuthority, TokenAuthenticator } from '../src/index.js';
import { HOUR, SLEEP } from './helpers.js';

const TOKEN = 'sleep-token-0123456789';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  jest.restoreAllMocks();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await CertificateAuthority.create();
});
afterAll(() => ca.close());

/** A CA on 127.0.0.1 whose serving certificate names `serving`. */
async function caAt(serving: { dnsNames?: string[]; ipAddresses?: string[] }): Promise<number> {
  const server = new CaServer({
    ca,
    authenticators: [new TokenAuthenticator([{ token: TOKEN, identity: SLEEP }])],
    serving,
  });
  cleanups.push(() => server.close());
  return server.listen(0, '127.0.0.1');
}

function client(port: number, serverName?: string): CaClient {
  const c = new CaClient({
    address: `127.0.0.1:${port}`,
    trustBundle: () => ca.trustBundle,
    token: TOKEN,
    ...(serverName ? { serverName } : {}),
  });
  cleanups.push(() => c.close());
  return c;
}

/** The `servername` option of every TLS connection opened while `fn` runs. */
async function sniOf(fn: () => Promise<unknown>): Promise<(string | undefined)[]> {
  // The module object itself (not an import namespace copy): grpc-js and our credentials call through it.
  const spy = jest.spyOn(require('node:tls') as typeof import('node:tls'), 'connect');
  await fn();
  return spy.mock.calls.map((args) => (args[0] as ConnectionOptions).servername);
}

describe('CaClient TLS: server name and certificate verification', () => {
  it('sends no SNI to an IP address and still requires the IP in the CA’s certificate', async () => {
    const port = await caAt({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const sni = await sniOf(() => client(port).fetchCertificate(SLEEP, { ttl: HOUR }));
    expect(sni).toEqual([undefined]);

    // The same CA serving a certificate without 127.0.0.1: refused, even though no SNI was sent.
    const other = await caAt({ dnsNames: ['localhost'], ipAddresses: ['10.9.9.9'] });
    await expect(client(other).fetchCertificate(SLEEP)).rejects.toMatchObject({
      code: 'ERR_CA_UNAVAILABLE',
      message: expect.stringMatching(/IP: 127\.0\.0\.1 is not in the cert's list|ERR_TLS_CERT_ALTNAME_INVALID/),
    });
  });

  it('sends serverName as SNI and checks the certificate against it', async () => {
    const port = await caAt({ dnsNames: ['cp.example'], ipAddresses: ['127.0.0.1'] });
    const sni = await sniOf(() => client(port, 'cp.example').fetchCertificate(SLEEP, { ttl: HOUR }));
    expect(sni).toEqual(['cp.example']);
    await expect(client(port, 'other.example').fetchCertificate(SLEEP)).rejects.toMatchObject({
      code: 'ERR_CA_UNAVAILABLE',
      message: expect.stringMatching(/other\.example/),
    });
  });

  it('emits no DEP0123 warning when connecting to 127.0.0.1 (fresh process: Node warns once per process)', () => {
    const script = join(__dirname, 'fixtures', 'ca-client-ip-warnings.ts');
    const r = spawnSync(process.execPath, ['--conditions=@ambient-ts/source', '--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 25_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { identity: string; warnings: { code?: string }[] };
    expect(out.identity).toBe(SLEEP);
    expect(out.warnings.filter((w) => w.code === 'DEP0123')).toEqual([]);
  });
});
