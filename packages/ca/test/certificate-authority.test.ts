import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { identityFromCertificate } from '@ambient-ts/identity';
import {
  CaError,
  CertificateAuthority,
  createCsr,
  generateKey,
  KeySigner,
  ManualClock,
  parseCertificate,
  parseCsr,
  type Signer,
} from '../src/index.js';
import { DAY, HOUR, openssl, opensslVerify, SLEEP, tempDir, withOpenssl, write } from './helpers.js';

const dir = tempDir();
const code = (c: string) => expect.objectContaining({ code: c });

async function csrFor(uri = SLEEP, type: Parameters<typeof generateKey>[0] = 'ec-p256'): Promise<string> {
  return createCsr(await generateKey(type), uri);
}

describe('CertificateAuthority: signing', () => {
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ca = await CertificateAuthority.create();
  });
  afterAll(() => ca.close());

  withOpenssl('issues a leaf that openssl verifies, with exactly the authenticated identity as URI SAN', async () => {
    // The CSR asks for another identity: the CA must ignore CSR SANs.
    const issued = await ca.sign(await csrFor('spiffe://evil.example/ns/x/sa/y'), { identity: SLEEP });
    expect(opensslVerify(dir, issued.trustBundle, issued.certificate)).toEqual({
      status: 0,
      out: expect.stringContaining(': OK'),
    });
    const text = openssl(['x509', '-noout', '-text'], issued.certificate).out;
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep\s*\n/,
    );
    expect(text).not.toContain('evil.example');
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(identityFromCertificate(issued.certificate).toString()).toBe(SLEEP);
  });

  it('returns the chain leaf first and the trust bundle last (Istio form)', async () => {
    const issued = await ca.sign(await csrFor(), { identity: SLEEP });
    expect(issued.certChain).toEqual([issued.certificate, ca.trustBundle]);
    expect(issued.chain).toEqual([issued.certificate]);
    const leaf = new X509Certificate(issued.certificate);
    expect(leaf.checkIssued(new X509Certificate(ca.trustBundle))).toBe(true);
    expect(leaf.serialNumber.toLowerCase().replace(/^0+/, '')).toBe(issued.serial);
  });

  it('uses a 24 h lifetime by default, honours a shorter one, and refuses more than 90 days', async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const ca2 = await CertificateAuthority.create({ clock });
    const csr = await csrFor();
    const def = await ca2.sign(csr, { identity: SLEEP });
    expect(def.notAfter.getTime()).toBe(clock.now() + DAY);
    const hour = await ca2.sign(csr, { identity: SLEEP, ttl: HOUR });
    expect(hour.notAfter.getTime()).toBe(clock.now() + HOUR);
    const max = await ca2.sign(csr, { identity: SLEEP, ttl: 90 * DAY });
    expect(max.notAfter.getTime()).toBe(clock.now() + 90 * DAY);
    await expect(ca2.sign(csr, { identity: SLEEP, ttl: 90 * DAY + 1000 })).rejects.toThrow(code('ERR_TTL_INVALID'));
    await expect(ca2.sign(csr, { identity: SLEEP, ttl: 0 })).rejects.toThrow(code('ERR_TTL_INVALID'));
    await expect(ca2.sign(csr, { identity: SLEEP, ttl: -5 })).rejects.toThrow(code('ERR_TTL_INVALID'));
    await expect(ca2.sign(csr, { identity: SLEEP, ttl: Number.NaN })).rejects.toThrow(code('ERR_TTL_INVALID'));
    await ca2.close();
  });

  it('refuses malformed CSRs, forged signatures and unsuitable keys', async () => {
    await expect(ca.sign('not a csr', { identity: SLEEP })).rejects.toThrow(code('ERR_CSR_INVALID'));
    await expect(
      ca.sign('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', { identity: SLEEP }),
    ).rejects.toThrow(code('ERR_CSR_INVALID'));
    await expect(ca.sign('x'.repeat(20_000), { identity: SLEEP })).rejects.toThrow(code('ERR_CSR_INVALID'));
    // Flip one bit of the signature: the CSR no longer proves possession of its key.
    const der = Buffer.from((await csrFor()).replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 3] = (der[der.length - 3] as number) ^ 0x01;
    await expect(ca.sign(der, { identity: SLEEP })).rejects.toThrow(/signature does not verify/);
  });

  withOpenssl('refuses a CSR whose key is not an accepted workload key (P-521)', async () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
    const keyFile = write(dir, 'p521.key', p521.export({ type: 'pkcs8', format: 'pem' }) as string);
    const pem = openssl(['req', '-new', '-key', keyFile, '-subj', '/O=x']);
    expect(pem.status).toBe(0);
    await expect(ca.sign(pem.out, { identity: SLEEP })).rejects.toThrow(/curve secp521r1 is not accepted/);
  });

  it('refuses an identity outside its trust domain or not a SPIFFE ID', async () => {
    const csr = await csrFor();
    await expect(ca.sign(csr, { identity: 'spiffe://other.td/ns/a/sa/b' })).rejects.toThrow(
      code('ERR_IDENTITY_INVALID'),
    );
    await expect(ca.sign(csr, { identity: 'https://x/y' })).rejects.toThrow(code('ERR_IDENTITY_INVALID'));
  });

  withOpenssl('signs a CSR made by openssl (SANs and subject ignored) and an RSA CSR', async () => {
    const out = openssl([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'o.key'),
      '-subj',
      '/O=ignored',
      '-addext',
      'subjectAltName=URI:spiffe://ignored/ns/a/sa/b',
    ]);
    expect(out.status).toBe(0);
    const csr = out.out.slice(out.out.indexOf('-----BEGIN CERTIFICATE REQUEST-----'));
    expect(parseCsr(csr).publicKey.asymmetricKeyType).toBe('ec');
    const issued = await ca.sign(csr, { identity: SLEEP });
    expect(opensslVerify(dir, issued.trustBundle, issued.certificate).status).toBe(0);
    const rsa = await ca.sign(await csrFor(SLEEP, 'rsa-2048'), { identity: SLEEP });
    expect(new X509Certificate(rsa.certificate).publicKey.asymmetricKeyType).toBe('rsa');
  });

  it('issues certificates with DNS and IP names (serving certificates)', async () => {
    const issued = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    const x = new X509Certificate(issued.certificate);
    expect(x.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(createPrivateKey(issued.key).asymmetricKeyType).toBe('ec');
    expect(x.checkPrivateKey(createPrivateKey(issued.key))).toBe(true);
    await expect(ca.issue({})).rejects.toThrow(code('ERR_IDENTITY_INVALID'));
  });

  withOpenssl('creates RSA roots on request', async () => {
    const rsa = await CertificateAuthority.create({ rootKeyType: 'rsa-2048' });
    const issued = await rsa.sign(await csrFor(), { identity: SLEEP });
    expect(opensslVerify(dir, rsa.trustBundle, issued.certificate).status).toBe(0);
    expect(openssl(['x509', '-noout', '-text'], issued.certificate).out).toContain('sha256WithRSAEncryption');
    const root = parseCertificate(new X509Certificate(rsa.trustBundle).raw);
    expect(root.isCa).toBe(true);
    expect(root.notAfter.getTime() - root.notBefore.getTime()).toBeGreaterThanOrEqual(3650 * DAY);
    await rsa.close();
  });

  it('verifies client certificates: its own and valid only (used to authenticate renewals)', async () => {
    const clock = new ManualClock(Date.now());
    const own = await CertificateAuthority.create({ clock });
    const other = await CertificateAuthority.create();
    const mine = await own.issue({ identity: SLEEP, ttl: HOUR });
    expect(own.verifyCertificate(mine.certificate).toString()).toBe(SLEEP);
    expect(own.verifyCertificate(new X509Certificate(mine.certificate)).toString()).toBe(SLEEP);
    const foreign = await other.issue({ identity: SLEEP });
    expect(() => own.verifyCertificate(foreign.certificate)).toThrow(/not issued by this CA/);
    const serving = await own.issue({ dnsNames: ['localhost'] });
    expect(() => own.verifyCertificate(serving.certificate)).toThrow(/no SPIFFE identity/);
    expect(() => own.verifyCertificate('junk')).toThrow(code('ERR_UNAUTHENTICATED'));
    clock.advance(HOUR + 1000);
    expect(() => own.verifyCertificate(mine.certificate)).toThrow(/not valid now/);
    await own.close();
    await other.close();
  });

  it('refuses to sign after close', async () => {
    const c = await CertificateAuthority.create();
    await c.close();
    await c.close();
    await expect(c.sign(await csrFor(), { identity: SLEEP })).rejects.toThrow(code('ERR_CLOSED'));
  });
});

