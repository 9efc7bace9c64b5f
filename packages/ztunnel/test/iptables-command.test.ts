import { parseIptablesCommand, runIptablesCommand } from '../src/iptables-command.js';
import type { Runner } from '../src/iptables-rules.js';

/** A stand-in iptables that keeps nat chains in memory, so idempotence is checked on real state. */
function fakeIptables(): { exec: Runner; dump: () => string[] } {
  const chains = new Map<string, string[]>([
    ['PREROUTING', []],
    ['OUTPUT', []],
  ]);
  const exec: Runner = async (_cmd, args) => {
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
  return { exec, dump: () => [...chains].flatMap(([c, rules]) => [`-N ${c}`, ...rules.map((r) => `-A ${c} ${r}`)]) };
}

describe('ztunnel iptables install|remove', () => {
  const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--ztunnel-uid', '1337'];

  it('installs idempotently and removes exactly what it added', async () => {
    const ipt = fakeIptables();
    const before = ipt.dump();
    const install = parseIptablesCommand(['install', ...args]);
    if ('help' in install) throw new Error('unexpected help');
    await runIptablesCommand(install, ipt.exec);
    const once = ipt.dump();
    expect(once).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
    expect(once).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001');
    expect(once).toContain('-A AMBIENT_OUTPUT -m owner --uid-owner 1337 -j RETURN');
    await runIptablesCommand(install, ipt.exec);
    expect(ipt.dump()).toEqual(once);
    const remove = parseIptablesCommand(['remove', ...args]);
    if ('help' in remove) throw new Error('unexpected help');
    await runIptablesCommand(remove, ipt.exec);
    expect(ipt.dump()).toEqual(before);
    await runIptablesCommand(remove, ipt.exec);
    expect(ipt.dump()).toEqual(before);
  });

  it('honours --no-dns and custom ports', () => {
    const cmd = parseIptablesCommand(['install', ...args, '--no-dns', '--outbound-port=16001']);
    if ('help' in cmd) throw new Error('unexpected help');
    const rules = cmd.rules.rules.map((r) => r.join(' '));
    expect(rules.some((r) => r.includes('--dport 53'))).toBe(false);
    expect(rules).toContain('-t nat -A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 16001');
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
