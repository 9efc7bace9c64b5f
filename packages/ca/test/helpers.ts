import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasOpenssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
/** `it` when openssl is installed; otherwise the test is skipped (CI installs Debian's openssl). */
export const withOpenssl = hasOpenssl ? it : it.skip;
if (!hasOpenssl) console.warn('openssl CLI not found: the tests that use it as an independent verifier are skipped');

/** Runs openssl; returns stdout+stderr and the exit status. */
export function openssl(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', input });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A temp directory removed after the current test file. */
export function tempDir(prefix = 'ca-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function write(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** openssl verify of `leafPem` against `rootsPem` (intermediates in `untrustedPem`), at `at` (seconds) if given. */
export function opensslVerify(dir: string, rootsPem: string, leafPem: string, untrustedPem?: string, at?: number) {
  const n = Math.random().toString(36).slice(2);
  const args = ['verify', '-CAfile', write(dir, `roots-${n}.pem`, rootsPem)];
  if (untrustedPem) args.push('-untrusted', write(dir, `chain-${n}.pem`, untrustedPem));
  if (at !== undefined) args.push('-attime', String(Math.floor(at)));
  args.push(write(dir, `leaf-${n}.pem`, leafPem));
  return openssl(args);
}

export const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
export const HTTPBIN = 'spiffe://cluster.local/ns/default/sa/httpbin';
export const ZTUNNEL = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
