/**
 * Root-only: install is one iptables-restore transaction per family, on the real kernel in a network namespace
 * of its own (deleted afterwards, whatever a test left in it). A rule that fails leaves the rules installed
 * before untouched, for the library, the `ztunnel iptables` sub-command and scripts/ztunnel-iptables.sh; a
 * dual-stack install whose IPv6 transaction fails puts IPv4 back exactly as it was; a re-install gives the same
 * rules with one hook per chain.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureRules, installCaptureRules, type Runner, removeCaptureRules } from '../src/iptables-rules.js';
import { REPO_ROOT, rootTestUnavailable, ZTUNNEL_CLI } from './helpers/root-tools.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'ztunnel-iptables.sh');
const NETNS = `ambatom${process.pid % 100000}`;

const reason = rootTestUnavailable(
  ['ip', 'iptables', 'iptables-restore', 'ip6tables', 'ip6tables-restore'],
  'iproute2 / iptables',
);
if (reason) console.warn(`iptables transaction tests skipped: ${reason}`);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** A command in the namespace, with `input` on its stdin. */
function inNs(argv: string[], input = ''): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile('ip', ['netns', 'exec', NETNS, ...argv], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
    // A command that exits without reading its input (iptables -C) fails or succeeds on its own.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}

const run: Runner = async (cmd, args, input) => {
  const r = await inNs([cmd, ...args], input);
  return { ok: r.code === 0, stdout: r.stdout, stderr: r.stderr };
};

async function tables(): Promise<{ v4: string; v6: string }> {
  const v4 = await inNs(['iptables', '-t', 'nat', '-S']);
  const v6 = await inNs(['ip6tables', '-t', 'nat', '-S']);
  if (v4.code !== 0 || v6.code !== 0) throw new Error(`iptables -S failed: ${v4.stderr} ${v6.stderr}`);
  return { v4: v4.stdout, v6: v6.stdout };
}

/** `iptables-save -t nat` and `ip6tables-save -t nat`, without their comments (which carry the time). */
async function saved(): Promise<{ v4: string; v6: string }> {
  const save = async (cmd: string) => {
    const r = await inNs([cmd, '-t', 'nat']);
    if (r.code !== 0) throw new Error(`${cmd} -t nat failed: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
  };
  return { v4: await save('iptables-save'), v6: await save('ip6tables-save') };
}

const count = (text: string, line: string) => text.split('\n').filter((l) => l === line).length;

(reason ? describe.skip : describe)('install is one iptables-restore transaction per family (real kernel)', () => {
  const args = [
    '--pod-interfaces',
    'p+',
    '--pod-cidr',
    '10.248.1.0/24',
    '--pod-cidr',
    'fd00:248:1::/64',
    '--ztunnel-uid',
    '1337',
  ];
  let dir = '';

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NETNS]);
    // Stand-ins that run the real iptables, except that their restore slips a rule the kernel refuses (a jump
    // to a chain that does not exist) in before COMMIT: a failure in the middle of a real transaction.
    dir = mkdtempSync(join(tmpdir(), 'ztunnel-ipt-'));
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      chmodSync(join(dir, name), 0o755);
    };
    for (const ipt of ['iptables', 'ip6tables']) {
      write(ipt, `#!/bin/sh\nexec ${ipt} "$@"\n`);
      write(`${ipt}-save`, `#!/bin/sh\nexec ${ipt}-save "$@"\n`);
      write(
        `${ipt}-restore`,
        `#!/bin/sh\nawk '$0 == "COMMIT" { print "-A AMBIENT_OUTPUT -j AMBIENT_NO_SUCH_CHAIN" } { print }' | exec ${ipt}-restore "$@"\n`,
      );
    }
  });
  afterEach(async () => {
    for (const prefix of ['AMBIENT', 'ZTBAD']) {
      await inNs([SCRIPT, 'remove', '--pod-interfaces', 'p+', '--pod-cidr', '10.0.0.0/8', '--chain-prefix', prefix]);
    }
  });
  afterAll(() => {
    // Deleting the namespace takes its tables with it.
    execFileSync('ip', ['netns', 'delete', NETNS], { stdio: 'ignore' });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('library: a rule iptables rejects leaves the installed rules untouched, and creates no chain', async () => {
    const before = await tables();
    const options = { podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24', 'fd00:248:1::/64'], ztunnelUid: 1337 };
    for (const family of [4, 6] as const) await installCaptureRules(captureRules(options, family), undefined, run);
    const installed = await tables();
    expect(installed.v4).toContain('-A AMBIENT_PREROUTING -d 10.248.1.0/24 -p tcp -j REDIRECT --to-ports 15006');
    expect(installed.v6).toContain('-A AMBIENT_PREROUTING -d fd00:248:1::/64 -p tcp -j REDIRECT --to-ports 15006');

    // No DNS rules and a plaintext port iptables refuses (the library does not check ports): the rules before
    // it (mark, HBONE, outbound) would have landed, and the DNS rules been flushed, rule by rule.
    const bad = { ...options, captureDns: false, ports: { plaintext: 70000 } };
    for (const family of [4, 6] as const) {
      const binary = family === 4 ? 'iptables' : 'ip6tables';
      await expect(installCaptureRules(captureRules(bad, family), undefined, run)).rejects.toMatchObject({
        code: 'ERR_ZTUNNEL_CONFIG',
        message: expect.stringMatching(
          new RegExp(`^${binary}-restore --noflush failed: .*70000.*; ${binary}'s rules were left as they were`),
        ),
      });
    }
    expect(await tables()).toEqual(installed);

    // New chains declared in a failed transaction are not created either.
    const fresh = { ...bad, chainPrefix: 'ZTBAD' };
    await expect(installCaptureRules(captureRules(fresh, 4), undefined, run)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
    });
    expect(await tables()).toEqual(installed);

    for (const family of [4, 6] as const) await removeCaptureRules(captureRules(options, family), undefined, run);
    expect(await tables()).toEqual(before);
  }, 60_000);

  // Both exit 1 when iptables fails (2 is for bad arguments).
  it.each([
    ['the sub-command', ZTUNNEL_CLI, 'ztunnel iptables'],
    ['scripts/ztunnel-iptables.sh', [SCRIPT], 'ztunnel-iptables.sh'],
  ])(
    '%s: a failing restore changes nothing and says so',
    async (_name, command, label) => {
      const cli = command[0] === SCRIPT ? [] : ['iptables'];
      const install = await inNs([...command, ...cli, 'install', ...args]);
      expect(install).toMatchObject({ code: 0, stdout: `${label} install: done\n` });
      const installed = await tables();

      const failing = await inNs([
        ...command,
        ...cli,
        'install',
        ...args,
        '--no-dns',
        '--iptables',
        join(dir, 'iptables'),
        '--ip6tables',
        join(dir, 'ip6tables'),
      ]);
      expect(failing.code).toBe(1);
      expect(failing.stderr).toContain(`${join(dir, 'iptables-restore')} --noflush failed: `);
      expect(failing.stderr).toContain('AMBIENT_NO_SUCH_CHAIN');
      expect(failing.stderr).toContain("iptables's rules were left as they were");
      expect(await tables()).toEqual(installed);
    },
    60_000,
  );

  it.each([
    ['the sub-command', [...ZTUNNEL_CLI, 'iptables']],
    ['scripts/ztunnel-iptables.sh', [SCRIPT]],
  ])(
    '%s: a dual-stack install whose IPv6 transaction fails leaves IPv4 exactly as it was',
    async (_name, command) => {
      // ip6tables whose restore slips in a rule the kernel refuses; IPv4 is the real iptables.
      const brokenV6 = ['--ip6tables', join(dir, 'ip6tables')];
      const failed = `IPv6 (${join(dir, 'ip6tables')}) install failed: ${join(dir, 'ip6tables-restore')} --noflush failed: `;
      const rolledBack = 'IPv4 (iptables) was rolled back: its rules are as they were before this install.\n';
      // Another program's chain, hooked before ztunnel's install, must stay as it is.
      await inNs(['iptables', '-w', '-t', 'nat', '-N', 'KUBE-TEST']);
      await inNs(['iptables', '-w', '-t', 'nat', '-A', 'PREROUTING', '-j', 'KUBE-TEST']);
      try {
        // First install: IPv4's chains and hooks are taken away again.
        const before = await saved();
        const first = await inNs([...command, 'install', ...args, ...brokenV6]);
        expect(first.code).toBe(1);
        expect(first.stdout).toBe('');
        expect(first.stderr).toContain(failed);
        expect(first.stderr).toContain('AMBIENT_NO_SUCH_CHAIN');
        expect(first.stderr.endsWith(rolledBack)).toBe(true);
        expect(await saved()).toEqual(before);

        // Re-install with another port: the rules installed before stay, byte for byte.
        expect((await inNs([...command, 'install', ...args])).code).toBe(0);
        const installed = await saved();
        expect(installed.v4).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001');
        const again = await inNs([...command, 'install', ...args, '--outbound-port', '16001', ...brokenV6]);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain(failed);
        expect(again.stderr.endsWith(rolledBack)).toBe(true);
        expect(await saved()).toEqual(installed);
      } finally {
        await inNs([SCRIPT, 'remove', ...args]);
        await inNs(['iptables', '-w', '-t', 'nat', '-D', 'PREROUTING', '-j', 'KUBE-TEST']);
        await inNs(['iptables', '-w', '-t', 'nat', '-X', 'KUBE-TEST']);
      }
    },
    60_000,
  );

  it('a re-install (library, sub-command, script in turn) keeps one hook per chain and the same rules', async () => {
    const before = await tables();
    const hooks = ['-A PREROUTING -j AMBIENT_PREROUTING', '-A OUTPUT -j AMBIENT_OUTPUT'];
    const single = (t: { v4: string; v6: string }) => {
      for (const hook of hooks) expect([count(t.v4, hook), count(t.v6, hook)]).toEqual([1, 1]);
    };
    expect((await inNs([...ZTUNNEL_CLI, 'iptables', 'install', ...args])).code).toBe(0);
    const first = await tables();
    single(first);
    const options = { podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24', 'fd00:248:1::/64'], ztunnelUid: 1337 };
    for (const family of [4, 6] as const) await installCaptureRules(captureRules(options, family), undefined, run);
    expect(await tables()).toEqual(first);
    expect((await inNs([SCRIPT, 'install', ...args])).code).toBe(0);
    expect(await tables()).toEqual(first);
    expect((await inNs([...ZTUNNEL_CLI, 'iptables', 'install', ...args])).code).toBe(0);
    expect(await tables()).toEqual(first);

    // A re-install with other options replaces the rules in place: the old ones go, the hooks stay single.
    expect((await inNs([SCRIPT, 'install', ...args, '--outbound-port', '16001'])).code).toBe(0);
    const changed = await tables();
    single(changed);
    expect(changed.v4).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 16001');
    expect(changed.v4).not.toContain('--to-ports 15001');
    expect(changed.v4.replace('--to-ports 16001', '--to-ports 15001')).toBe(first.v4);
    expect(changed.v6.replace('--to-ports 16001', '--to-ports 15001')).toBe(first.v6);

    // remove takes exactly that away.
    expect((await inNs([...ZTUNNEL_CLI, 'iptables', 'remove', ...args])).code).toBe(0);
    expect(await tables()).toEqual(before);
  }, 90_000);
});
