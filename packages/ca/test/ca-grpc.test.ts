import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SpiffeId } from '@ambient-ts/identity';
import { Client, credentials, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import {
  CaClient,
  CaServer,
  CertificateAuthority,
  ClientCertificateAuthenticator,
  createCsr,
  generateKey,
  TokenAuthenticator,
} from '../src/index.js';
import { HOUR, HTTPBIN, openssl, opensslVerify, SLEEP, tempDir, withOpenssl, ZTUNNEL } from './helpers.js';

const dir = tempDir();
const SLEEP_TOKEN = 'sleep-token-0123456789';
const ZTUNNEL_TOKEN = 'ztunnel-node1-token';
const code = (c: string, grpcCode?: number) =>
  expect.objectContaining(grpcCode === undefined ? { code: c } : { code: c, grpcCode });

const cleanups: (() => unknown)[] = [];
/** Registers cleanup for the current test (run after it, in reverse order). */
const cleanup = (fn: () => unknown) => cleanups.push(fn);
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let ca: CertificateAuthority;
let server: CaServer;
let address: string;
const workloadsOnNode: Record<string, string[]> = { 'node-1': [HTTPBIN] };

beforeAll(async () => {
  ca = await CertificateAuthority.create();
  const tokens = new TokenAuthenticator([
    { token: SLEEP_TOKEN, identity: SLEEP },
    { token: ZTUNNEL_TOKEN, identity: ZTUNNEL, node: 'node-1' },
    // A node-bound token of an identity that is not a trusted node account.
    { token: 'sleep-with-node', identity: SLEEP, node: 'node-1' },
  ]);
  server = new CaServer({
    ca,
    authenticators: [tokens, new ClientCertificateAuthenticator(ca)],
    trustedNodeAccounts: [ZTUNNEL],
    isWorkloadOnNode: async (node, id: SpiffeId) => (workloadsOnNode[node] ?? []).includes(id.toString()),
    clusterId: 'Kubernetes',
    rateLimit: { burst: 5, perSecond: 0.001 },
  });
  const port = await server.listen(0, '127.0.0.1');
  address = `127.0.0.1:${port}`;
});
afterAll(async () => {
  await server.close();
  await ca.close();
});

function client(extra: Partial<ConstructorParameters<typeof CaClient>[0]> = {}): CaClient {
  const c = new CaClient({
    address,
    serverName: 'localhost',
    trustBundle: () => ca.trustBundle,
    token: SLEEP_TOKEN,
    clusterId: 'Kubernetes',
    ...extra,
  });
  cleanup(() => c.close());
  return c;
}

describe('CA gRPC API end to end', () => {
  withOpenssl('issues a verified certificate for the token identity over TLS', async () => {
    const c = client();
    const cert = await c.fetchCertificate(SLEEP, { ttl: HOUR });
    expect(cert.identity).toBe(SLEEP);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(HOUR + 60_000);
    expect(new X509Certificate(cert.certChain).checkPrivateKey(require('node:crypto').createPrivateKey(cert.key))).toBe(
      true,
    );
    expect(opensslVerify(dir, cert.trustBundle, cert.certChain).status).toBe(0);
    expect(openssl(['x509', '-noout', '-ext', 'subjectAltName'], cert.certChain).out).toContain(`URI:${SLEEP}`);
    expect(server.stats.issued).toBeGreaterThan(0);
  });

  it('signs the authenticated identity, not what the CSR asks for', async () => {
    const c = client();
    const chain = await c.createCertificate(createCsr(await generateKey(), HTTPBIN));
    expect(new X509Certificate(chain[0] as string).subjectAltName).toBe(`URI:${SLEEP}`);
    expect(chain[chain.length - 1]).toBe(ca.trustBundle);
  });

  it('refuses callers without credentials or with an unknown token (UNAUTHENTICATED)', async () => {
    await expect(client({ token: undefined }).fetchCertificate(SLEEP)).rejects.toThrow(
      code('ERR_CA_REFUSED', status.UNAUTHENTICATED),
    );
    await expect(client({ token: 'nope' }).fetchCertificate(SLEEP)).rejects.toThrow(/bearer token is not known/);
  });

  it('refuses a bad CSR or TTL (INVALID_ARGUMENT) and another cluster (PERMISSION_DENIED)', async () => {
    const c = client({ token: 'sleep-with-node' });
    await expect(c.createCertificate('garbage')).rejects.toThrow(code('ERR_CA_REFUSED', status.INVALID_ARGUMENT));
    await expect(c.fetchCertificate(SLEEP, { ttl: 91 * 24 * HOUR })).rejects.toThrow(/exceeds the maximum of 90d/);
    await expect(client({ clusterId: 'other' }).fetchCertificate(SLEEP)).rejects.toThrow(
      code('ERR_CA_REFUSED', status.PERMISSION_DENIED),
    );
  });

  it('reads the token file on every request', async () => {
    const file = join(dir, 'token');
    writeFileSync(file, 'wrong\n');
    const c = client({ token: undefined, tokenFile: file });
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(code('ERR_CA_REFUSED', status.UNAUTHENTICATED));
    writeFileSync(file, `${SLEEP_TOKEN}\n`);
    await expect(c.fetchCertificate(SLEEP)).resolves.toMatchObject({ identity: SLEEP });
  });

  it('lets a mesh certificate renew itself (client certificate authentication)', async () => {
    const mine = await ca.issue({ identity: HTTPBIN, ttl: HOUR });
    const c = client({
      token: undefined,
      clientCertificate: () => ({ key: mine.key, certChain: mine.chain.join(''), trustBundle: mine.trustBundle }),
    });
    await expect(c.fetchCertificate(HTTPBIN)).resolves.toMatchObject({ identity: HTTPBIN });
    // Asking for another identity with a certificate is still signed for the certificate's identity only.
    const chain = await c.createCertificate(createCsr(await generateKey(), SLEEP));
    expect(new X509Certificate(chain[0] as string).subjectAltName).toBe(`URI:${HTTPBIN}`);
    // A certificate from another CA does not authenticate (TLS does not vouch for it, so it is not even seen).
    const other = await CertificateAuthority.create();
    const foreign = await other.issue({ identity: HTTPBIN });
    const f = client({
      token: undefined,
      clientCertificate: () => ({ key: foreign.key, certChain: foreign.certificate, trustBundle: foreign.trustBundle }),
    });
    await expect(f.fetchCertificate(HTTPBIN)).rejects.toThrow(code('ERR_CA_REFUSED', status.UNAUTHENTICATED));
    await other.close();
  });

  it('lets a trusted node proxy impersonate only workloads on its node', async () => {
    const zt = client({ token: ZTUNNEL_TOKEN, impersonate: true });
    await expect(zt.fetchCertificate(HTTPBIN)).resolves.toMatchObject({ identity: HTTPBIN });
    // Not on node-1.
    await expect(zt.fetchCertificate(SLEEP)).rejects.toThrow(/no workload with identity .*sleep runs on node node-1/);
    workloadsOnNode['node-1']?.push(SLEEP);
    await expect(zt.fetchCertificate(SLEEP)).resolves.toMatchObject({ identity: SLEEP });
    // A caller that is not a trusted node account may not impersonate, even with a node-bound token.
    const notTrusted = client({ token: 'sleep-with-node', impersonate: true });
    await expect(notTrusted.fetchCertificate(HTTPBIN)).rejects.toThrow(
      code('ERR_CA_REFUSED', status.PERMISSION_DENIED),
    );
    await expect(notTrusted.fetchCertificate(HTTPBIN)).rejects.toThrow(/not a trusted node account/);
    // Impersonating a malformed identity.
    await expect(
      zt.createCertificate(createCsr(await generateKey(), SLEEP), { impersonatedIdentity: 'spiffe://x' }),
    ).rejects.toThrow(code('ERR_CA_REFUSED', status.INVALID_ARGUMENT));
  });

  it('is wire-compatible: a hand-encoded IstioCertificateRequest with Struct metadata is understood', async () => {
    const csr = createCsr(await generateKey(), HTTPBIN);
    const str = (field: number, s: string | Buffer) => {
      const b = Buffer.from(s);
      return Buffer.concat([Buffer.from([(field << 3) | 2]), varint(b.length), b]);
    };
    // Struct { fields: map<string, Value> = 1 } ; Value { string_value = 3 }
    const entry = Buffer.concat([str(1, 'ImpersonatedIdentity'), str(2, str(3, HTTPBIN))]);
    const struct = str(1, entry);
    const request = Buffer.concat([str(1, csr), Buffer.from([3 << 3]), varint(7200), str(4, struct)]);
    const raw = new Client(address, credentials.createSsl(Buffer.from(ca.trustBundle)), {
      'grpc.ssl_target_name_override': 'localhost',
    });
    cleanup(() => raw.close());
    const md = new Metadata();
    md.set('authorization', `Bearer ${ZTUNNEL_TOKEN}`);
    const response = await new Promise<Buffer>((resolve, reject) =>
      raw.makeUnaryRequest(
        '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        (b: Buffer) => b,
        (b: Buffer) => b,
        request,
        md,
        (err, v) => (err ? reject(err) : resolve(v as Buffer)),
      ),
    );
    // IstioCertificateResponse: repeated string cert_chain = 1.
    const chain: string[] = [];
    for (let off = 0; off < response.length; ) {
      expect(response[off]).toBe(0x0a);
      const [len, n] = readVarint(response, off + 1);
      chain.push(response.subarray(off + 1 + n, off + 1 + n + len).toString());
      off += 1 + n + len;
    }
    const leaf = new X509Certificate(chain[0] as string);
    expect(leaf.subjectAltName).toBe(`URI:${HTTPBIN}`);
    expect(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)).toBe(2 * HOUR + 60_000);
    expect(chain[1]).toBe(ca.trustBundle);
  });

  it('rate-limits a caller that floods bad requests without slowing good callers', async () => {
    const limiter = new CaServer({
      ca,
      authenticators: [new TokenAuthenticator([{ token: SLEEP_TOKEN, identity: SLEEP }])],
      rateLimit: { burst: 3, perSecond: 0.001 },
    });
    const port = await limiter.listen(0, '127.0.0.1');
    cleanup(() => limiter.close());
    const bad = client({ address: `127.0.0.1:${port}`, token: 'attacker' });
    const good = client({ address: `127.0.0.1:${port}` });
    const codes: number[] = [];
    const goodResults = await Promise.all([
      ...Array.from({ length: 20 }, () =>
        bad.fetchCertificate(SLEEP).catch((e) => {
          codes.push(e.grpcCode);
          return undefined;
        }),
      ),
      ...Array.from({ length: 10 }, () => good.fetchCertificate(SLEEP)),
    ]);
    expect(goodResults.slice(20).every((c) => c?.identity === SLEEP)).toBe(true);
    expect(codes.filter((c) => c === status.UNAUTHENTICATED)).toHaveLength(3);
    expect(codes.filter((c) => c === status.RESOURCE_EXHAUSTED)).toHaveLength(17);
    expect(limiter.stats).toMatchObject({ issued: 10, rateLimited: 17 });
    // A good caller that starts sending bad CSRs is limited too, per caller.
    for (let i = 0; i < 3; i++)
      await expect(good.createCertificate('bad csr')).rejects.toThrow(code('ERR_CA_REFUSED', status.INVALID_ARGUMENT));
    await expect(good.createCertificate('bad csr')).rejects.toThrow(code('ERR_CA_REFUSED', status.RESOURCE_EXHAUSTED));
  });

  it('client rejects a chain for another identity or one that does not verify', async () => {
    const other = await CertificateAuthority.create();
    const fake = new Server();
    let answer: (csr: string) => Promise<string[]> = async () => [];
    fake.addService(
      {
        CreateCertificate: {
          path: '/istio.v1.auth.IstioCertificateService/CreateCertificate',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (chain: string[]) =>
            Buffer.concat(
              chain.map((s) => Buffer.concat([Buffer.from([0x0a]), varint(Buffer.byteLength(s)), Buffer.from(s)])),
            ),
          responseDeserialize: (b: Buffer) => b,
        },
      },
      {
        CreateCertificate: (call: { request: Buffer }, cb: (e: null, v: string[]) => void) => {
          const csr =
            call.request
              .toString('latin1')
              .match(/-----BEGIN CERTIFICATE REQUEST-----[\s\S]+?-----END CERTIFICATE REQUEST-----\n/)?.[0] ?? '';
          void answer(csr).then((v) => cb(null, v));
        },
      },
    );
    const serving = await ca.issue({ dnsNames: ['localhost'] });
    const port = await new Promise<number>((resolve, reject) =>
      fake.bindAsync(
        '127.0.0.1:0',
        ServerCredentials.createSsl(null, [
          { private_key: Buffer.from(serving.key), cert_chain: Buffer.from(serving.certificate) },
        ]),
        (e, p) => (e ? reject(e) : resolve(p)),
      ),
    );
    cleanup(() => fake.forceShutdown());
    const c = client({ address: `127.0.0.1:${port}` });
    answer = async (csr) => (await ca.sign(csr, { identity: HTTPBIN })).certChain;
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(/the leaf is for .*httpbin, not .*sleep/);
    answer = async (csr) => {
      const issued = await other.sign(csr, { identity: SLEEP });
      return [issued.certificate, ca.trustBundle];
    };
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(code('ERR_CA_RESPONSE_INVALID'));
    answer = async () => [(await ca.issue({ identity: SLEEP })).certificate, ca.trustBundle];
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(/does not hold the public key of our request/);
    answer = async () => ['only one'];
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(code('ERR_CA_RESPONSE_INVALID'));
    await other.close();
  });

  it('reports an unreachable CA as ERR_CA_UNAVAILABLE and honours abort', async () => {
    const c = client({ address: '127.0.0.1:1', timeout: 2000 });
    await expect(c.fetchCertificate(SLEEP)).rejects.toThrow(code('ERR_CA_UNAVAILABLE'));
    const ac = new AbortController();
    ac.abort();
    await expect(client().fetchCertificate(SLEEP, { signal: ac.signal })).rejects.toThrow(code('ERR_ABORTED'));
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function readVarint(b: Buffer, off: number): [number, number] {
  let v = 0;
  let mul = 1;
  let n = 0;
  for (;;) {
    const byte = b[off + n] as number;
    v += (byte & 0x7f) * mul;
    mul *= 128;
    n++;
    if (!(byte & 0x80)) return [v, n];
  }
}
