import { iptablesMain, parseIptablesCommand, runIptablesCommand } from '../src/iptables-command.js';
import { captureRules, installCaptureRules, type Runner, restoreCommand } from '../src/iptables-rules.js';
import { ownLines, rollbackInput } from '../src/iptables-snapshot.js';

/**
 * Stand-ins for iptables and ip6tables that keep their nat chains in memory (one table per binary), so
 * idempotence is checked on real state. Every call must start with `-w` (wait for the xtables lock), or it
 * fails. `<binary>-restore` is their iptables-restore: it accepts only `-w --noflush` (without --noflush the
 * whole table would be replaced), reads `*nat`, `:<chain> - [0:0]` (creates the chain, or flushes it when it
 * exists), `-A <chain> ...`, `-I <chain> 1 ...`, `-D <chain> ...`, `-X <chain>` (only an empty chain) and `COMMIT`,
 * and applies the transaction only when every line of it is good, as the real one does. `<binary>-save -t nat`
 * prints the table as iptables-save does. A line matching `rejects` fails the way a rule the kernel refuses does.
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
  const ok = { ok: true, stdout: '', stderr: '' };
  const restore = (cmd: string, args: string[], input: string) => {
    const binary = cmd.slice(0, -'-restore'.length);
    if (args.join(' ') !== '-w --noflush')
      return {
        ok: false,
        stdout: '',
        stderr: `${cmd} ${args.join(' ')}: expected -w --noflush (no lock wait, or a flush)`,
      };
    // The transaction works on a copy, which replaces the table only at COMMIT.
    const copy = new Map([...table(binary)].map(([c, rules]) => [c, [...rules]]));
    const lines = input.split('\n');
    if (lines.pop() !== '') return { ok: false, stdout: '', stderr: 'input does not end in a newline' };
    for (const [i, line] of lines.entries()) {
      const fail = {
        ok: false,
        stdout: '',
        stderr: `${cmd}: bad line\nError occurred at line: ${i + 1}\nTry \`${cmd} -h'`,
      };
      if (rejects?.test(line)) return fail;
      const decl = /^:(\S+) - \[0:0\]$/.exec(line);
      const append = /^-A (\S+) (.+)$/.exec(line);
      const insert = /^-I (\S+) 1 (.+)$/.exec(line);
      const del = /^-D (\S+) (.+)$/.exec(line);
      const index = del ? (copy.get(del[1] as string)?.indexOf(del[2] as string) ?? -1) : -1;
      const drop = /^-X (\S+)$/.exec(line);
      if (line === '*nat') continue;
      if (decl) copy.set(decl[1] as string, []);
      else if (append && copy.has(append[1] as string)) copy.get(append[1] as string)?.push(append[2] as string);
      else if (insert && copy.has(insert[1] as string)) copy.get(insert[1] as string)?.unshift(insert[2] as string);
      else if (del && index >= 0) copy.get(del[1] as string)?.splice(index, 1);
      else if (drop && copy.get(drop[1] as string)?.length === 0) copy.delete(drop[1] as string);
      else if (line === 'COMMIT' && i === lines.length - 1) tables.set(binary, copy);
      else return fail;
    }
    return ok;
  };
  const exec: Runner = async (cmd, args, input) => {
    calls.push(`${cmd} ${args.join(' ')}`);
    const family = (m: string) => [m, `${m}-restore`, `${m}-save`].includes(cmd);
    if (missing.some(family)) return { ok: false, stdout: '', stderr: `spawn ${cmd} ENOENT` };
    if (denied.some(family)) {
      return {
        ok: false,
        stdout: '',
        stderr: `${cmd} v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n`,
      };
    }
    if (cmd.endsWith('-restore')) {
      inputs.push(input ?? '');
      return restore(cmd, args, input ?? '');
    }
    if (cmd.endsWith('-save')) {
      if (args.join(' ') !== '-t nat') return { ok: false, stdout: '', stderr: `${cmd}: expected -t nat` };
      return { ok: true, stdout: save(cmd.slice(0, -'-save'.length)), stderr: '' };
    }
    const chains = table(cmd);
    const [wait, , , op, chain, ...rule] = args;
    if (wait !== '-w') return { ok: false, stdout: '', stderr: `${cmd} ${args.join(' ')}: expected -w first` };
    const list = chain ? chains.get(chain) : undefined;
    const text = rule.join(' ');
    const fail = { ok: false, stdout: '', stderr: 'No chain/target/match by that name.' };
    switch (op) {
      case '-N':
        if (list) return { ok: false, stdout: '', stderr: 'Chain already exists.' };
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
  // As iptables-save prints it: a comment, the table, built-in chains with a policy, then every rule.
  const save = (cmd: string) => {
    const chains = [...table(cmd)];
    const builtIn = (c: string) => c === 'PREROUTING' || c === 'OUTPUT';
    return [
      `# Generated by ${cmd}-save v1.8.9 (nf_tables)`,
      '*nat',
      ...chains.map(([c]) => `:${c} ${builtIn(c) ? 'ACCEPT' : '-'} [0:0]`),
      ...chains.flatMap(([c, rules]) => rules.map((r) => `-A ${c} ${r}`)),
      'COMMIT',
      '',
    ].join('\n');
  };
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

  it('install fails naming ip6tables when it is missing, with IPv4 rolled back; remove still succeeds', async () => {
    const ipt = fakeIptables(['ip6tables']);
    const dual = [...args, '--pod-cidr', 'fd00:248:1::/64'];
    await expect(runIptablesCommand(parsed(['install', ...dual]), ipt.exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^IPv6 \(ip6tables\) install failed: ip6tables-restore --noflush failed: spawn ip6tables-restore ENOENT; ip6tables's rules were left as they were/,
      ),
    });
    expect(ipt.dump('iptables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
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
        ? {
            ok: false,
            stdout: '',
            stderr: 'iptables v1.8.9 (nf_tables): Could not process rule: Device or resource busy\n',
          }
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

describe('a dual-stack install is all or nothing: IPv4 is rolled back when IPv6 fails', () => {
  const dual = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--pod-cidr', 'fd00:248:1::/64'];
  const hooks = (dump: string[]) => dump.filter((r) => r.startsWith('-A PREROUTING') || r.startsWith('-A OUTPUT'));

  it('first install: the chains and hooks IPv4 got are taken away again, other hooks stay', async () => {
    // ip6tables-restore refuses every IPv6 rule: the IPv6 transaction fails after IPv4's succeeded.
    const ipt = fakeIptables([], /fd00:/);
    // kube-proxy's hook, there before the install.
    await ipt.exec('iptables', ['-w', '-t', 'nat', '-A', 'PREROUTING', '-j', 'KUBE-SERVICES']);
    const before = ipt.dump('iptables');
    ipt.calls.length = 0;
    await expect(runIptablesCommand(parsed(['install', ...dual]), ipt.exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^IPv6 \(ip6tables\) install failed: ip6tables-restore --noflush failed: ip6tables-restore: bad line Error occurred at line: \d+ \(line \d+: .*fd00:.*\); ip6tables's rules were left as they were .*\nIPv4 \(iptables\) was rolled back: its rules are as they were before this install\.$/,
      ),
    });
    expect(ipt.dump('iptables')).toEqual(before);
    expect(ipt.dump('ip6tables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
    // Read before anything changed, and again before putting it back; the rollback touches only our chains.
    expect(ipt.calls.filter((c) => !c.includes(' -C '))).toEqual([
      'iptables-save -t nat',
      'iptables-restore -w --noflush',
      'ip6tables-restore -w --noflush',
      'iptables-save -t nat',
      'iptables-restore -w --noflush',
    ]);
    expect(ipt.inputs[2]).toBe(
      [
        '*nat',
        ':AMBIENT_PREROUTING - [0:0]',
        ':AMBIENT_OUTPUT - [0:0]',
        '-D PREROUTING -j AMBIENT_PREROUTING',
        '-X AMBIENT_PREROUTING',
        '-D OUTPUT -j AMBIENT_OUTPUT',
        '-X AMBIENT_OUTPUT',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  it('re-install: IPv4 gets its previous rules and hooks back', async () => {
    // Only the new IPv6 plaintext rule (port 16006) is refused; the first install passes.
    const ipt = fakeIptables([], /fd00:.*--to-ports 16006/);
    await runIptablesCommand(parsed(['install', ...dual, '--ztunnel-uid', '1337']), ipt.exec);
    const v4 = ipt.dump('iptables');
    const v6 = ipt.dump('ip6tables');
    const changed = parsed(['install', ...dual, '--no-dns', '--plaintext-port', '16006']);
    await expect(runIptablesCommand(changed, ipt.exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(/^IPv6 \(ip6tables\) install failed: .*\nIPv4 \(iptables\) was rolled back/),
    });
    expect(ipt.dump('iptables')).toEqual(v4);
    expect(ipt.dump('iptables')).toContain('-A AMBIENT_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    expect(hooks(ipt.dump('iptables'))).toEqual(['-A PREROUTING -j AMBIENT_PREROUTING', '-A OUTPUT -j AMBIENT_OUTPUT']);
    expect(ipt.dump('ip6tables')).toEqual(v6);
  });

  it('a rollback that fails too says so, and names what is left and what was there before', async () => {
    const fresh = fakeIptables([], /fd00:/);
    // The second iptables-restore (the rollback) is refused.
    let restores = 0;
    const refuseRollback: (ipt: ReturnType<typeof fakeIptables>) => Runner = (ipt) => async (cmd, a, input) =>
      cmd === 'iptables-restore' && ++restores === 2
        ? { ok: false, stdout: '', stderr: 'iptables-restore: line 4 failed\n' }
        : ipt.exec(cmd, a, input);
    await expect(runIptablesCommand(parsed(['install', ...dual]), refuseRollback(fresh))).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message: expect.stringMatching(
        /^IPv6 \(ip6tables\) install failed: ip6tables-restore --noflush failed: [^\n]*\nRolling back IPv4 \(iptables\) failed too \(iptables-restore --noflush failed: iptables-restore: line 4 failed\), so the node is half-applied: iptables still has this install's rules in AMBIENT_PREROUTING and AMBIENT_OUTPUT, hooked from PREROUTING and OUTPUT\. Before this install iptables had none of these chains \(remove takes them away, in both families\)\.$/,
      ),
    });
    // Not hidden: the IPv4 rules are indeed still there.
    expect(hooks(fresh.dump('iptables'))).toEqual([
      '-A PREROUTING -j AMBIENT_PREROUTING',
      '-A OUTPUT -j AMBIENT_OUTPUT',
    ]);

    // On a re-install, the lines there were before are printed, for an operator to get them back.
    const again = fakeIptables([], /fd00:.*--to-ports 16006/);
    await runIptablesCommand(parsed(['install', ...dual]), again.exec);
    restores = 0;
    const changed = parsed(['install', ...dual, '--plaintext-port', '16006']);
    const failure = runIptablesCommand(changed, refuseRollback(again));
    await expect(failure).rejects.toMatchObject({
      message: expect.stringContaining(
        [
          'Before this install iptables-save showed these lines of them (install again with the options that made them to get them back):',
          '    :AMBIENT_PREROUTING - [0:0]',
          '    :AMBIENT_OUTPUT - [0:0]',
          '    -A PREROUTING -j AMBIENT_PREROUTING',
          '    -A OUTPUT -j AMBIENT_OUTPUT',
          '    -A AMBIENT_PREROUTING -m mark --mark 0x539/0x539 -j RETURN',
        ].join('\n'),
      ),
    });
    await expect(failure).rejects.toMatchObject({
      message: expect.stringContaining(
        '    -A AMBIENT_PREROUTING -p tcp -d 10.248.1.0/24 -j REDIRECT --to-ports 15006',
      ),
    });
  });

  it('when the IPv4 rules cannot be read first, nothing is changed', async () => {
    const ipt = fakeIptables();
    // iptables-save is missing; iptables and iptables-restore are there.
    const exec: Runner = (cmd, a, input) =>
      cmd === 'iptables-save'
        ? Promise.resolve({ ok: false, stdout: '', stderr: 'spawn iptables-save ENOENT' })
        : ipt.exec(cmd, a, input);
    await expect(runIptablesCommand(parsed(['install', ...dual]), exec)).rejects.toMatchObject({
      code: 'ERR_ZTUNNEL_CONFIG',
      message:
        'iptables-save -t nat failed: spawn iptables-save ENOENT; nothing was changed (the IPv4 (iptables) rules are ' +
        'read first, to put them back if a later family fails; run as root, with iptables-save next to iptables)',
    });
    expect(ipt.calls).toEqual([]);
  });

  it('rollbackInput restores the number of hooks and only our chains', () => {
    const set = captureRules({ podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24'] });
    const saved = [
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':AMBIENT_OUTPUT - [0:0]',
      ':KUBE-SERVICES - [0:0]',
      '-A PREROUTING -i eth0 -j AMBIENT_PREROUTING',
      '-A PREROUTING -j KUBE-SERVICES',
      '-A OUTPUT -j AMBIENT_OUTPUT',
      '-A OUTPUT -j AMBIENT_OUTPUT',
      '-A AMBIENT_OUTPUT -m comment --comment "kept as saved" -j RETURN',
      '-A KUBE-SERVICES -j RETURN',
      'COMMIT',
    ].join('\n');
    // Another program's rule that jumps to our chain with a match of its own is no hook of ours.
    const before = new Map([['nat', ownLines(set, 'nat', saved)]]);
    expect(before.get('nat')).toEqual([
      ':AMBIENT_OUTPUT - [0:0]',
      '-A OUTPUT -j AMBIENT_OUTPUT',
      '-A OUTPUT -j AMBIENT_OUTPUT',
      '-A AMBIENT_OUTPUT -m comment --comment "kept as saved" -j RETURN',
    ]);
    const now = new Map([
      [
        'nat',
        [
          ':AMBIENT_PREROUTING - [0:0]',
          ':AMBIENT_OUTPUT - [0:0]',
          '-A PREROUTING -j AMBIENT_PREROUTING',
          '-A OUTPUT -j AMBIENT_OUTPUT',
          '-A AMBIENT_OUTPUT -j RETURN',
        ],
      ],
    ]);
    expect(rollbackInput(set, before, now).split('\n')).toEqual([
      '*nat',
      ':AMBIENT_PREROUTING - [0:0]',
      ':AMBIENT_OUTPUT - [0:0]',
      '-D PREROUTING -j AMBIENT_PREROUTING',
      '-X AMBIENT_PREROUTING',
      '-I OUTPUT 1 -j AMBIENT_OUTPUT',
      '-A AMBIENT_OUTPUT -m comment --comment "kept as saved" -j RETURN',
      'COMMIT',
      '',
    ]);
  });
});

describe('ztunnel iptables exit status: 2 for bad arguments, 1 when an iptables command failed', () => {
  const output = () => {
    const text = { stdout: '', stderr: '' };
    const io = {
      stdout: { write: (t: string) => (text.stdout += t) },
      stderr: { write: (t: string) => (text.stderr += t) },
    };
    return { text, io };
  };
  const good = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24'];

  it('exits 2 for bad arguments without running anything', async () => {
    const ipt = fakeIptables();
    const { text, io } = output();
    expect(await iptablesMain(['install', ...good, '--hbone-port', '0'], io, ipt.exec)).toBe(2);
    expect(text.stderr).toMatch(/^ztunnel iptables: invalid arguments:\n {2}- --hbone-port: "0" is not a port number/);
    expect(text.stdout).toBe('');
    expect(ipt.calls).toEqual([]);
  });

  it('exits 1 when iptables fails: install, a dual-stack install rolled back, remove', async () => {
    const refused = fakeIptables([], /to-ports 15001/);
    const { text, io } = output();
    expect(await iptablesMain(['install', ...good], io, refused.exec)).toBe(1);
    expect(text.stderr).toMatch(/^iptables-restore --noflush failed: .*15001/);

    const v6refused = fakeIptables([], /fd00:/);
    const dual = output();
    expect(await iptablesMain(['install', ...good, '--pod-cidr', 'fd00::/64'], dual.io, v6refused.exec)).toBe(1);
    expect(dual.text.stderr).toMatch(/^IPv6 \(ip6tables\) install failed: .*\nIPv4 \(iptables\) was rolled back/);

    const denied = fakeIptables([], undefined, ['iptables']);
    expect(await iptablesMain(['remove', ...good], output().io, denied.exec)).toBe(1);
  });

  it('exits 0 when done, and for --help', async () => {
    const ipt = fakeIptables();
    const { text, io } = output();
    expect(await iptablesMain(['install', ...good], io, ipt.exec)).toBe(0);
    expect(text).toEqual({ stdout: 'ztunnel iptables install: done\n', stderr: '' });
    const help = output();
    expect(await iptablesMain(['install', '--help'], help.io, ipt.exec)).toBe(0);
    expect(help.text.stdout).toContain('Exit status: 0 done, 2 bad arguments (nothing changed), 1 an iptables');
  });
});
