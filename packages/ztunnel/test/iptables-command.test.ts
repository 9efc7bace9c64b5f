import { parseIptablesCommand, runIptablesCommand } from '../src/iptables-command.js';
import type { Runner } from '../src/iptables-rules.js';

/**
 * Stand-ins for iptables and ip6tables that keep their nat chains in memory (one table per binary), so
 * idempotence is checked on real state. A binary listed in `missing` fails as a missing command does.
 */
function fakeIptables(missing: string[] = []): { exec: Runner; dump: (cmd?: string) => string[]; calls: string[] } {
  const tables = new Map<string, Map<string, string[]>>();
  const calls: string[] = [];
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
  const exec: Runner = async (cmd, args) => {
    calls.push(`${cmd} ${args.join(' ')}`);
    if (missing.includes(cmd)) return { ok: false, stderr: `spawn ${cmd} ENOENT` };
    const chains = table(cmd);
    const [, , op, chain, ...rule] = args;
    const list = chain ? chains.get(chain) : undefined;
    const text = rule.join(' ');
    const fail = { ok: false, stderr: 'No chain/target/match by that name.' };
    switch (op) {
      case '-N':
        if (list) return { ok: false, stderr: 'Chain already exists.' };
        chains.set(chain as string, []);
        return { ok: true, stderr: '' };
      case '-F':
        if (!list) return fail;
        list.length = 0;
        return { ok: true, stderr: '' };
      case '-X':
        return chains.delete(chain as string) ? { ok: true, stderr: '' } : fail;
      case '-A':
        if (!list) return fail;
        list.push(text);
        return { ok: true, stderr: '' };
      case '-C':
        return list?.includes(text) ? { ok: true, stderr: '' } : fail;
      case '-D': {
        const i = list?.indexOf(text) ?? -1;
        if (i < 0) return fail;
        list?.splice(i, 1);
        return { ok: true, stderr: '' };
      }
      default:
        return fail;
    }
  };
  const dump = (cmd = 'iptables') =>
    [...table(cmd)].flatMap(([c, rules]) => [`-N ${c}`, ...rules.map((r) => `-A ${c} ${r}`)]);
  return { exec, dump, calls };
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
      message: expect.stringMatching(/^ip6tables -t nat -F AMBIENT_PREROUTING failed: spawn ip6tables ENOENT/),
    });
    await runIptablesCommand(parsed(['remove', ...dual]), ipt.exec);
    expect(ipt.dump('iptables')).toEqual(['-N PREROUTING', '-N OUTPUT']);
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
