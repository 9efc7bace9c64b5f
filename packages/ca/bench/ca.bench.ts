/**
 * Certificates per second: in process (one core) and end to end over gRPC (TLS, CaServer ⇄ CaClient),
 * the time of each step, and a fleet of 1,000 proxies renewing at once. Baseline in the same run: the
 * same leaf built with @peculiar/x509 over WebCrypto (the general-purpose route this package avoids).
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import {
  authorityKeyIdentifier,
  basicConstraints,
  distinguishedName,
  extKeyUsageTls,
  keyUsage,
  randomSerial,
  signCertificate,
  subjectAltName,
} from '../src/certificate-builder.js';
import { parseCertificate } from '../src/certificate-info.js';
import { parseCsr } from '../src/csr.js';
import { CaClient, CaServer, CertificateAuthority, createCsr, KeySigner, TokenAuthenticator } from '../src/index.js';
import { toPem } from '../src/pem.js';

x509.cryptoProvider.set(webcrypto as never);

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const rows: [string, string, string, string][] = [];

/** Wall time and CPU time (user + system of this process) per operation: CPU time is what the work costs
 * on one core, and is far less disturbed than wall time when other processes share the machine. */
async function time(label: string, n: number, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < Math.min(50, n); i++) await fn(i); // warm up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / n;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / n;
  rows.push([
    label,
    `${wall.toFixed(1)} µs`,
    `${cpu.toFixed(1)} µs`,
    `${Math.round(1e6 / cpu).toLocaleString('en-US')}/s`,
  ]);
  return cpu;
}

async function main(): Promise<void> {
  const ca = await CertificateAuthority.create();
  const N = 2000;
  const keys = Array.from({ length: N }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const csrs = keys.map((k) => createCsr(k, SLEEP));

  // --- per step, in process
  await time('key generation (ECDSA P-256, generateKeyPairSync)', 1000, () =>
    generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  );
  await time('CSR build + sign (client side)', N, (i) => createCsr(keys[i] as never, SLEEP));
  const parsed = csrs.map((c) => parseCsr(c));
  await time('CSR parse + signature verify', N, (i) => parseCsr(csrs[i] as string));
  const signer = KeySigner.fromPem(
    generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
  );
  const issuerName = distinguishedName({ organization: 'cluster.local', commonName: 'bench' });
  const akid = Buffer.alloc(20, 1);
  const now = Date.now();
  const ders: Buffer[] = [];
  await time('TBS build + ECDSA sign (node:crypto)', N, async (i) => {
    ders[i] = await signCertificate(
      {
        serial: randomSerial(),
        issuer: issuerName,
        subject: distinguishedName({}),
        notBefore: new Date(now),
        notAfter: new Date(now + 86_400_000),
        spki: (parsed[i] as { spki: Buffer }).spki,
        extensions: [
          keyUsage('leaf'),
          extKeyUsageTls(),
          basicConstraints(false),
          authorityKeyIdentifier(akid),
          subjectAltName({ uris: [SLEEP] }, true),
        ],
      },
      signer,
    );
  });
  await time('PEM encode', N, (i) => toPem('CERTIFICATE', ders[i] as Buffer));
  await time('client: parse returned leaf (own DER reader + key import)', N, (i) =>
    parseCertificate(ders[i] as Buffer),
  );
  const inProcess = await time('CertificateAuthority.sign (all of the above, server side)', N, (i) =>
    ca.sign(csrs[i] as string, { identity: SLEEP }),
  );

  // --- baseline: the same leaf through @peculiar/x509 + WebCrypto
  const issuerKeys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const leafKeys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  await time('baseline: @peculiar/x509 leaf create (WebCrypto sign)', 500, () =>
    x509.X509CertificateGenerator.create({
      serialNumber: '01',
      subject: '',
      issuer: 'O=cluster.local, CN=bench',
      notBefore: new Date(now),
      notAfter: new Date(now + 86_400_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      publicKey: leafKeys.publicKey,
      signingKey: issuerKeys.privateKey,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: SLEEP }], true),
      ],
    }),
  );
  await time('baseline: @peculiar/x509 CSR parse + verify', 500, async (i) => {
    const req = new x509.Pkcs10CertificateRequest(csrs[i] as string);
    if (!(await req.verify())) throw new Error('verify failed');
  });

  // --- end to end over gRPC (TLS): the server here, the callers in a separate process (as on the network)
  const tokens = new TokenAuthenticator(
    Array.from({ length: 1000 }, (_, i) => ({ token: `t${i}`, identity: `spiffe://cluster.local/ns/fleet/sa/p${i}` })),
  );
  tokens.set({ token: 'bench', identity: SLEEP });
  const server = new CaServer({ ca, authenticators: [tokens], rateLimit: { burst: 1e9 } });
  const port = await server.listen(0, '127.0.0.1');
  const bundle = join(mkdtempSync(join(tmpdir(), 'ca-bench-')), 'root-cert.pem');
  writeFileSync(bundle, ca.trustBundle);
  const grpcRow = async (label: string, mode: string) => {
    const c0 = process.cpuUsage();
    const r = await load(mode, port, bundle);
    const c = process.cpuUsage(c0);
    const serverCpu = (c.user + c.system) / r.done;
    rows.push([
      label,
      `${Math.round(r.done / r.secs).toLocaleString('en-US')}/s wall (${r.errors} errors)`,
      `${serverCpu.toFixed(1)} µs server CPU`,
      `**${Math.round(1e6 / serverCpu).toLocaleString('en-US')}/s** per server core`,
    ]);
    return r;
  };
  await grpcRow('gRPC CreateCertificate over TLS, CSR → chain (4 channels, 32 in flight)', 'csr');
  await grpcRow('gRPC CaClient.fetchCertificate (+ client keygen, CSR, chain verify)', 'fetch');
  const fleet = await load('fleet', port, bundle);
  rows.push([
    'fleet: 1,000 proxies, own TLS connection each, all renew at once',
    `${fleet.secs.toFixed(2)} s total`,
    '',
    `${fleet.done} issued and verified, **${fleet.errors} errors**${fleet.firstError ? ` (${fleet.firstError})` : ''}`,
  ]);
  await server.close();
  await ca.close();

  console.log(
    `Node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}.`,
  );
  console.log(`In process: ${Math.round(1e6 / inProcess).toLocaleString('en-US')} certificates per CPU-second.\n`);
  console.log('| step | wall per op | CPU per op | rate on one core |');
  console.log('|---|---|---|---|');
  for (const [a, b, c, d] of rows) console.log(`| ${a} | ${b} | ${c} | ${d} |`);
}

