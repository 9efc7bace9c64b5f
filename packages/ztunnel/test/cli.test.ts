import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CLI = resolve(__dirname, '../src/cli.ts');
const ROOT = resolve(__dirname, '../../..');

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--conditions=@ambient-ts/source', '--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    child.once('exit', (code) => done({ code, stdout, stderr }));
  });
}

jest.setTimeout(30_000);

describe('ztunnel bin', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zt-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = (bundle: string) => [
    '--control-plane',
    '127.0.0.1:1',
    '--trust-bundle',
    bundle,
    '--token-file',
    join(dir, 'token'),
    '--node',
    'n',
    '--node-ip',
    '127.0.61.1',
  ];

  it('prints help with examples and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: ztunnel [options]');
    expect(r.stdout).toContain('Examples:');
  });

  it('lists every missing setting and exits 2', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--control-plane is required');
    expect(r.stderr).toContain('--trust-bundle is required');
    expect(r.stderr).toContain('ZTUNNEL_NODE_IP');
  });

  it('ztunnel iptables exits 2 for bad arguments and 1 when an iptables command failed', async () => {
    const usage = await run(['iptables', 'install', '--pod-interfaces', 'p+']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--pod-cidr is required');
    // A binary that is not there: its -restore cannot start, so nothing on this machine is touched.
    const iptables = join(dir, 'no-iptables');
    const failed = await run([
      'iptables',
      'install',
      '--pod-interfaces',
      'p+',
      '--pod-cidr',
      '10.248.1.0/24',
      '--iptables',
      iptables,
    ]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      new RegExp(`^${iptables}-restore --noflush failed: spawn ${iptables}-restore ENOENT`),
    );
  });

  it('refuses to start without a usable trust bundle', async () => {
    writeFileSync(join(dir, 'token'), 'some-token-0123456789');
    const missing = await run(base(join(dir, 'nope.pem')));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the trust bundle .*nope\.pem/);
    writeFileSync(join(dir, 'empty.pem'), 'not a certificate\n');
    const empty = await run(base(join(dir, 'empty.pem')));
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/holds no PEM certificate: ztunnel will not start/);
  });
});
