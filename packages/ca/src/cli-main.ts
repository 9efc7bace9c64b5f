import { access, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { IdentityError, SpiffeId } from '@ambient-ts/identity';
import { writeFileAtomic } from './atomic-file.js';
import { CertificateAuthority } from './certificate-authority.js';
import { type CertificateInfo, issuedBy, parseCertificates } from './certificate-info.js';
import { formatDuration, parseDuration } from './duration.js';
import { CaError } from './errors.js';
import { KEY_TYPES, type KeyType } from './keys.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  now?: () => number;
}

export const USAGE = `ambient-ca — the ambient-ts certificate authority

Usage:
  ambient-ca init <dir> [--trust-domain cluster.local] [--key-type ec-p256|ec-p384|rsa-2048|rsa-4096] [--root-ttl 3650d]
      Create a self-signed CA whose state lives in <dir> (keys mode 0600). Proxies trust <dir>/root-cert.pem.
  ambient-ca issue --ca <dir> --identity spiffe://<td>/ns/<ns>/sa/<sa> [--ttl 24h] [--dns name]... [--ip addr]... [--out <dir>]
      Issue a certificate with a freshly generated ECDSA P-256 key. <dir> is a CA state directory (from init)
      or a plugged-in cacerts folder. Writes key.pem (0600), cert-chain.pem and root-cert.pem to --out (default .).
  ambient-ca inspect <pem-file>
      Show each certificate in the file (identity, validity, issuer) and whether each is signed by the next.

Options:
  -h, --help     Show this help.
`;