interface LoadResult {
  done: number;
  errors: number;
  secs: number;
  firstError?: string;
}

/** Runs this file again as the load generator, so callers and CA each have a core, as across a network. */
async function load(mode: string, port: number, bundle: string): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, process.argv[1] as string, '--load', mode, String(port), bundle],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c;
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`load generator ${mode} exited with ${code}`);
  return JSON.parse(out) as LoadResult;
}

async function generateLoad(mode: string, port: number, bundle: string): Promise<LoadResult> {
  const address = `127.0.0.1:${port}`;
  const trustBundle = readFileSync(bundle, 'utf8');
  if (mode === 'fleet') {
    const fleet = Array.from(
      { length: 1000 },
      (_, i) => new CaClient({ address, serverName: 'localhost', trustBundle, token: `t${i}`, timeout: 60_000 }),
    );
    const t0 = process.hrtime.bigint();
    const results = await Promise.allSettled(
      fleet.map((c, i) => c.fetchCertificate(`spiffe://cluster.local/ns/fleet/sa/p${i}`)),
    );
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    for (const c of fleet) c.close();
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    const ok = results.filter(
      (r, i) =>
        r.status === 'fulfilled' && new X509Certificate(r.value.certChain).subjectAltName?.endsWith(`/sa/p${i}`),
    ).length;
    return { done: ok, errors: failed.length, secs, ...(failed[0] ? { firstError: String(failed[0].reason) } : {}) };
  }
  const csrs = Array.from({ length: 1000 }, () =>
    createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, SLEEP),
  );
  const clients = Array.from(
    { length: 4 },
    () => new CaClient({ address, serverName: 'localhost', trustBundle, token: 'bench' }),
  );
  await Promise.all(clients.map((c) => c.createCertificate(csrs[0] as string)));
  let done = 0;
  let errors = 0;
  const seconds = mode === 'csr' ? 8 : 6;
  const end = Date.now() + seconds * 1000;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: 32 }, async (_, w) => {
      const c = clients[w % clients.length] as CaClient;
      while (Date.now() < end) {
        try {
          if (mode === 'csr') await c.createCertificate(csrs[done % csrs.length] as string);
          else await c.fetchCertificate(SLEEP);
          done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const c of clients) c.close();
  return { done, errors, secs };
}

if (process.argv[2] === '--load') {
  generateLoad(process.argv[3] as string, Number(process.argv[4]), process.argv[5] as string).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
