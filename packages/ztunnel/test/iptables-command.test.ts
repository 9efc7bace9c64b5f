import { parseIptablesCommand, runIptablesCommand } from '../src/iptables-command.js';
import { captureRules, installCaptureRules, type Runner, restoreCommand } from '../src/iptables-rules.js';

/**
 * Stand-ins for iptables and ip6tables that keep their nat chains in memory (one table per binary), so
 * idempotence is checked on real state. Every call must start with `-w` (wait for the xtables lock), or it
 * fails. `<binary>-restore` is their iptables-restore: it accepts only `-w --noflush` (without --noflush the
 * whole table would be replaced), reads `*nat`, `:<chain> - [0:0]` (creates the chain, or flushes it when it
 * exists), `-A <chain> ...`, `-I <chain> 1 ...` and `COMMIT`, and applies the transaction only when every line
 * of it is good, as the real one does. A line matching `rejects` fails the way a rule the kernel refuses does.
 * A binary listed in `missing` (or its -restore) fails as a missing command does; one listed in `denied` fails
 * every call as iptables does for a user who is not root.
 */
function fakeIptables(
  missing: string[] = [],
  rejects?: RegExp,
  denied: string[] = [],
): { exec: Runner; dump: (cmd?: string) => string[]; calls: string[]; inputs: string[] } {
  const tables = new Map<string, Map<string, string[]>>();
  const calls: string[] = [];
  const inputs: string[] = [];
  const table = (cmd: string) => {
    let t = tables.get(cmd);
    if (!t) {
      t = new Map([
        ['PREROUTING', []],
        ['OUTPUT', []],
      ]);
      tables.set(cmd, t);
    }
    return t;
  };
  const ok = { ok: true, stderr: '' };
  const restore = (cmd: string, args: string[], input: string) => {
    const binary = cmd.slice(0, -'-restore'.length);
    if (args.join(' ') !== '-w --noflush')
      return { ok: false, stderr: `${cmd} ${args.join(' ')}: expected -w --noflush (no lock wait, or a flush)` };
    // The transaction works on a copy, which replaces the table only at COMMIT.
    const copy = new Map([...table(binary)].map(([c, rules]) => [c, [...rules]]));
    const lines = input.split('\n');
    if (lines.pop() !== '') return { ok: false, stderr: 'input does not end in a newline' };
    for (const [i, line] of lines.entries()) {
      const fail = { ok: false, stderr: `${cmd}: bad line\nError occurred at line: ${i + 1}\nTry \`${cmd} -h'` };
      if (rejects?.test(line)) return fail;
      const decl = /^:(\S+) - \[0:0\]$/.exec(line);
      const append = /^-A (\S+) (.+)$/.exec(line);
      const insert = /^-I (\S+) 1 (.+)$/.exec(line);
      if (line === '*nat') continue;
      if (decl) copy.set(decl[1] as string, []);
      else if (append && copy.has(append[1] as string)) copy.get(append[1] as string)?.push(append[2] as string);
      else if (insert && copy.has(insert[1] as string)) copy.get(insert[1] as string)?.unshift(insert[2] as string);
      else if (line === 'COMMIT' && i === lines.length - 1) tables.set(binary, copy);
      else return fail;
    }
    return ok;
  };
  const exec: Runner = async (cmd, args, input) => {
    calls.push(`${cmd} ${args.join(' ')}`);
    if (missing.some((m) => cmd === m || cmd === `${m}-restore`)) return { ok: false, stderr: `spawn ${cmd} ENOENT` };
    if (denied.some((m) => cmd === m || cmd === `${m}-restore`)) {
      return {
        ok: false,
        stderr: `${cmd} v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n`,
      };
    }
    if (cmd.endsWith('-restore')) {
      inputs.push(input ?? '');
      return restore(cmd, args, input ?? '');
    }
    const chains = table(cmd);
    const [wait, , , op, chain, ...rule] = args;
    if (wait !== '-w') return { ok: false, stderr: `${cmd} ${args.join(' ')}: expected -w first` };
    const list = chain ? chains.get(chain) : undefined;
    const text = rule.join(' ');
    const fail = { ok: false, stderr: 'No chain/target/match by that name.' };
    switch (op) {
      case '-N':
        if (list) return { ok: false, stderr: 'Chain already exists.' };
        chains.set(chain as string, []);
        return ok;
      case '-F':
        if (!list) return fail;
        list.length = 0;
        return ok;
      case '-X':
        return chains.delete(chain as string) ? ok : fail;
      case '-A':
        if (!list) return fail;
        list.push(text);
        return ok;
      case '-C':
        return list?.includes(text) ? ok : fail;
      case '-D': {
        const i = list?.indexOf(text) ?? -1;
        if (i < 0) return fail;
        list?.splice(i, 1);
        return ok;
      }
      default:
        return fail;
    }
  };
  const dump = (cmd = 'iptables') =>
    [...table(cmd)].flatMap(([c, rules]) => [`-N ${c}`, ...rules.map((r) => `-A ${c} ${r}`)]);
  return { exec, dump, calls, inputs };
}