/** Runs the CLI with `args` (without node and script); returns the exit status. */
export async function runCli(args: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      case 'init':
        return await init(rest, io);
      case 'issue':
        return await issue(rest, io);
      case 'inspect':
        return await inspect(rest, io);
      default:
        io.err(`ambient-ca: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof CaError || err instanceof IdentityError) {
      io.err(`ambient-ca: ${err.message} [${err.code}]`);
      return 1;
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`ambient-ca ${command}: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

async function init(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'trust-domain': { type: 'string' },
      'key-type': { type: 'string' },
      'root-ttl': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(io);
  const dir = positionals[0];
  if (!dir || positionals.length > 1) return usage(io, 'init needs exactly one directory');
  const keyType = values['key-type'] as KeyType | undefined;
  if (keyType !== undefined && !KEY_TYPES.includes(keyType))
    return usage(io, `--key-type must be one of ${KEY_TYPES.join(', ')}`);
  const stateDir = resolve(dir);
  if (await exists(join(stateDir, 'ca-state.json'))) {
    io.err(`ambient-ca init: ${stateDir} already holds a CA; refusing to create another over it`);
    return 1;
  }
  const ca = await CertificateAuthority.create({
    stateDir,
    ...(values['trust-domain'] ? { trustDomain: values['trust-domain'] } : {}),
    ...(keyType ? { rootKeyType: keyType } : {}),
    ...(values['root-ttl'] ? { rootTtl: parseDuration(values['root-ttl']) } : {}),
  });
  const [root] = ca.roots();
  await ca.close();
  io.out(`created CA for trust domain ${ca.trustDomain} in ${stateDir}`);
  io.out(`  root: serial ${root?.serial}, valid until ${root?.notAfter.toISOString()}`);
  io.out(`  sha256 fingerprint: ${root?.fingerprint}`);
  io.out(`  trust bundle: ${join(stateDir, 'root-cert.pem')}`);
  return 0;
}

async function issue(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ca: { type: 'string' },
      identity: { type: 'string' },
      ttl: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(io);
  if (positionals.length) return usage(io, `unexpected argument ${JSON.stringify(positionals[0])}`);
  if (!values.ca) return usage(io, 'issue needs --ca <dir> (a CA state directory or a cacerts folder)');
  if (!values.identity && !values.dns?.length && !values.ip?.length)
    return usage(io, 'issue needs --identity (or --dns/--ip)');
  const caDir = resolve(values.ca);
  const plugged = !(await exists(join(caDir, 'ca-state.json'))) && (await exists(join(caDir, 'ca-cert.pem')));
  if (!plugged && !(await exists(join(caDir, 'ca-state.json')))) {
    io.err(
      `ambient-ca issue: ${caDir} holds neither a CA state (ca-state.json) nor a cacerts folder (ca-cert.pem): run "ambient-ca init ${values.ca}" first`,
    );
    return 1;
  }
  const identity = values.identity ? SpiffeId.parse(values.identity).toString() : undefined;
  let trustDomain: string | undefined;
  if (identity) trustDomain = SpiffeId.parse(identity).trustDomain;
  const ca = await CertificateAuthority.create({
    ...(plugged ? { cacertsDir: caDir } : { stateDir: caDir }),
    ...(trustDomain ? { trustDomain } : {}),
    autoRotate: false,
  });
  try {
    const issued = await ca.issue({
      ...(identity ? { identity } : {}),
      dnsNames: values.dns ?? [],
      ipAddresses: values.ip ?? [],
      ...(values.ttl ? { ttl: parseDuration(values.ttl) } : {}),
    });
    const out = resolve(values.out ?? '.');
    await mkdir(out, { recursive: true });
    await writeFileAtomic(join(out, 'key.pem'), issued.key, 0o600);
    await writeFileAtomic(join(out, 'cert-chain.pem'), issued.chain.join(''), 0o644);
    await writeFileAtomic(join(out, 'root-cert.pem'), issued.trustBundle, 0o644);
    io.out(`issued ${identity ?? [...(values.dns ?? []), ...(values.ip ?? [])].join(', ')}`);
    io.out(`  serial ${issued.serial}, valid ${issued.notBefore.toISOString()} to ${issued.notAfter.toISOString()}`);
    io.out(`  wrote ${join(out, 'key.pem')} (0600), ${join(out, 'cert-chain.pem')}, ${join(out, 'root-cert.pem')}`);
    return 0;
  } finally {
    await ca.close();
  }
}

async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return help(io);
  const file = positionals[0];
  if (!file || positionals.length > 1) return usage(io, 'inspect needs exactly one PEM file');
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    io.err(`ambient-ca inspect: cannot read ${file}: ${(err as Error).message}`);
    return 1;
  }
  const certs = parseCertificates(pem, file);
  const now = io.now?.() ?? Date.now();
  certs.forEach((c, i) => {
    io.out(
      `certificate ${i}${certs.length > 1 ? ` of ${certs.length}` : ''}: ${c.isCa ? 'CA' : 'leaf'}${c.selfSigned ? ', self-signed root' : ''}`,
    );
    const spiffe = c.uris.find((u) => SpiffeId.tryParse(u));
    if (spiffe) io.out(`  identity:    ${spiffe}`);
    const sans = c.x509.subjectAltName;
    if (sans) io.out(`  SANs:        ${sans}`);
    io.out(`  subject:     ${(c.x509.subject ?? '').replace(/\n/g, ', ') || '(empty)'}`);
    io.out(`  issuer:      ${c.x509.issuer.replace(/\n/g, ', ')}`);
    io.out(`  serial:      ${c.serial}`);
    io.out(`  valid:       ${c.notBefore.toISOString()} to ${c.notAfter.toISOString()} (${validity(c, now)})`);
    const key = c.publicKey;
    const details = key.asymmetricKeyDetails;
    io.out(
      `  key:         ${key.asymmetricKeyType}${details?.namedCurve ? ` ${details.namedCurve}` : ''}${details?.modulusLength ? ` ${details.modulusLength} bits` : ''}`,
    );
    io.out(`  sha256:      ${c.fingerprint}`);
    const parent = certs[i + 1];
    if (parent) io.out(`  signed by certificate ${i + 1}: ${issuedBy(c, parent) ? 'yes' : 'NO'}`);
  });
  return 0;
}

function validity(c: CertificateInfo, now: number): string {
  if (now < c.notBefore.getTime()) return `not yet valid, starts in ${formatDuration(c.notBefore.getTime() - now)}`;
  if (now >= c.notAfter.getTime()) return `EXPIRED ${formatDuration(now - c.notAfter.getTime())} ago`;
  return `expires in ${formatDuration(c.notAfter.getTime() - now)}`;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

function help(io: CliIo): number {
  io.out(USAGE);
  return 0;
}

function usage(io: CliIo, why: string): number {
  io.err(`ambient-ca: ${why}\n\n${USAGE}`);
  return 2;
}
