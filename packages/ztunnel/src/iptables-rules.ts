/**
 * The iptables (nat) rules that send a node's pod traffic through ztunnel, in host-capture mode: ztunnel runs
 * in the node's network namespace and every pod's veth ends there. Rules live in chains of their own, jumped
 * to once from the top of PREROUTING and OUTPUT (inserted first, so that nat chains other software put there,
 * such as kube-proxy's or Docker's, cannot end nat processing before ours), so install is idempotent (flush and
 * refill) and remove takes away exactly what install added. Every call passes -w: without waiting for the
 * xtables lock, a lock held by kube-proxy or Docker would make a `-C` check fail as if the hook were missing,
 * and a second hook would be added. Install applies a family's chains, rules and missing hooks in one
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

/** Whether a string is an address or CIDR: an IPv4 or IPv6 address, optionally `/bits` within its family. */
export function isCidr(cidr: string): boolean {
  const [ip, bits, extra] = cidr.split('/');
  const family = isIP(ip ?? '');
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
}

/**
 * An interface name pattern in iptables syntax: a Linux interface name (at most 15 characters, not starting
 * with '-', which iptables would read as an option), optionally ending in the '+' wildcard.
 */
export const INTERFACE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\+?$/;

/** The rules for one address family (IPv4 by default); pod CIDRs of the other family are left out. */
export function captureRules(o: CaptureRulesOptions, family: 4 | 6 = 4): RuleSet {
  const p = { outbound: 15001, hbone: 15008, plaintext: 15006, dns: 15053, ...o.ports };
  const prefix = o.chainPrefix ?? 'AMBIENT';
  const pre = `${prefix}_PREROUTING`;
  const out = `${prefix}_OUTPUT`;
  const markValue = o.mark ?? 0x539;
  // A mark of 0 matches every packet (`--mark 0/0`): every packet would RETURN and nothing be captured.
  if (!Number.isInteger(markValue) || markValue < 1 || markValue > 0xffffffff) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `iptables: mark ${markValue} is not a fwmark (an integer 1-0xffffffff; 0 would exclude every packet from capture)`,
    );
  }
  const mark = `0x${markValue.toString(16)}`;
  if (!INTERFACE_PATTERN.test(o.podInterfaces)) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `iptables: pod interface pattern ${JSON.stringify(o.podInterfaces)} is not valid (an interface name of up to 15 letters, digits, _ . -, not starting with -, optionally ending in +; e.g. veth+)`,
    );
  }
  // A CIDR that is no address would otherwise be dropped from both families: its pods silently not captured.
  const bad = o.localPodCidrs.filter((c) => !isCidr(c));
  if (bad.length > 0) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `iptables: pod CIDR(s) ${bad.map((c) => JSON.stringify(c)).join(', ')} are not an address or CIDR (e.g. 10.248.1.0/24 or fd00:248:1::/64)`,
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
 * could not be started, the reason) rather than rejecting. `stdout` is read by `<iptables>-save` callers.
 */
export type Runner = (
  cmd: string,
  args: string[],
  input?: string,
) => Promise<{ ok: boolean; stdout: string; stderr: string }>;

export const runCommand: Runner = (cmd, args, input) =>
  new Promise((resolve) => {
    // A missing binary has no stderr: its error (spawn ENOENT) says what is wrong.
    const child = execFile(cmd, args, (err, stdout, stderr) =>
      resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? '') }),
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

/** The save command that belongs to an iptables command, found the same way as {@link restoreCommand}. */
export function saveCommand(iptables: string): string {
  return `${iptables}-save`;
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
    // Inserted at the top: a nat chain before ours (kube-proxy's, Docker's) could end nat processing first.
    for (const c of chains) if (!hooked.has(c.chain)) lines.push(words(['-I', c.hook, '1', '-j', c.chain]));
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
  exec: Runner = runCommand,
): Promise<void> {
  // A word that is not one iptables word stops install before any command runs.
  restoreInput(set);
  // Checked before the transaction: a hook is added only when absent, so a re-install never adds a second one.
  const hooked = new Set<string>();
  for (const c of set.chains) {
    if ((await exec(iptables, ['-w', '-t', c.table, '-C', c.hook, '-j', c.chain])).ok) hooked.add(c.chain);
  }
  const input = restoreInput(set, hooked);
  const restore = restoreCommand(iptables);
  const r = await exec(restore, ['-w', '--noflush'], input);
  if (!r.ok) {
    const stderr = iptablesMessage(r.stderr);
    const at = /line:? (\d+)/i.exec(stderr);
    const line = at ? input.split('\n')[Number(at[1]) - 1] : undefined;
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `${restore} --noflush failed: ${stderr}${line === undefined ? '' : ` (line ${at?.[1]}: ${line})`}; ` +
        `${iptables}'s rules were left as they were (run as root, with ${iptables}, ${restore} and the nat table available)`,
    );
  }
}

/** iptables' stderr on one line, without its "Try `... -h'" hint, which is no help here. */
export function iptablesMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('Try `'))
    .join(' ');
}

// What iptables says when there is nothing to remove: the chain, the hook or the nat table is not there (nf_tables
// and legacy wording), or the binary itself is missing (then nothing can have been installed with it either).
const NOTHING_THERE =
  /does not exist|No chain\/target\/match by that name|Bad rule \(does a matching rule exist|Couldn't load target|ENOENT/i;

/**
 * Unhooks, flushes and deletes the chains; succeeds when they are already gone, and when the binary or its nat
 * table is missing (then nothing can be installed either). Any other failure (not root, a chain that another
 * rule still jumps to) throws ERR_ZTUNNEL_CONFIG naming the command and its error, at the first one.
 */
export async function removeCaptureRules(
  set: RuleSet,
  iptables = defaultIptables(set.family),
  exec: Runner = runCommand,
): Promise<void> {
  const step = async (args: string[]): Promise<boolean> => {
    const r = await exec(iptables, ['-w', '-t', ...args]);
    if (r.ok || NOTHING_THERE.test(r.stderr)) return r.ok;
    const stderr = iptablesMessage(r.stderr);
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `${iptables} -w -t ${args.join(' ')} failed: ${stderr || 'no error message'}; ${iptables}'s capture rules ` +
        'were not (all) removed (run as root, and remove any rule of your own that jumps to these chains)',
    );
  };
  for (const c of set.chains) {
    while (await step([c.table, '-D', c.hook, '-j', c.chain])) {
      // a hook added twice by hand is removed too
    }
    await step([c.table, '-F', c.chain]);
    await step([c.table, '-X', c.chain]);
  }
}
