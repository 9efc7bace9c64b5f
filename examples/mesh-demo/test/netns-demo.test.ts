/**
 * `pnpm demo --netns`: the preflight (what is missing, said exactly), the demo refusing to start without root
 * or tools, and — as root with the tools — the whole walk-through as a real process, which must exit 0 and leave
 * no namespace behind, also when interrupted halfway.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { netnsPreflight, type PreflightProbe, preflightReport } from '../src/netns-preflight.js';

const ROOT = resolve(__dirname, '../../..');
const DEMO = resolve(ROOT, 'scripts/demo.mjs');

jest.setTimeout(120_000);

const probe = (over: Partial<PreflightProbe> = {}): PreflightProbe => ({
  platform: 'linux',
  uid: 0,
  hasCommand: () => true,
  originalDst: () => ({ available: true }),
  ...over,
});

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function runDemo(args: string[], options: { env?: NodeJS.ProcessEnv; argv0?: string[]; detached?: boolean } = {}): Run {
  const [cmd, ...pre] = [...(options.argv0 ?? []), process.execPath];
  const child = spawn(cmd as string, [...pre, DEMO, ...args], {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

function namespacesWith(prefix: string): string[] {
  if (!hasCommand('ip')) return [];
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${prefix}-`));
}

function leftovers(prefix: string): string[] {
  const etc = existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((n) => n.startsWith(`${prefix}-`)) : [];
  return [...namespacesWith(prefix), ...etc.map((n) => `/etc/netns/${n}`)];
}

describe('netns preflight', () => {
  it('finds nothing missing when root, the commands and the addon are there', () => {
    expect(netnsPreflight(probe())).toEqual([]);
  });

  it('names root, each missing command with its Debian package, and why the addon is unavailable', () => {
    const missing = netnsPreflight(
      probe({
        uid: 1000,
        hasCommand: (c) => c !== 'iptables-restore' && c !== 'tcpdump',
        originalDst: () => ({ available: false, reason: 'native addon did not load' }),
      }),
    );
    expect(missing).toEqual([
      'root: creating network namespaces and iptables rules needs root (this is uid 1000); run it with sudo, keeping your PATH (sudo may reset it and lose node and npx): sudo env "PATH=$PATH" npx -y pnpm@10.34.8 demo --netns',
      'iptables-restore: not found on PATH (Debian package iptables)',
      'tcpdump: not found on PATH (Debian package tcpdump)',
      'the @ambient-ts/original-dst native addon (SO_ORIGINAL_DST): native addon did not load',
    ]);
    expect(preflightReport(missing)).toMatch(
      /^mesh-demo --netns cannot run here; missing:\n {2}- root: .*\n(.*\n){3}The default demo \(`pnpm demo`, without --netns\) needs none of these\.$/,
    );
  });

  it('says at once that network namespaces need Linux', () => {
    expect(netnsPreflight(probe({ platform: 'darwin', uid: 501 }))).toEqual([
      'Linux: network namespaces and iptables exist only on Linux (this is darwin)',
    ]);
  });
});

const isLinux = process.platform === 'linux';
const isRoot = process.getuid?.() === 0;

describe('pnpm demo --netns where it cannot run', () => {
  (isLinux ? it : it.skip)('without the tools on PATH: lists each one, exits 2 and creates nothing', async () => {
    const prefix = `ambp${process.pid % 100000}`;
    const run = runDemo(['--', '--netns'], {
      env: { ...process.env, PATH: '/nonexistent', MESH_DEMO_NETNS_PREFIX: prefix },
    });
    expect(await run.exited).toBe(2);
    const out = run.output();
    expect(out).toContain('mesh-demo --netns cannot run here; missing:');
    for (const [cmd, pkg] of [
      ['ip', 'iproute2'],
      ['iptables', 'iptables'],
      ['iptables-restore', 'iptables'],
      ['curl', 'curl'],
      ['tcpdump', 'tcpdump'],
    ])
      expect(out).toContain(`  - ${cmd}: not found on PATH (Debian package ${pkg})`);
    expect(out).toContain('The default demo (`pnpm demo`, without --netns) needs none of these.');
    expect(leftovers(prefix)).toEqual([]);
  });

  // As root, the demo is run as user 65534 (nobody) through setpriv, so the non-root path is tested for real.
  const asUser = isRoot
    ? hasCommand('setpriv')
      ? ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups']
      : undefined
    : [];
  (isLinux && asUser ? it : it.skip)('without root: says root is needed and exits 2', async () => {
    const run = runDemo(['--netns'], { argv0: asUser ?? [] });
    expect(await run.exited).toBe(2);
    expect(run.output()).toMatch(
      /- root: creating network namespaces and iptables rules needs root \(this is uid \d+\); run it with sudo, keeping your PATH \(sudo may reset it and lose node and npx\): sudo env "PATH=\$PATH" npx -y pnpm@10\.34\.8 demo --netns\n/,
    );
  });
});

const rootReason = netnsPreflight();
if (rootReason.length > 0) console.warn(`netns demo runs skipped: ${rootReason.join('; ')}`);
const r = rootReason.length > 0 ? describe.skip : describe;

r('pnpm demo --netns as root', () => {
  const running: Run[] = [];
  afterAll(async () => {
    for (const run of running) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGTERM');
        await run.exited;
      }
    }
  });

  it('walks through capture, DNS, HBONE on the wire, DENY and allow again; exits 0 and leaves nothing', async () => {
    const prefix = `ambt${process.pid % 100000}`;
    const run = runDemo(['--netns'], { env: { ...process.env, MESH_DEMO_NETNS_PREFIX: prefix } });
    running.push(run);
    const code = await run.exited;
    const out = run.output();
    if (code !== 0) throw new Error(`demo --netns exited ${code}:\n${out}`);
    expect(out).toContain('ztunnel iptables install --pod-interfaces p+ --pod-cidr 10.248.1.0/24 → done');
    const replies = out.match(/ {2}curl {9}\{"service":"echo","pod":"h2-p1","host":"echo\.demo:8080"/g) ?? [];
    expect(replies).toHaveLength(2);
    expect(out).toContain("curl connected to 10.96.8.1:8080: h1's ztunnel DNS proxy answered echo.demo");
    expect(out).toMatch(
      /captured 10\.248\.1\.11:\d+ → 10\.248\.2\.11:8080 \(echo\.demo\.svc\.cluster\.local\), sent as spiffe:\/\/cluster\.local\/ns\/demo\/sa\/client over HBONE/,
    );
    expect(out).toContain('peer identity spiffe://cluster.local/ns/demo/sa/client (verified mTLS client certificate)');
    expect(out).toMatch(/\d+ packets, every one TCP to or from port 15008 \(HBONE\)/);
    expect(out).toContain('no HTTP, Host header or response body in clear');
    expect(out).toMatch(/failed as expected \(exit \d+\)/);
    expect(out).toContain('denied by policy: DENY policy demo/deny-client');
    expect(out).toContain('iptables -t nat -S shows no AMBIENT chain');
    expect(out).toContain(`no namespace named ${prefix}-* is left`);
    expect(out).not.toMatch(/PRIVATE KEY/);
    expect(leftovers(prefix)).toEqual([]);
  });

  it('Ctrl-C halfway (SIGINT to the process group) tears everything down and exits 130', async () => {
    const prefix = `ambi${process.pid % 100000}`;
    const run = runDemo(['--netns'], { env: { ...process.env, MESH_DEMO_NETNS_PREFIX: prefix }, detached: true });
    running.push(run);
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (run.output().includes('One ztunnel per host')) {
          run.child.stdout?.off('data', check);
          resolve();
        }
      };
      run.child.stdout?.on('data', check);
      run.exited.then((code) => reject(new Error(`demo exited (${code}) before its ztunnels:\n${run.output()}`)));
    });
    process.kill(-(run.child.pid as number), 'SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.output()).toContain('SIGINT: stopping; tearing everything down');
    expect(run.output()).toContain(`no namespace named ${prefix}-* is left`);
    expect(leftovers(prefix)).toEqual([]);
  });
});
