/**
 * The iptables (nat) rules that send a node's pod traffic through ztunnel, in host-capture mode: ztunnel runs
 * in the node's network namespace and every pod's veth ends there. Rules live in chains of their own, jumped
 * to once from PREROUTING and OUTPUT, so install is idempotent (flush and refill) and remove takes away
 * exactly what install added. Loops are impossible by construction and by exclusion:
 * - Pod traffic is captured in PREROUTING, which ztunnel's own sockets never traverse (they leave via OUTPUT).
 * - In OUTPUT only HBONE to a local pod (15008) is redirected (ztunnel reaching a pod on its own node),
 *   which ztunnel's inbound listener answers; anything ztunnel's uid owns or carries its mark returns first
 *   otherwise.
 * IPv4 and IPv6 are separate tables (iptables, ip6tables) with the same chains and rules; each family's rule set
 * names only that family's pod CIDRs.
 */
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { ZtunnelError } from './errors.js';

export interface CaptureRulesOptions {
  /** Interface name pattern of pod veths on this node (iptables syntax, `+` is a wildcard), e.g. `p+`. */
  podInterfaces: string;
  /** CIDRs of the pods on this node: inbound to them is redirected to ztunnel. */
  localPodCidrs: string[];
  ports?: { outbound?: number; hbone?: number; plaintext?: number; dns?: number };
  /** Redirect pods' DNS (port 53, UDP and TCP) to the DNS proxy (default true). */
  captureDns?: boolean;
  /** Exclude sockets owned by this uid (ztunnel's) from OUTPUT capture. */
  ztunnelUid?: number;
  /** Exclude packets carrying this fwmark (default 0x539, Istio's value). */
  mark?: number;
  /** Chain name prefix (default AMBIENT). */
  chainPrefix?: string;
}

export interface RuleSet {
  /** Address family: 4 for iptables, 6 for ip6tables. */
  family: 4 | 6;
  /** Chains owned by these rules, as `<table> <chain>`. */
  chains: { table: 'nat'; chain: string; hook: 'PREROUTING' | 'OUTPUT' }[];
  /** iptables argument lists appending rules to those chains, in order. */
  rules: string[][];
}

/** The address family of a CIDR (or plain address): 4, 6, or 0 when it is neither. */
export function cidrFamily(cidr: string): 0 | 4 | 6 {
  return isIP(cidr.split('/')[0] ?? '') as 0 | 4 | 6;
}

/** The rules for one address family (IPv4 by default); pod CIDRs of the other family are left out. */
export function captureRules(o: CaptureRulesOptions, family: 4 | 6 = 4): RuleSet {
  const p = { outbound: 15001, hbone: 15008, plaintext: 15006, dns: 15053, ...o.ports };
  const prefix = o.chainPrefix ?? 'AMBIENT';
  const pre = `${prefix}_PREROUTING`;
  const out = `${prefix}_OUTPUT`;
  const mark = `0x${(o.mark ?? 0x539).toString(16)}`;
  if (!/^[A-Za-z0-9_.-]+\+?$/.test(o.podInterfaces)) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `iptables: pod interface pattern ${o.podInterfaces} is not valid (e.g. veth+)`,
    );
  }
  const cidrs = o.localPodCidrs.filter((c) => cidrFamily(c) === family);
  const rules: string[][] = [];
  const r = (chain: string, ...args: string[]) => rules.push(['-t', 'nat', '-A', chain, ...args]);
  r(pre, '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  if (o.captureDns ?? true) {
    for (const proto of ['udp', 'tcp']) {
      r(pre, '-i', o.podInterfaces, '-p', proto, '--dport', '53', '-j', 'REDIRECT', '--to-ports', String(p.dns));
    }
  }
  for (const cidr of cidrs) {
    r(pre, '-p', 'tcp', '-d', cidr, '--dport', String(p.hbone), '-j', 'REDIRECT', '--to-ports', String(p.hbone));
  }
  r(pre, '-i', o.podInterfaces, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(p.outbound));
  for (const cidr of cidrs) {
    r(pre, '-p', 'tcp', '-d', cidr, '-j', 'REDIRECT', '--to-ports', String(p.plaintext));
  }
  for (const cidr of cidrs) {
    r(out, '-p', 'tcp', '-d', cidr, '--dport', String(p.hbone), '-j', 'REDIRECT', '--to-ports', String(p.hbone));
  }
  if (o.ztunnelUid !== undefined) r(out, '-m', 'owner', '--uid-owner', String(o.ztunnelUid), '-j', 'RETURN');
  r(out, '-m', 'mark', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  return {
    family,
    chains: [
      { table: 'nat', chain: pre, hook: 'PREROUTING' },
      { table: 'nat', chain: out, hook: 'OUTPUT' },
    ],
    rules,
  };
}

export type Runner = (cmd: string, args: string[]) => Promise<{ ok: boolean; stderr: string }>;

const run: Runner = (cmd, args) =>
  new Promise((resolve) =>
    // A missing binary has no stderr: its error (spawn ENOENT) says what is wrong.
    execFile(cmd, args, (err, _out, stderr) => resolve({ ok: !err, stderr: String(stderr) || (err?.message ?? '') })),
  );

/** The binary for a family's rules. */
export function defaultIptables(family: 4 | 6): string {
  return family === 6 ? 'ip6tables' : 'iptables';
}

/** Creates (or flushes) the chains, hooks them once, and appends the rules. Safe to run again. */
export async function installCaptureRules(
  set: RuleSet,
  iptables = defaultIptables(set.family),
  exec: Runner = run,
): Promise<void> {
  for (const c of set.chains) {
    const created = await exec(iptables, ['-t', c.table, '-N', c.chain]);
    if (!created.ok) await must(exec, iptables, ['-t', c.table, '-F', c.chain]);
    const hooked = await exec(iptables, ['-t', c.table, '-C', c.hook, '-j', c.chain]);
    if (!hooked.ok) await must(exec, iptables, ['-t', c.table, '-A', c.hook, '-j', c.chain]);
  }
  for (const rule of set.rules) await must(exec, iptables, rule);
}

/**
 * Unhooks, flushes and deletes the chains; succeeds when they are already gone, and when the binary or its nat
 * table is missing (then nothing can be installed either).
 */
export async function removeCaptureRules(
  set: RuleSet,
  iptables = defaultIptables(set.family),
  exec: Runner = run,
): Promise<void> {
  for (const c of set.chains) {
    while ((await exec(iptables, ['-t', c.table, '-D', c.hook, '-j', c.chain])).ok) {
      // a hook added twice by hand is removed too
    }
    await exec(iptables, ['-t', c.table, '-F', c.chain]);
    await exec(iptables, ['-t', c.table, '-X', c.chain]);
  }
}

async function must(exec: Runner, cmd: string, args: string[]): Promise<void> {
  const r = await exec(cmd, args);
  if (!r.ok) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `${cmd} ${args.join(' ')} failed: ${r.stderr.trim()} (run as root, with the ${cmd} nat table available)`,
    );
  }
}
