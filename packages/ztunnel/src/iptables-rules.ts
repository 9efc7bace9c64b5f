/**
 * The iptables (nat) rules that send a node's pod traffic through ztunnel, in host-capture mode: ztunnel runs
 * in the node's network namespace and every pod's veth ends there. Rules live in chains of their own, jumped
 * to once from PREROUTING and OUTPUT, so install is idempotent (flush and refill) and remove takes away
 * exactly what install added. Install applies a family's chains, rules and missing hooks in one
 * `iptables-restore --noflush` transaction: flushing and refilling rule by rule would leave a window with empty
 * chains (pod traffic passing ztunnel in plaintext) and, when one rule fails, a half-captured node.
 * Loops are impossible by construction and by exclusion:
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

/**
 * Runs a command, writing `input` (when given) to its stdin; resolves `ok: false` with its stderr (or, when it
 * could not be started, the reason) rather than rejecting.
 */
export type Runner = (cmd: string, args: string[], input?: string) => Promise<{ ok: boolean; stderr: string }>;

const run: Runner = (cmd, args, input) =>
  new Promise((resolve) => {
    // A missing binary has no stderr: its error (spawn ENOENT) says what is wrong.
    const child = execFile(cmd, args, (err, _out, stderr) =>
      resolve({ ok: !err, stderr: String(stderr) || (err?.message ?? '') }),
    );
    // A command that exits (or never starts) before reading its input fails on its own; EPIPE adds nothing.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });

/** The binary for a family's rules. */
export function defaultIptables(family: 4 | 6): string {
  return family === 6 ? 'ip6tables' : 'iptables';
}

/**
 * The restore command that belongs to an iptables command: the same path and variant with `-restore` appended
 * (`iptables` → `iptables-restore`, `/usr/sbin/iptables-legacy` → `/usr/sbin/iptables-legacy-restore`), so
 * rules go to the same backend (legacy or nft) that `-C` and remove talk to.
 */
export function restoreCommand(iptables: string): string {
  return `${iptables}-restore`;
}

// What iptables-restore reads as one word: anything else (a space, a quote, a newline) could change or add rules.
const SAFE_WORD = /^[A-Za-z0-9_.:/+-]+$/;

/**
 * The `iptables-restore --noflush` input that installs a rule set: per table, each chain declared (with
 * --noflush a declaration creates the chain, or flushes it when it exists), the hooks not in `hooked`, the
 * rules in order, COMMIT. Throws ERR_ZTUNNEL_CONFIG for a word iptables-restore would not read as one word.
 */
export function restoreInput(set: RuleSet, hooked: ReadonlySet<string> = new Set()): string {
  const lines: string[] = [];
  const tables = [...new Set([...set.chains.map((c) => c.table), ...set.rules.map((r) => r[1] ?? '')])];
  for (const table of tables) {
    const chains = set.chains.filter((c) => c.table === table);
    const rules = set.rules.filter((r) => r[1] === table).map((r) => r.slice(2));
    lines.push(`*${table}`);
    for (const c of chains) lines.push(`:${words([c.chain])} - [0:0]`);
    for (const c of chains) if (!hooked.has(c.chain)) lines.push(words(['-A', c.hook, '-j', c.chain]));
    for (const rule of rules) lines.push(words(rule));
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

function words(list: string[]): string {
  const bad = list.find((w) => !SAFE_WORD.test(w));
  if (bad !== undefined) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `iptables: ${JSON.stringify(bad)} in "${list.join(' ')}" is not one iptables word (use letters, digits and _ . : / + - only)`,
    );
  }
  return list.join(' ');
}

/**
 * Creates (or flushes) the chains, hooks them once, and fills them, as one iptables-restore transaction: the
 * chains are never seen empty, and when any of it fails nothing changes. Safe to run again.
 */
export async function installCaptureRules(
  set: RuleSet,
  iptables = defaultIptables(set.family),
  exec: Runner = run,
): Promise<void> {
  // A word that is not one iptables word stops install before any command runs.
  restoreInput(set);
  // Checked before the transaction: a hook is added only when absent, so a re-install never adds a second one.
  const hooked = new Set<string>();
  for (const c of set.chains) {
    if ((await exec(iptables, ['-t', c.table, '-C', c.hook, '-j', c.chain])).ok) hooked.add(c.chain);
  }
  const input = restoreInput(set, hooked);
  const restore = restoreCommand(iptables);
  const r = await exec(restore, ['--noflush'], input);
  if (!r.ok) {
    // iptables-restore's "Try `... -h'" line is no help here.
    const stderr = r.stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('Try `'))
      .join(' ');
    const at = /line:? (\d+)/i.exec(stderr);
    const line = at ? input.split('\n')[Number(at[1]) - 1] : undefined;
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `${restore} --noflush failed: ${stderr}${line === undefined ? '' : ` (line ${at?.[1]}: ${line})`}; ` +
        `${iptables}'s rules were left as they were (run as root, with ${iptables}, ${restore} and the nat table available)`,
    );
  }
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
