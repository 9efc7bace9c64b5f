import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempFile, writeFileAtomic } from './atomic-file.js';
import { type CertificateInfo, parseCertificate } from './certificate-info.js';
import { CaError } from './errors.js';
import { certificateDers } from './pem.js';
import { KeySigner } from './signer.js';

/**
 * The persisted state of a self-signed CA. `ca-state.json` is the single source of truth and the commit
 * point: key files are written first (under new names), then the manifest is renamed into place, then the
 * derived `root-cert.pem` (the trust bundle proxies read) is regenerated. A crash at any step leaves either
 * the old or the new state, and the derived file is rewritten on the next load.
 */
export const STATE_FILE = 'ca-state.json';
export const BUNDLE_FILE = 'root-cert.pem';
export const KEY_DIR = 'keys';
const FORMAT = 'ambient-ts-ca-state';

export type RootStatus = 'active' | 'next' | 'retiring';

export interface RootRecord {
  cert: CertificateInfo;
  status: RootStatus;
  /** Present for active and next roots (a retiring root signs nothing, its key is deleted). */
  signer?: KeySigner;
  keyFile?: string;
  introducedAt: number;
  /** next: when it becomes the signing root. */
  activateAt?: number;
  /** retiring: when it leaves the trust bundle (every leaf it signed has expired by then). */
  retireAt?: number;
}

interface StoredRoot {
  cert: string;
  status: RootStatus;
  key?: string;
  introducedAt: string;
  activateAt?: string;
  retireAt?: string;
}

interface StoredState {
  format: typeof FORMAT;
  version: 1;
  trustDomain: string;
  roots: StoredRoot[];
}

export interface LoadedState {
  trustDomain: string;
  roots: RootRecord[];
}

/** undefined: the directory is new or empty, so a CA may be created there. */
export async function loadState(dir: string): Promise<LoadedState | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw corrupt(dir, `cannot read the directory: ${(err as Error).message}`, err);
  }
  const meaningful = names.filter((n) => !isTempFile(n));
  if (!meaningful.includes(STATE_FILE)) {
    if (meaningful.length === 0) return undefined;
    throw corrupt(
      dir,
      `it holds ${meaningful.join(', ')} but no ${STATE_FILE}. Refusing to create a new root over it, ` +
        'which would invalidate every certificate already issued: restore the state, or point the CA at an empty directory',
    );
  }
  const file = join(dir, STATE_FILE);
  let stored: StoredState;
  try {
    stored = JSON.parse(await readFile(file, 'utf8')) as StoredState;
  } catch (err) {
    throw corrupt(dir, `${STATE_FILE} is not valid JSON (truncated or edited by hand?): restore it from a backup`, err);
  }
  if (!stored || stored.format !== FORMAT || stored.version !== 1 || !Array.isArray(stored.roots)) {
    throw corrupt(dir, `${STATE_FILE} is not an ${FORMAT} v1 document`);
  }
  if (typeof stored.trustDomain !== 'string') throw corrupt(dir, `${STATE_FILE} has no trustDomain`);
  const roots: RootRecord[] = [];
  for (const [i, r] of stored.roots.entries()) {
    const where = `${STATE_FILE} roots[${i}]`;
    if (!r || !['active', 'next', 'retiring'].includes(r.status)) throw corrupt(dir, `${where} has no valid status`);
    const ders = certificateDers(typeof r.cert === 'string' ? r.cert : '');
    if (ders.length !== 1) throw corrupt(dir, `${where}.cert is not one PEM certificate`);
    let cert: CertificateInfo;
    try {
      cert = parseCertificate(ders[0] as Buffer);
    } catch (err) {
      throw corrupt(dir, `${where}.cert: ${(err as Error).message}`, err);
    }
    const rec: RootRecord = { cert, status: r.status, introducedAt: time(dir, where, 'introducedAt', r.introducedAt) };
    if (r.activateAt !== undefined) rec.activateAt = time(dir, where, 'activateAt', r.activateAt);
    if (r.retireAt !== undefined) rec.retireAt = time(dir, where, 'retireAt', r.retireAt);
    if (r.status !== 'retiring') {
      if (typeof r.key !== 'string' || !/^keys\/[0-9a-f]+\.pem$/.test(r.key))
        throw corrupt(dir, `${where}.key is missing`);
      let signer: KeySigner;
      try {
        signer = KeySigner.fromPem(await readFile(join(dir, r.key)), r.key);
      } catch (err) {
        throw corrupt(dir, `key file ${r.key} is missing or unreadable`, err);
      }
      if (!signer.publicKey.equals(cert.publicKey)) {
        throw corrupt(dir, `key file ${r.key} does not belong to the root certificate it is recorded with`);
      }
      rec.signer = signer;
      rec.keyFile = r.key;
    }
    if (r.status === 'next' && rec.activateAt === undefined) throw corrupt(dir, `${where} (next) has no activateAt`);
    if (r.status === 'retiring' && rec.retireAt === undefined)
      throw corrupt(dir, `${where} (retiring) has no retireAt`);
    roots.push(rec);
  }
  if (roots.filter((r) => r.status === 'active').length !== 1)
    throw corrupt(dir, `${STATE_FILE} must hold exactly one active root`);
  if (roots.filter((r) => r.status === 'next').length > 1)
    throw corrupt(dir, `${STATE_FILE} holds more than one next root`);
  return { trustDomain: stored.trustDomain, roots };
}

/** Persists `roots` (see the commit order above). Keys of roots no longer holding one are deleted afterwards. */
export async function saveState(
  dir: string,
  trustDomain: string,
  roots: RootRecord[],
  previousKeys: string[],
): Promise<void> {
  await mkdir(join(dir, KEY_DIR), { recursive: true, mode: 0o700 });
  for (const r of roots) {
    if (!r.signer) continue;
    r.keyFile ??= `${KEY_DIR}/${r.cert.fingerprint.slice(0, 32)}.pem`;
    const path = join(dir, r.keyFile);
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (!exists) await writeFileAtomic(path, r.signer.exportPem(), 0o600);
  }
  const stored: StoredState = {
    format: FORMAT,
    version: 1,
    trustDomain,
    roots: roots.map((r) => {
      const s: StoredRoot = {
        cert: r.cert.pem,
        status: r.status,
        introducedAt: new Date(r.introducedAt).toISOString(),
      };
      if (r.signer && r.keyFile) s.key = r.keyFile;
      if (r.activateAt !== undefined) s.activateAt = new Date(r.activateAt).toISOString();
      if (r.retireAt !== undefined) s.retireAt = new Date(r.retireAt).toISOString();
      return s;
    }),
  };
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(stored, null, 2)}\n`, 0o644);
  await writeBundle(dir, roots);
  const live = new Set(roots.filter((r) => r.signer).map((r) => r.keyFile));
  for (const k of previousKeys) if (!live.has(k)) await unlink(join(dir, k)).catch(() => {});
}

/** The derived trust bundle file, for proxies and for people. */
export async function writeBundle(dir: string, roots: RootRecord[]): Promise<void> {
  await writeFileAtomic(join(dir, BUNDLE_FILE), roots.map((r) => r.cert.pem).join(''), 0o644);
}

function time(dir: string, where: string, field: string, v: unknown): number {
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(t)) throw corrupt(dir, `${where}.${field} is not a timestamp`);
  return t;
}

function corrupt(dir: string, why: string, cause?: unknown): CaError {
  return new CaError('ERR_CA_STATE_CORRUPT', `CA state directory ${dir}: ${why}`, { cause });
}