describe('CertificateAuthority: persisted state', () => {
  it('writes keys 0600 and reloads the same CA after a restart', async () => {
    const state = join(dir, 'state-reload');
    const first = await CertificateAuthority.create({ stateDir: state });
    const issued = await first.sign(await csrFor(), { identity: SLEEP });
    await first.close();
    const keys = join(state, 'keys');
    const keyFiles = require('node:fs').readdirSync(keys) as string[];
    expect(keyFiles).toHaveLength(1);
    expect(statSync(join(keys, keyFiles[0] as string)).mode & 0o777).toBe(0o600);
    expect(statSync(keys).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(state, 'root-cert.pem'), 'utf8')).toBe(first.trustBundle);
    const second = await CertificateAuthority.create({ stateDir: state });
    expect(second.trustBundle).toBe(first.trustBundle);
    const again = await second.sign(await csrFor(), { identity: SLEEP });
    expect(new X509Certificate(again.certificate).checkIssued(new X509Certificate(issued.trustBundle))).toBe(true);
    // No key material in the manifest.
    expect(readFileSync(join(state, 'ca-state.json'), 'utf8')).not.toContain('PRIVATE KEY');
    await second.close();
  });

  it('reports corrupt or half-written state and never replaces it with a new root', async () => {
    const make = async (name: string) => {
      const state = join(dir, name);
      await (await CertificateAuthority.create({ stateDir: state })).close();
      return state;
    };
    const cases: [string, (state: string) => void, RegExp][] = [
      [
        'truncated',
        (s) => writeFileSync(join(s, 'ca-state.json'), readFileSync(join(s, 'ca-state.json'), 'utf8').slice(0, 100)),
        /not valid JSON/,
      ],
      [
        'wrong-format',
        (s) => writeFileSync(join(s, 'ca-state.json'), '{"format":"x"}'),
        /not an ambient-ts-ca-state v1/,
      ],
      [
        'missing-key',
        (s) => {
          const f = require('node:fs');
          for (const k of f.readdirSync(join(s, 'keys'))) f.unlinkSync(join(s, 'keys', k));
        },
        /key file keys\/[0-9a-f]+\.pem is missing or unreadable/,
      ],
      [
        'foreign-key',
        (s) => {
          const f = require('node:fs');
          const k = f.readdirSync(join(s, 'keys'))[0];
          const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
            type: 'pkcs8',
            format: 'pem',
          });
          writeFileSync(join(s, 'keys', k), other);
        },
        /does not belong to the root certificate/,
      ],
      ['no-manifest', (s) => require('node:fs').unlinkSync(join(s, 'ca-state.json')), /no ca-state\.json/],
    ];
    for (const [name, damage, message] of cases) {
      const state = await make(name);
      damage(state);
      const before = existsSync(join(state, 'root-cert.pem')) ? readFileSync(join(state, 'root-cert.pem'), 'utf8') : '';
      const err = await CertificateAuthority.create({ stateDir: state }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CaError);
      expect(err).toMatchObject({ code: 'ERR_CA_STATE_CORRUPT', message: expect.stringMatching(message) });
      // Nothing was replaced.
      if (before) expect(readFileSync(join(state, 'root-cert.pem'), 'utf8')).toBe(before);
    }
  });

  it('ignores leftover temporary files from an interrupted write', async () => {
    const state = join(dir, 'state-tmp');
    const first = await CertificateAuthority.create({ stateDir: state });
    await first.close();
    writeFileSync(join(state, '.ca-state.json.abcdef.tmp'), '{"half');
    const second = await CertificateAuthority.create({ stateDir: state });
    expect(second.trustBundle).toBe(first.trustBundle);
    await second.close();
  });

  it('refuses a state directory of another trust domain', async () => {
    const state = join(dir, 'state-td');
    await (await CertificateAuthority.create({ stateDir: state })).close();
    await expect(CertificateAuthority.create({ stateDir: state, trustDomain: 'example.org' })).rejects.toThrow(
      code('ERR_CA_CONFIG_INVALID'),
    );
  });
});

