/**
 * scripts/ztunnel-iptables.sh, the Node-free twin of `ztunnel iptables install|remove`. Argument checks run
 * anywhere; the rule tests need root, ip, iptables and ip6tables and run in a network namespace of their own,
 * comparing the script's `iptables -t nat -S` / `ip6tables -t nat -S` with the sub-command's, and what the two
 * say and leave behind when a dual-stack install cannot be rolled back.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, rootTestUnavailable, ZTUNNEL_CLI } from './helpers/root-tools.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'ztunnel-iptables.sh');
const NETNS = `ambipt${process.pid % 100000}`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    ),
  );
}

const reason = rootTestUnavailable(['ip', 'iptables', 'ip6tables', 'bash'], 'iproute2 / iptables / bash');
if (reason) console.warn(`ztunnel-iptables.sh rule tests skipped: ${reason}`);

describe('scripts/ztunnel-iptables.sh arguments', () => {
  it('--help prints the usage with every option and exits 0', async () => {
    const r = await run(SCRIPT, ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: ztunnel-iptables\.sh install\|remove \[options\]/);
    for (const option of [
      '--pod-interfaces',
      '--pod-cidr',
      '--ztunnel-uid',
      '--no-dns',
      '--outbound-port',
      '--hbone-port',
      '--plaintext-port',
      '--dns-port',
      '--mark',
      '--chain-prefix',
      '--iptables',
      '--ip6tables',
    ]) {
      expect(r.stdout).toContain(option);
    }
    // -h anywhere wins, as with the sub-command.
    expect((await run(SCRIPT, ['install', '--pod-cidr', 'nonsense', '-h'])).stdout).toBe(r.stdout);
  });

  const good = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24'];
  const cases: [string, string[], RegExp][] = [
    ['no action', [], /expected 'install' or 'remove' as the first argument, got ""/],
    ['a wrong action', ['instal', ...good], /expected 'install' or 'remove'.*got "instal"/],
    ['no --pod-interfaces', ['install', '--pod-cidr', '10.248.1.0/24'], /--pod-interfaces is required/],
    ['no --pod-cidr', ['remove', '--pod-interfaces', 'p+'], /--pod-cidr is required/],
    ['a bad interface pattern', ['install', ...good, '--pod-interfaces', 'p*'], /--pod-interfaces: "p\*" is not/],
    [
      'an interface pattern like an option',
      ['install', ...good, '--pod-interfaces=-i'],
      /--pod-interfaces: "-i" is not/,
    ],
    [
      'an interface name over 15 characters',
      ['install', ...good, '--pod-interfaces', `${'a'.repeat(16)}+`],
      /--pod-interfaces: "a{16}\+" is not/,
    ],
    ['a bad IPv4 CIDR', ['install', ...good, '--pod-cidr', '10.248.1.0/33'], /--pod-cidr: "10\.248\.1\.0\/33" is not/],
    ['a bad IPv6 CIDR', ['install', ...good, '--pod-cidr', 'fd00::1::/64'], /--pod-cidr: "fd00::1::\/64" is not/],
    ['a bad uid', ['install', ...good, '--ztunnel-uid', '-1'], /--ztunnel-uid: "-1" is not a uid/],
    ['a bad port', ['install', ...good, '--hbone-port=0'], /--hbone-port: "0" is not a port number \(1-65535\)/],
    ['a port too large', ['install', ...good, '--dns-port', '65536'], /--dns-port: "65536" is not a port/],
    ['mark 0', ['install', ...good, '--mark', '0x0'], /--mark: "0x0" is not a fwmark/],
    ['a long chain prefix', ['install', ...good, '--chain-prefix', 'A'.repeat(18)], /--chain-prefix: "A{18}" is not/],
    ['an empty --iptables', ['install', ...good, '--iptables='], /--iptables needs a command name/],
    ['an unknown option', ['install', ...good, '--pod-cidrs', 'x'], /unknown option "--pod-cidrs"/],
    ['a stray word', ['install', ...good, 'veth+'], /unknown option "veth\+"/],
    ['a missing value', ['install', ...good, '--outbound-port'], /--outbound-port needs a value/],
    [
      'a value that is an option',
      ['install', '--pod-interfaces', '--no-dns', ...good],
      /--pod-interfaces needs a value/,
    ],
  ];
  it.each(cases)('%s: exits 2 naming the argument, and says to run --help', async (_name, args, message) => {
    // Any iptables the script might run is a command that cannot exist: nothing may be touched.
    const safe = ['--iptables=/nonexistent/iptables', '--ip6tables=/nonexistent/ip6tables'];
    const r = await run(SCRIPT, args.length === 0 ? [] : [args[0] as string, ...safe, ...args.slice(1)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ztunnel-iptables\.sh: invalid arguments:\n/);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Run ztunnel-iptables\.sh --help\.\n$/);
  });

  it('reports every problem at once', async () => {
    const r = await run(SCRIPT, ['instal', '--pod-cidr', 'nonsense', '--hbone-port', '0', '--mark', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'install' or 'remove'[\s\S]*--pod-cidr: "nonsense"[\s\S]*--hbone-port[\s\S]*--mark/);
    expect(r.stderr).toContain('--pod-interfaces is required');
    // A --pod-cidr was given, only not a valid one: reported as such, not also as missing.
    expect(r.stderr).not.toContain('--pod-cidr is required');
  });

  it('a dual-stack install checks every binary first: a missing ip6tables-restore runs no iptables at all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztunnel-ipt-script-'));
    try {
      // iptables, its -restore and -save all log their calls and succeed; ip6tables has no -restore.
      for (const name of ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables']) {
        writeFileSync(join(dir, name), `#!/bin/sh\necho "$0 $*" >> "${join(dir, 'calls.log')}"\n`);
        chmodSync(join(dir, name), 0o755);
      }
      const dual = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--pod-cidr', 'fd00:248:1::/64'];
      const r = await run(SCRIPT, [
        'install',
        ...dual,
        '--iptables',
        join(dir, 'iptables'),
        '--ip6tables',
        join(dir, 'ip6tables'),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${join(dir, 'ip6tables-restore')}: command not found`);
      expect(existsSync(join(dir, 'calls.log'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('install fails (exit 1) naming a missing ip6tables; remove tolerates missing binaries', async () => {
    const v6 = ['--pod-interfaces', 'p+', '--pod-cidr', 'fd00:248:1::/64', '--ip6tables', '/nonexistent/ip6tables'];
    const install = await run(SCRIPT, ['install', ...v6]);
    expect(install.code).toBe(1);
    expect(install.stderr).toContain('/nonexistent/ip6tables: command not found');
    expect(install.stderr).toContain('--ip6tables');
    const remove = await run(SCRIPT, ['remove', ...v6, '--iptables', '/nonexistent/iptables']);
    expect(remove).toEqual({ code: 0, stdout: 'ztunnel-iptables.sh remove: done\n', stderr: '' });
  });

  describe('remove with stand-in iptables', () => {
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'ztunnel-ipt-script-'));
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    // A stand-in that logs its arguments and fails every call with `message` (what iptables prints).
    const standIn = (name: string, message: string) => {
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/sh\necho "$*" >> "$0.log"\necho '${message}' >&2\nexit 1\n`);
      chmodSync(path, 0o755);
      return path;
    };
    const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24'];

    it('fails (exit 1) naming the command and its error on a permission error, after trying both families', async () => {
      const denied =
        'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)';
      const v4 = standIn('iptables-denied', denied);
      const v6 = standIn('ip6tables-denied', denied);
      const r = await run(SCRIPT, ['remove', ...args, '--iptables', v4, '--ip6tables', v6]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        [v4, v6]
          .map(
            (ipt) =>
              `${ipt} -w -t nat -D PREROUTING -j AMBIENT_PREROUTING failed: ${denied}; ${ipt}'s capture rules were not (all) removed (run as root, and remove any rule of your own that jumps to these chains)\n`,
          )
          .join(''),
      );
    });

    it('succeeds when iptables says there is nothing to remove; every call waits for the lock (-w)', async () => {
      const v4 = standIn('iptables-empty', "iptables v1.8.9 (nf_tables): Chain 'AMBIENT_PREROUTING' does not exist");
      const v6 = standIn('ip6tables-empty', 'ip6tables: No chain/target/match by that name.');
      const r = await run(SCRIPT, ['remove', ...args, '--iptables', v4, '--ip6tables', v6]);
      expect(r).toEqual({ code: 0, stdout: 'ztunnel-iptables.sh remove: done\n', stderr: '' });
      const calls = readFileSync(`${v4}.log`, 'utf8').trim().split('\n');
      expect(calls).toEqual([
        '-w -t nat -D PREROUTING -j AMBIENT_PREROUTING',
        '-w -t nat -F AMBIENT_PREROUTING',
        '-w -t nat -X AMBIENT_PREROUTING',
        '-w -t nat -D OUTPUT -j AMBIENT_OUTPUT',
        '-w -t nat -F AMBIENT_OUTPUT',
        '-w -t nat -X AMBIENT_OUTPUT',
      ]);
      expect(readFileSync(`${v6}.log`, 'utf8').trim().split('\n')).toEqual(calls);
    });
  });
});

(reason ? describe.skip : describe)('scripts/ztunnel-iptables.sh rules, in a network namespace', () => {
  const inNs = async (...argv: string[]): Promise<string> => {
    const r = await run('ip', ['netns', 'exec', NETNS, ...argv]);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${NETNS} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const tables = async () => ({
    v4: await inNs('iptables', '-t', 'nat', '-S'),
    v6: await inNs('ip6tables', '-t', 'nat', '-S'),
  });

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', NETNS]);
  });
  // A failed test must not leave its chains to the next one.
  afterEach(async () => {
    for (const prefix of ['AMBIENT', 'ZT-test_1']) {
      await inNs(SCRIPT, 'remove', '--pod-interfaces', 'p+', '--pod-cidr', '10.0.0.0/8', '--chain-prefix', prefix);
    }
  });
  afterAll(() => {
    // Deleting the namespace takes its tables with it, whatever a failed test left behind.
    execFileSync('ip', ['netns', 'delete', NETNS], { stdio: 'ignore' });
  });

  const optionSets: [string, string[]][] = [
    [
      'dual-stack with ztunnel uid and defaults',
      [
        '--pod-interfaces',
        'p+',
        '--pod-cidr',
        '10.248.1.0/24',
        '--pod-cidr',
        'fd00:248:1::/64',
        '--pod-cidr',
        '10.248.9.0/24',
        '--ztunnel-uid',
        '1337',
      ],
    ],
    [
      'dual-stack with --no-dns, every port, mark and chain prefix changed',
      [
        '--pod-interfaces=veth+',
        '--pod-cidr=fd00:248:1::/64',
        '--pod-cidr=10.248.1.0/24',
        '--pod-cidr=fd00:248:2::/64',
        '--no-dns',
        '--outbound-port',
        '16001',
        '--hbone-port',
        '16008',
        '--plaintext-port',
        '16006',
        '--dns-port',
        '16053',
        '--mark',
        '0x40000',
        '--chain-prefix',
        'ZT-test_1',
      ],
    ],
  ];

  it.each(optionSets)(
    '%s: the same rules as the sub-command, idempotent, remove leaves the tables as before',
    async (_name, args) => {
      const before = await tables();

      expect(await inNs(...ZTUNNEL_CLI, 'iptables', 'install', ...args)).toBe('ztunnel iptables install: done\n');
      const expected = await tables();
      expect(expected.v4).not.toEqual(before.v4);
      expect(expected.v6).not.toEqual(before.v6);
      // The script removes what the sub-command installed.
      expect(await inNs(SCRIPT, 'remove', ...args)).toBe('ztunnel-iptables.sh remove: done\n');
      expect(await tables()).toEqual(before);

      expect(await inNs(SCRIPT, 'install', ...args)).toBe('ztunnel-iptables.sh install: done\n');
      expect(await tables()).toEqual(expected);
      // Again, with bash instead of /bin/sh: the same rules, not twice as many.
      expect(await inNs('bash', SCRIPT, 'install', ...args)).toBe('ztunnel-iptables.sh install: done\n');
      expect(await tables()).toEqual(expected);

      await inNs(SCRIPT, 'remove', ...args);
      expect(await tables()).toEqual(before);
      await inNs(SCRIPT, 'remove', ...args);
      expect(await tables()).toEqual(before);
    },
    60_000,
  );

  it('installs only the families that have a pod CIDR; remove takes both away', async () => {
    const before = await tables();
    await inNs(SCRIPT, 'install', '--pod-interfaces', 'p+', '--pod-cidr', 'fd00:248:1::/64');
    const v6only = await tables();
    expect(v6only.v4).toEqual(before.v4);
    expect(v6only.v6).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
    await inNs(SCRIPT, 'install', '--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24');
    expect((await tables()).v4).toContain('-A OUTPUT -j AMBIENT_OUTPUT');
    // Given only an IPv4 CIDR, remove still takes the IPv6 rules away.
    await inNs(SCRIPT, 'remove', '--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24');
    expect(await tables()).toEqual(before);
  });

  it.each([
    ['the script', [SCRIPT]],
    ['the sub-command', [...ZTUNNEL_CLI, 'iptables']],
  ])(
    '%s puts the hooks first, before a nat chain another program hooked earlier',
    async (_name, command) => {
      const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24'];
      // kube-proxy's (or Docker's) chain, hooked before ztunnel's install.
      await inNs('iptables', '-w', '-t', 'nat', '-N', 'KUBE-TEST');
      try {
        await inNs('iptables', '-w', '-t', 'nat', '-A', 'PREROUTING', '-j', 'KUBE-TEST');
        await inNs('iptables', '-w', '-t', 'nat', '-A', 'OUTPUT', '-j', 'KUBE-TEST');
        await inNs(...command, 'install', ...args);
        await inNs(...command, 'install', ...args);
        const hooks = (await inNs('iptables', '-w', '-t', 'nat', '-S'))
          .split('\n')
          .filter((l) => l.startsWith('-A PREROUTING') || l.startsWith('-A OUTPUT'));
        expect(hooks).toEqual([
          '-A PREROUTING -j AMBIENT_PREROUTING',
          '-A PREROUTING -j KUBE-TEST',
          '-A OUTPUT -j AMBIENT_OUTPUT',
          '-A OUTPUT -j KUBE-TEST',
        ]);
      } finally {
        await inNs(SCRIPT, 'remove', ...args);
        await inNs('iptables', '-w', '-t', 'nat', '-D', 'PREROUTING', '-j', 'KUBE-TEST');
        await inNs('iptables', '-w', '-t', 'nat', '-D', 'OUTPUT', '-j', 'KUBE-TEST');
        await inNs('iptables', '-w', '-t', 'nat', '-X', 'KUBE-TEST');
      }
    },
    60_000,
  );

  it('when rolling IPv4 back fails too, the script and the sub-command say the same about what is left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ztunnel-ipt-rollback-'));
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), `#!/bin/sh\n${text}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    // Real iptables, whose -restore works once (the install) and refuses the next call (the rollback); real
    // ip6tables, whose -restore slips in a jump the kernel refuses, so the IPv6 transaction fails for real.
    const used = join(dir, 'restore.used');
    write('iptables', 'exec iptables "$@"');
    write('iptables-save', 'exec iptables-save "$@"');
    write(
      'iptables-restore',
      `if [ -e ${used} ]; then echo 'iptables-restore: rollback refused' >&2; exit 1; fi\ntouch ${used}\nexec iptables-restore "$@"`,
    );
    write('ip6tables', 'exec ip6tables "$@"');
    write(
      'ip6tables-restore',
      `awk '$0 == "COMMIT" { print "-A AMBIENT_OUTPUT -j AMBIENT_NO_SUCH_CHAIN" } { print }' | exec ip6tables-restore "$@"`,
    );
    const ipt = join(dir, 'iptables');
    const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--pod-cidr', 'fd00:248:1::/64'];
    const failing = [...args, '--no-dns', '--iptables', ipt, '--ip6tables', join(dir, 'ip6tables')];
    const half = `Rolling back IPv4 (${ipt}) failed too (${ipt}-restore --noflush failed: iptables-restore: rollback refused), so the node is half-applied: ${ipt} still has this install's rules in AMBIENT_PREROUTING and AMBIENT_OUTPUT, hooked from PREROUTING and OUTPUT. `;
    try {
      const before = await tables();
      const left: { v4: string; v6: string }[] = [];
      const previously: string[] = [];
      for (const command of [[SCRIPT], [...ZTUNNEL_CLI, 'iptables']]) {
        // First install: nothing of ours was there before.
        rmSync(used, { force: true });
        const first = await run('ip', ['netns', 'exec', NETNS, ...command, 'install', ...failing]);
        expect(first.code).toBe(1);
        expect(first.stderr).toMatch(/^IPv6 \(.*ip6tables\) install failed: .*AMBIENT_NO_SUCH_CHAIN/);
        expect(first.stderr.slice(first.stderr.indexOf('\n') + 1)).toBe(
          `${half}Before this install ${ipt} had none of these chains (remove takes them away, in both families).\n`,
        );
        // Not hidden: IPv4 holds this install's rules, IPv6 is as it was.
        const now = await tables();
        expect(now.v4).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
        expect(now.v6).toEqual(before.v6);
        left.push(now);

        // Re-install: the lines there were before are printed.
        await inNs(SCRIPT, 'remove', ...args);
        await inNs(SCRIPT, 'install', ...args);
        rmSync(used, { force: true });
        const again = await run('ip', ['netns', 'exec', NETNS, ...command, 'install', ...failing]);
        expect(again.code).toBe(1);
        const rollback = again.stderr.slice(again.stderr.indexOf('\n') + 1);
        expect(rollback).toContain(`${half}Before this install ${ipt}-save showed these lines of them`);
        expect(rollback).toContain(
          '\n    -A AMBIENT_PREROUTING -i p+ -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053\n',
        );
        previously.push(rollback);
        await inNs(SCRIPT, 'remove', ...args);
      }
      expect(left[1]).toEqual(left[0]);
      expect(previously[1]).toBe(previously[0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('a hook added twice by hand is removed too', async () => {
    const before = await tables();
    const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24'];
    await inNs(SCRIPT, 'install', ...args);
    await inNs('iptables', '-t', 'nat', '-A', 'PREROUTING', '-j', 'AMBIENT_PREROUTING');
    await inNs(SCRIPT, 'remove', ...args);
    expect(await tables()).toEqual(before);
  });
});
