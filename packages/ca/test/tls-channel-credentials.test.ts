import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority, TlsChannelCredentials, type TlsChannelCredentialsOptions } from '../src/index.js';

const PATH = '/test.Echo/Echo';
const raw = (b: Buffer): Buffer => b;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let ours: CertificateAuthority;
let other: CertificateAuthority;
beforeAll(async () => {
  [ours, other] = await Promise.all([CertificateAuthority.create(), CertificateAuthority.create()]);
});
afterAll(async () => {
  await Promise.all([ours.close(), other.close()]);
});

/** A real gRPC echo server on 127.0.0.1 presenting a certificate for `names` issued by `issuer`. */
async function echoServer(
  issuer: CertificateAuthority,
  names: { dnsNames?: string[]; ipAddresses?: string[] },
  requireClientCertificate = false,
): Promise<number> {
  const cert = await issuer.issue(names);
  const server = new grpc.Server();
  server.addService(
    {
      echo: {
        path: PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    },
    { echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) },
  );
  const creds = grpc.ServerCredentials.createSsl(
    Buffer.from(issuer.trustBundle),
    [{ cert_chain: Buffer.from(cert.certChain.slice(0, -1).join('')), private_key: Buffer.from(cert.key) }],
    requireClientCertificate,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return port;
}

/** One unary call through a channel built with `options`; resolves with the echoed text or rejects with the gRPC error. */
function echo(port: number, options: TlsChannelCredentialsOptions): Promise<string> {
  const client = new grpc.Client(`127.0.0.1:${port}`, new TlsChannelCredentials(options));
  cleanups.push(() => client.close());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(PATH, raw, raw, Buffer.from('ping'), { deadline: Date.now() + 10_000 }, (err, value) =>
      err ? reject(err) : resolve(String(value)),
    );
  });
}

describe('TlsChannelCredentials', () => {
  it('connects to a server whose certificate is from the trust bundle and names the IP', async () => {
    const port = await echoServer(ours, { ipAddresses: ['127.0.0.1'] });
    await expect(echo(port, { trustBundle: ours.trustBundle, serverName: '127.0.0.1' })).resolves.toBe('ping');
  });

  it('refuses a server presenting a certificate from another CA, even one naming the right IP', async () => {
    const port = await echoServer(other, { ipAddresses: ['127.0.0.1'] });
    await expect(echo(port, { trustBundle: ours.trustBundle, serverName: '127.0.0.1' })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/self[- ]signed certificate|unable to (get|verify)/i),
    });
  });

  it('refuses a certificate from the trust bundle that names another IP or another DNS name', async () => {
    const wrongIp = await echoServer(ours, { ipAddresses: ['10.9.9.9'] });
    await expect(echo(wrongIp, { trustBundle: ours.trustBundle, serverName: '127.0.0.1' })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/127\.0\.0\.1/),
    });
    const named = await echoServer(ours, { dnsNames: ['cp.example'] });
    await expect(echo(named, { trustBundle: ours.trustBundle, serverName: 'cp.example' })).resolves.toBe('ping');
    await expect(echo(named, { trustBundle: ours.trustBundle, serverName: 'other.example' })).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringMatching(/other\.example/),
    });
  });

  it('presents the client certificate to a server that requires one', async () => {
    const port = await echoServer(ours, { ipAddresses: ['127.0.0.1'] }, true);
    const base = { trustBundle: ours.trustBundle, serverName: '127.0.0.1' };
    await expect(echo(port, base)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    const mine = await ours.issue({ identity: 'spiffe://cluster.local/ns/istio-system/sa/ztunnel' });
    await expect(
      echo(port, { ...base, clientCertificate: { key: mine.key, certChain: mine.certChain.slice(0, -1).join('') } }),
    ).resolves.toBe('ping');
  });

  it('rejects unusable options up front with a CaError', () => {
    const make = (o: Partial<TlsChannelCredentialsOptions>) => () =>
      new TlsChannelCredentials({ trustBundle: ours.trustBundle, serverName: '127.0.0.1', ...o });
    expect(make({ serverName: '' })).toThrow(expect.objectContaining({ code: 'ERR_CA_CONFIG_INVALID' }));
    expect(make({ serverName: '[::1]' })).toThrow(expect.objectContaining({ code: 'ERR_CA_CONFIG_INVALID' }));
    expect(make({ trustBundle: '' })).toThrow(expect.objectContaining({ code: 'ERR_CERTIFICATE_INVALID' }));
    expect(make({ clientCertificate: { key: 'not a key', certChain: 'not a chain' } })).toThrow(
      expect.objectContaining({ code: 'ERR_CERTIFICATE_INVALID' }),
    );
    expect(make({ trustBundle: 'garbage' })).toThrow(/trustBundle holds no PEM certificate/);
  });
});
