import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { HELP, parseCli } from '../src/cli-main.js';
import { tempDir, yaml } from './helpers.js';

const root = join(__dirname, '..', '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const cli = join(__dirname, '..', 'src', 'cli.ts');

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(tsx, [cli, ...args], {
    env: { ...process.env, NODE_OPTIONS: '--conditions=@ambient-ts/source', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r: Run = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  child.stdout?.on('data', (d) => {
    r.stdout += d;
  });
  child.stderr?.on('data', (d) => {
    r.stderr += d;
  });
  return r;
}

function waitFor(r: Run, pattern: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = r.stderr.match(pattern);
      if (m) {
        r.child.stderr?.off('data', check);
        resolve(m);
      }
    };
    r.child.stderr?.on('data', check);
    r.exit.then((code) => reject(new Error(`exited ${code} before ${pattern}: ${r.stderr}`)));
    check();
  });
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('ambient-control-plane CLI (real process)', () => {
  let dir: string;
  let cleanup: () => void;
  const children: ChildProcess[] = [];

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('cp-cli-'));
  });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    cleanup();
  });

  it('--help explains every option', async () => {
    const r = run(['--help']);
    expect(await r.exit).toBe(0);
    expect(r.stdout).toBe(HELP);
    for (const flag of [
      '--config-dir',
      '--state-dir',
      '--tokens',
      '--listen',
      '--monitoring-listen',
      '--trust-domain',
      '--cluster-id',
      '--domain-suffix',
      '--root-namespace',
      '--default-dataplane-mode',
      '--ztunnel-view',
      '--serving-dns',
      '--serving-ip',
      '--debounce-ms',
      '--log-level',
      'validate',
    ]) {
      expect(HELP).toContain(flag);
    }
  });

  it('runs, serves /ready, and shuts down gracefully on SIGTERM', async () => {
    mkdirSync(join(dir, 'mesh'));
    writeFileSync(
      join(dir, 'mesh', 'a.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\nspec: {nodeName: node-1}\nstatus: {podIP: 127.0.1.10}\n',
    );
    const r = run(
      ['--config-dir', join(dir, 'mesh'), '--listen', '127.0.0.1:0', '--monitoring-listen', '127.0.0.1:0'],
      {
        AMBIENT_STATE_DIR: join(dir, 'state'),
      },
    );
    children.push(r.child);
    const m = await waitFor(r, /"msg":"control plane serving".*"monitoring":"127\.0\.0\.1:(\d+)"/);
    const port = Number(m[1]);
    expect(await get(port, '/ready')).toEqual({ status: 200, body: 'ready\n' });
    const dump = JSON.parse((await get(port, '/debug/config_dump')).body);
    expect(Object.keys(dump.addresses)).toEqual(['Kubernetes//Pod/default/a']);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    expect(r.stderr).toContain('"msg":"control plane stopped"');
  });

  it('exits 2 with a clear message on bad settings', async () => {
    const r = run(['--config-dir', dir]);
    expect(await r.exit).toBe(2);
    expect(r.stderr).toBe(
      'ambient-control-plane: --state-dir is required (where the CA is kept and root-cert.pem is written), e.g. --state-dir ./state\n',
    );
    const r2 = run(['--bogus']);
    expect(await r2.exit).toBe(2);
    expect(r2.stderr).toBe('ambient-control-plane: unknown option --bogus (see --help)\n');
  });

  it('validate prints every problem and exits 1 when there are errors, starting nothing', async () => {
    writeFileSync(
      join(dir, 'a.yaml'),
      yaml(`
apiVersion: v1
kind: Service
metadata: {name: lonely, namespace: ns}
spec: {selector: {app: nobody}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Pod
metadata: {name: noip, namespace: ns}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: ns}
spec:
  rules: [{from: [{source: {ipBlocks: ["10.0.0.0/33"]}}]}]
`),
    );
    writeFileSync(join(dir, 'b.yaml'), 'key: [unclosed\n');
    const r = run(['validate', dir]);
    expect(await r.exit).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^a\.yaml:6: Pod ns\/noip: status\.podIP is missing.*\[pod-without-ip\]$/),
      expect.stringMatching(
        /^a\.yaml:10: AuthorizationPolicy ns\/bad: .*ipBlocks.*10\.0\.0\.0\/33.*\[policy-invalid\]$/,
      ),
      expect.stringMatching(/^b\.yaml:\d+: YAML syntax error: .*\[yaml-syntax\]$/),
      expect.stringMatching(
        /^a\.yaml:1: Service ns\/lonely: warning: spec\.selector .* matches no Pod or WorkloadEntry .*\[service-selects-nothing\]$/,
      ),
      '1 objects, 3 errors, 1 warnings',
    ]);
  });

  it('validate exits 0 on a clean directory', async () => {
    writeFileSync(join(dir, 'ns.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n');
    const r = run(['validate', dir]);
    expect(await r.exit).toBe(0);
    expect(r.stdout).toBe('1 objects, 0 errors, 0 warnings\n');
  });
});

describe('parseCli', () => {
  it('reads the environment, flags win', () => {
    const p = parseCli(['--config-dir', 'flag-dir', '--serving-ip', '127.0.0.1, 10.0.0.5'], {
      AMBIENT_CONFIG_DIR: 'env-dir',
      AMBIENT_STATE_DIR: 'state',
      AMBIENT_TRUST_DOMAIN: 'example.org',
      AMBIENT_ZTUNNEL_VIEW: 'all',
    });
    expect(p.options).toMatchObject({
      configDir: 'flag-dir',
      stateDir: 'state',
      trustDomain: 'example.org',
      ztunnelPolicyView: false,
      servingNames: { ipAddresses: ['127.0.0.1', '10.0.0.5'] },
    });
  });

  it.each([
    [['--config-dir', 'x', '--state-dir', 'y', '--listen', 'nope'], /--listen "nope" must be host:port/],
    [['--config-dir', 'x', '--state-dir', 'y', '--log-level', 'loud'], /--log-level "loud"/],
    [['--config-dir', 'x', '--state-dir', 'y', '--debounce-ms=-1'], /--debounce-ms "-1"/],
    [['--config-dir', 'x', '--state-dir', 'y', '--debounce-ms', 'soon'], /--debounce-ms "soon" must be a whole number/],
    [['--config-dir', 'x', '--state-dir', 'y', '--default-dataplane-mode', 'sidecar'], /must be ambient or none/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['validate'], /validate needs a directory/],
  ])('%j -> %s', (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(message);
  });
});