function parsed(argv: string[]) {
  const cmd = parseIptablesCommand(argv);
  if ('help' in cmd) throw new Error('unexpected help');
  return cmd;
}

describe('ztunnel iptables install|remove', () => {
  const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--ztunnel-uid', '1337'];

  it('installs idempotently and removes exactly what it added', async () => {
    const ipt = fakeIptables();
    const before = ipt.dump();
    const install = parsed(['install', ...args]);
    await runIptablesCommand(install, ipt.exec);
    const once = ipt.dump();
    expect(once).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
    expect(once).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001');
    expect(once).toContain('-A AMBIENT_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    await runIptablesCommand(install, ipt.exec);
    expect(ipt.dump()).toEqual(once);
    const remove = parsed(['remove', ...args]);
    await runIptablesCommand(remove, ipt.exec);
    expect(ipt.dump()).toEqual(before);
    await runIptablesCommand(remove, ipt.exec);
    expect(ipt.dump()).toEqual(before);
  });

  it('leaves ip6tables alone on an IPv4-only node', async () => {
    const ipt = fakeIptables();
    await runIptablesCommand(parsed(['install', ...args]), ipt.exec);
    expect(ipt.calls.filter((c) => c.startsWith('ip6tables'))).toEqual([]);
    expect(ipt.dump('ip6tables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
  });

  it('installs IPv6 rules with ip6tables on a dual-stack node, the same rules as IPv4 for its own CIDR', async () => {
    const ipt = fakeIptables();
    const dual = [...args, '--pod-cidr', 'fd00:248:1::/64'];
    const install = parsed(['install', ...dual]);
    await runIptablesCommand(install, ipt.exec);
    const v4 = ipt.dump('iptables');
    const v6 = ipt.dump('ip6tables');
    expect(v4.join('\n')).not.toContain('fd00:');
    expect(v6.join('\n')).not.toContain('10.248.');
    // The same chains, hooks and exclusions (mark, ztunnel's uid), with the IPv6 pod CIDR in place of the IPv4 one.
    expect(v6).toEqual(v4.map((r) => r.replace('10.248.1.0/24', 'fd00:248:1::/64')));
    expect(v6).toContain('-A AMBIENT_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    expect(v6).toContain('-A AMBIENT_PREROUTING -m mark --mark 0x539/0x539 -j RETURN');
    expect(v6).toContain('-A AMBIENT_PREROUTING -p tcp -d fd00:248:1::/64 -j REDIRECT --to-ports 15006');
    await runIptablesCommand(install, ipt.exec);
    expect([ipt.dump('iptables'), ipt.dump('ip6tables')]).toEqual([v4, v6]);
    // remove needs no CIDR of a family to take that family's rules away.
    await runIptablesCommand(parsed(['remove', ...args]), ipt.exec);
    expect(ipt.dump('iptables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
    expect(ipt.dump('ip6tables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
  });

  it('an IPv6-only node gets only ip6tables rules; --ip6tables names the binary', async () => {
    const ipt = fakeIptables();
    await runIptablesCommand(
      parsed(['install', '--pod-interfaces', 'p+', '--pod-cidr', 'fd00:248:1::/64', '--ip6tables', 'ip6tables-nft']),
      ipt.exec,
    );
    expect(ipt.calls.some((c) => c.startsWith('iptables '))).toBe(false);
    expect(ipt.dump('ip6tables-nft')).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
  });

  it('install fails naming ip6tables when it is missing; remove still succeeds', async () => {
    const ipt = fakeIptables(['ip6tables']);
    const dual = [...args, '--pod-cidr', 'fd00:248:1::/64'];
    await expect(runIptablesCommand(parsed(['install', ...dual]), ipt.exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^ip6tables-restore --noflush failed: spawn ip6tables-restore ENOENT; ip6tables's rules were left as they were/,
      ),
    });
    await runIptablesCommand(parsed(['remove', ...dual]), ipt.exec);
    expect(ipt.dump('iptables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
  });

  it('installs each family in one iptables-restore --noflush transaction: chains, missing hooks, rules, COMMIT', async () => {
    const ipt = fakeIptables();
    const install = parsed(['install', ...args]);
    await runIptablesCommand(install, ipt.exec);
    // Only checks of the hooks run as single commands; everything that changes the table is in the transaction.
    expect(ipt.calls).toEqual([
      'iptables -w -t nat -C PREROUTING -j AMBIENT_PREROUTING',
      'iptables -w -t nat -C OUTPUT -j AMBIENT_OUTPUT',
      'iptables-restore -w --noflush',
    ]);
    const body = [
      '-A AMBIENT_PREROUTING -m mark --mark 0x539/0x539 -j RETURN',
      '-A AMBIENT_PREROUTING -i p+ -p udp --dport 53 -j REDIRECT --to-ports 15053',
      '-A AMBIENT_PREROUTING -i p+ -p tcp --dport 53 -j REDIRECT --to-ports 15053',
      '-A AMBIENT_PREROUTING -p tcp -d 10.248.1.0/24 --dport 15008 -j REDIRECT --to-ports 15008',
      '-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001',
      '-A AMBIENT_PREROUTING -p tcp -d 10.248.1.0/24 -j REDIRECT --to-ports 15006',
      '-A AMBIENT_OUTPUT -p tcp -d 10.248.1.0/24 --dport 15008 -j REDIRECT --to-ports 15008',
      '-A AMBIENT_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A AMBIENT_OUTPUT -m mark --mark 0x539/0x539 -j RETURN',
      'COMMIT',
      '',
    ];
    const chains = ['*nat', ':AMBIENT_PREROUTING - [0:0]', ':AMBIENT_OUTPUT - [0:0]'];
    // Hooks go in at the top, before any nat chain another program (kube-proxy, Docker) put there.
    const inserts = ['-I PREROUTING 1 -j AMBIENT_PREROUTING', '-I OUTPUT 1 -j AMBIENT_OUTPUT'];
    const hooks = ['-A PREROUTING -j AMBIENT_PREROUTING', '-A OUTPUT -j AMBIENT_OUTPUT'];
    expect(ipt.inputs).toEqual([[...chains, ...inserts, ...body].join('\n')]);
    // Hooked already: the second transaction refills the chains and adds no hook.
    await runIptablesCommand(install, ipt.exec);
    expect(ipt.inputs[1]).toBe([...chains, ...body].join('\n'));
    expect(ipt.dump().filter((r) => r.startsWith('-A PREROUTING') || r.startsWith('-A OUTPUT'))).toEqual(hooks);
  });

  it('a rule the restore rejects leaves the installed rules as they were and names the line', async () => {
    const ipt = fakeIptables([], /--to-ports 16006/);
    await runIptablesCommand(parsed(['install', ...args]), ipt.exec);
    const installed = ipt.dump();
    // A re-install with other rules whose last PREROUTING rule is refused: nothing of it may land.
    await expect(
      runIptablesCommand(parsed(['install', ...args, '--no-dns', '--plaintext-port', '16006']), ipt.exec),
    ).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^iptables-restore --noflush failed: iptables-restore: bad line Error occurred at line: 7 \(line 7: -A AMBIENT_PREROUTING -p tcp -d 10\.248\.1\.0\/24 -j REDIRECT --to-ports 16006\); iptables's rules were left as they were \(run as root/,
      ),
    });
    expect(ipt.dump()).toEqual(installed);
    // On a node without the rules, a failed install adds no chain and no hook.
    const fresh = fakeIptables([], /--to-ports 16006/);
    await expect(
      runIptablesCommand(parsed(['install', ...args, '--plaintext-port', '16006']), fresh.exec),
    ).rejects.toMatchObject({ code: 'ERR_ZTUNNEL_CONFIG' });
    expect(fresh.dump()).toEqual(['-N PREROUTING', '-N OUTPUT']);
  });

  it('refuses a word iptables-restore would split or read as another line, before running anything', async () => {
    const ipt = fakeIptables();
    // captureRules refuses such a CIDR itself; a rule set built another way is checked again before running.
    const set = captureRules({ podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24'] });
    set.rules.push(['-t', 'nat', '-A', 'AMBIENT_OUTPUT', '-d', '10.248.1.0/24\n-A OUTPUT -j ACCEPT', '-j', 'RETURN']);
    await expect(installCaptureRules(set, 'iptables', ipt.exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringContaining('is not one iptables word'),
    });
    expect(ipt.calls).toEqual([]);
  });

  it('inserts the hooks at the top, before nat chains other programs put there, and keeps them there', async () => {
    const ipt = fakeIptables();
    // kube-proxy's and Docker's hooks, appended before ztunnel's install.
    await ipt.exec('iptables', ['-w', '-t', 'nat', '-A', 'PREROUTING', '-j', 'KUBE-SERVICES']);
    await ipt.exec('iptables', ['-w', '-t', 'nat', '-A', 'OUTPUT', '-j', 'DOCKER']);
    const install = parsed(['install', ...args]);
    await runIptablesCommand(install, ipt.exec);
    const hooks = () => ipt.dump().filter((r) => r.startsWith('-A PREROUTING') || r.startsWith('-A OUTPUT'));
    const expected = [
      '-A PREROUTING -j AMBIENT_PREROUTING',
      '-A PREROUTING -j KUBE-SERVICES',
      '-A OUTPUT -j AMBIENT_OUTPUT',
      '-A OUTPUT -j DOCKER',
    ];
    expect(hooks()).toEqual(expected);
    await runIptablesCommand(install, ipt.exec);
    expect(hooks()).toEqual(expected);
  });

  it('remove reports a failure other than "nothing there" (not root), after trying every family', async () => {
    const ipt = fakeIptables([], undefined, ['iptables', 'ip6tables']);
    const remove = runIptablesCommand(parsed(['remove', ...args]), ipt.exec);
    await expect(remove).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^iptables -w -t nat -D PREROUTING -j AMBIENT_PREROUTING failed: iptables v1\.8\.9 \(nf_tables\): Could not fetch rule set generation id: Permission denied \(you must be root\); iptables's capture rules were not \(all\) removed[^\n]*\nip6tables -w -t nat -D PREROUTING [^\n]*Permission denied/,
      ),
    });
    // ip6tables was tried although iptables failed.
    expect(ipt.calls.some((c) => c.startsWith('ip6tables '))).toBe(true);
    // Only the IPv6 binary refuses: the IPv4 rules are removed, and the IPv6 failure is still reported.
    const half = fakeIptables([], undefined, ['ip6tables']);
    await runIptablesCommand(parsed(['install', ...args]), half.exec);
    await expect(runIptablesCommand(parsed(['remove', ...args]), half.exec)).rejects.toMatchObject({
      message: expect.stringMatching(/^ip6tables -w -t nat -D PREROUTING .*Permission denied/),
    });
    expect(half.dump('iptables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
  });

  it('remove reports a chain that cannot be deleted because a rule of someone else still jumps to it', async () => {
    const ipt = fakeIptables();
    await runIptablesCommand(parsed(['install', ...args]), ipt.exec);
    const exec: Runner = async (cmd, a, input) =>
      a.includes('-X') && a.includes('AMBIENT_OUTPUT')
        ? { ok: false, stderr: 'iptables v1.8.9 (nf_tables): Could not process rule: Device or resource busy\n' }
        : ipt.exec(cmd, a, input);
    await expect(runIptablesCommand(parsed(['remove', ...args]), exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringContaining(
        'iptables -w -t nat -X AMBIENT_OUTPUT failed: iptables v1.8.9 (nf_tables): Could not process rule: Device or resource busy',
      ),
    });
  });

  it('captureRules refuses a CIDR that is no address, a mark of 0 and a bad interface pattern', () => {
    const ok = { podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24', 'fd00:248:1::/64', '10.248.2.7'] };
    expect(captureRules(ok, 6).rules.map((r) => r.join(' '))).toContain(
      '-t nat -A AMBIENT_PREROUTING -p tcp -d fd00:248:1::/64 -j REDIRECT --to-ports 15006',
    );
    for (const cidr of ['nonsense', '10.248.1.0/33', 'fd00::/129', '10.248.1.0/24/8', '', 'pods.example']) {
      expect(() => captureRules({ ...ok, localPodCidrs: ['10.248.1.0/24', cidr] })).toThrow(
        expect.objectContaining({
          code: 'ERR_ZTUNNEL_CONFIG',
          message: expect.stringContaining(`${JSON.stringify(cidr)} are not an address or CIDR`),
        }),
      );
    }
    for (const mark of [0, -1, 1.5, 0x100000000]) {
      expect(() => captureRules({ ...ok, mark })).toThrow(
        expect.objectContaining({
          code: 'ERR_ZTUNNEL_CONFIG',
          message: expect.stringContaining(`mark ${mark} is not a fwmark`),
        }),
      );
    }
    for (const podInterfaces of ['-i', '--no-dns', 'p*', 'a'.repeat(16), '+', 'veth 1']) {
      expect(() => captureRules({ ...ok, podInterfaces })).toThrow(
        expect.objectContaining({
          code: 'ERR_ZTUNNEL_CONFIG',
          message: expect.stringContaining('pod interface pattern'),
        }),
      );
    }
    expect(captureRules({ ...ok, podInterfaces: `${'a'.repeat(15)}+` }).rules[1]).toContain(`${'a'.repeat(15)}+`);
  });

  it('a following option is a missing value, not the value: --pod-interfaces --no-dns is refused', () => {
    expect(() => parseIptablesCommand(['install', '--pod-interfaces', '--no-dns', '--pod-cidr', '10.0.0.0/8'])).toThrow(
      expect.objectContaining({
        code: 'ERR_ZTUNNEL_CONFIG',
        message: expect.stringMatching(/--pod-interfaces needs a value/),
      }),
    );
    // Given, only without a value: not also reported as missing.
    expect(() => parseIptablesCommand(['install', '--pod-interfaces', '--no-dns', '--pod-cidr', '10.0.0.0/8'])).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('--pod-interfaces is required') }),
    );
    expect(() => parseIptablesCommand(['install', ...args, '--hbone-port', '--no-dns'])).toThrow(
      expect.objectContaining({ message: expect.stringContaining('--hbone-port needs a value') }),
    );
    expect(() => parseIptablesCommand(['install', '--pod-cidr', '10.0.0.0/8', '--pod-interfaces'])).toThrow(
      expect.objectContaining({ message: expect.stringContaining('--pod-interfaces needs a value') }),
    );
    for (const pattern of ['-veth+', 'a'.repeat(16)]) {
      expect(() =>
        parseIptablesCommand(['install', '--pod-cidr', '10.0.0.0/8', `--pod-interfaces=${pattern}`]),
      ).toThrow(
        expect.objectContaining({
          message: expect.stringContaining(`--pod-interfaces: "${pattern}" is not an interface name pattern`),
        }),
      );
    }
  });

  it('derives the restore command from the iptables command', () => {
    expect(restoreCommand('iptables')).toBe('iptables-restore');
    expect(restoreCommand('ip6tables')).toBe('ip6tables-restore');
    expect(restoreCommand('/usr/sbin/iptables-legacy')).toBe('/usr/sbin/iptables-legacy-restore');
    expect(restoreCommand('ip6tables-nft')).toBe('ip6tables-nft-restore');
  });

  it('honours --no-dns and custom ports', () => {
    const cmd = parsed(['install', ...args, '--no-dns', '--outbound-port=16001']);
    const rules = cmd.families.flatMap((f) => f.rules.rules.map((r) => r.join(' ')));
    expect(rules.some((r) => r.includes('--dport 53'))).toBe(false);
    expect(rules).toContain('-t nat -A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 16001');
  });

  it('honours --mark and --chain-prefix, and rejects a mark of 0 and an over-long prefix', () => {
    const cmd = parsed(['install', ...args, '--mark', '0x40000', '--chain-prefix=ZT']);
    const rules = cmd.families.flatMap((f) => f.rules.rules.map((r) => r.join(' ')));
    expect(rules).toContain('-t nat -A ZT_PREROUTING -m mark --mark 0x40000/0x40000 -j RETURN');
    expect(rules).toContain('-t nat -A ZT_OUTPUT -m mark --mark 0x40000/0x40000 -j RETURN');
    expect(rules.some((r) => r.includes('AMBIENT') || r.includes('0x539'))).toBe(false);
    expect(parsed(['install', ...args, '--mark', '1337']).families[0]?.rules.rules[0]).toContain('0x539/0x539');
    expect(() => parseIptablesCommand(['install', ...args, '--mark', '0', '--chain-prefix', 'A'.repeat(18)])).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(/--mark: "0" is not a fwmark[\s\S]*--chain-prefix: "A+"/),
      }),
    );
  });

  it('reports every problem at once', () => {
    expect(() => parseIptablesCommand(['instal', '--pod-cidr', 'nonsense', '--hbone-port', '0'])).toThrow(
      expect.objectContaining({
        code: 'ERR_ZTUNNEL_CONFIG',
        message: expect.stringMatching(
          /'install' or 'remove'[\s\S]*--pod-cidr[\s\S]*--hbone-port[\s\S]*--pod-interfaces is required/,
        ),
      }),
    );
    expect(parseIptablesCommand(['--help'])).toEqual({ help: true });
  });
});