describe('CertificateAuthority: plugged-in CA (cacerts layout)', () => {
  /** Root and intermediate made by the openssl CLI: an independent issuer. */
  function makeCacerts(name: string): string {
    const d = join(dir, name);
    mkdirSync(d);
    const ext = write(
      d,
      'ext.cnf',
      '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n',
    );
    const run = (args: string[]) => expect(openssl(args).status).toBe(0);
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(d, 'root-key.pem'),
      '-out',
      join(d, 'root-cert.pem'),
      '-days',
      '3650',
      '-subj',
      '/O=Plugged/CN=Plugged Root',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    run([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(d, 'ca-key.pem'),
      '-out',
      join(d, 'ca.csr'),
      '-subj',
      '/O=Plugged/CN=Intermediate',
    ]);
    run([
      'x509',
      '-req',
      '-in',
      join(d, 'ca.csr'),
      '-CA',
      join(d, 'root-cert.pem'),
      '-CAkey',
      join(d, 'root-key.pem'),
      '-CAcreateserial',
      '-out',
      join(d, 'ca-cert.pem'),
      '-days',
      '1000',
      '-extfile',
      ext,
      '-extensions',
      'ca',
    ]);
    writeFileSync(
      join(d, 'cert-chain.pem'),
      readFileSync(join(d, 'ca-cert.pem'), 'utf8') + readFileSync(join(d, 'root-cert.pem'), 'utf8'),
    );
    return d;
  }

  withOpenssl('signs under the plugged-in intermediate; chain is leaf, intermediate, root', async () => {
    const d = makeCacerts('cacerts-ok');
    const ca = await CertificateAuthority.create({ cacertsDir: d });
    expect(ca.mode).toBe('plugged-in');
    const issued = await ca.sign(await csrFor(), { identity: SLEEP });
    const inter = readFileSync(join(d, 'ca-cert.pem'), 'utf8');
    expect(issued.certChain).toHaveLength(3);
    expect(new X509Certificate(issued.certChain[1] as string).raw.equals(new X509Certificate(inter).raw)).toBe(true);
    expect(issued.trustBundle).toBe(new X509Certificate(readFileSync(join(d, 'root-cert.pem'))).toString());
    expect(opensslVerify(dir, issued.trustBundle, issued.certificate, inter)).toMatchObject({ status: 0 });
    // Leaves may not outlive the intermediate.
    expect(issued.notAfter.getTime()).toBeLessThanOrEqual(
      parseCertificate(new X509Certificate(inter).raw).notAfter.getTime(),
    );
    await expect(ca.rotateRoot()).rejects.toThrow(code('ERR_CA_CONFIG_INVALID'));
    await ca.close();
  });

  withOpenssl('signs through a pluggable Signer so the key need not be in the CA', async () => {
    const d = makeCacerts('cacerts-signer');
    const inner = KeySigner.fromPem(readFileSync(join(d, 'ca-key.pem')));
    require('node:fs').unlinkSync(join(d, 'ca-key.pem'));
    let calls = 0;
    const remote: Signer = {
      publicKey: inner.publicKey,
      algorithm: inner.algorithm,
      async sign(data) {
        calls++;
        return inner.sign(data);
      },
    };
    const ca = await CertificateAuthority.create({ cacertsDir: d, signer: remote });
    const issued = await ca.sign(await csrFor(), { identity: SLEEP });
    expect(calls).toBe(1);
    expect(opensslVerify(dir, issued.trustBundle, issued.certificate, issued.certChain[1]).status).toBe(0);
    const failing: Signer = { ...remote, sign: () => Promise.reject(new Error('HSM offline')) };
    const broken = await CertificateAuthority.create({ cacertsDir: d, signer: failing });
    await expect(broken.sign(await csrFor(), { identity: SLEEP })).rejects.toThrow(code('ERR_SIGNER_FAILED'));
  });

  withOpenssl('refuses inconsistent cacerts folders, naming the file', async () => {
    const d = makeCacerts('cacerts-bad');
    writeFileSync(
      join(d, 'ca-key.pem'),
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    await expect(CertificateAuthority.create({ cacertsDir: d })).rejects.toThrow(
      /ca-key\.pem does not hold the key of ca-cert\.pem/,
    );
    const e = makeCacerts('cacerts-nochain');
    writeFileSync(join(e, 'root-cert.pem'), readFileSync(join(d, 'root-cert.pem')));
    await expect(CertificateAuthority.create({ cacertsDir: e })).rejects.toThrow(/cannot build a chain/);
    const f = makeCacerts('cacerts-missing');
    require('node:fs').unlinkSync(join(f, 'root-cert.pem'));
    await expect(CertificateAuthority.create({ cacertsDir: f })).rejects.toThrow(code('ERR_CA_CONFIG_INVALID'));
  });
});
