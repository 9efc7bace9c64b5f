/**
 * A rule set's chains and hooks as they are in the kernel, read with `<iptables>-save`, and the one
 * `<iptables>-restore --noflush` transaction that puts them back. A dual-stack install snapshots the IPv4 rules
 * before changing anything and restores them when the IPv6 transaction fails, so a node is never left with one
 * family's new rules and the other's old ones. Only our chains and the hook rules that jump to them are read
 * and written: other software (kube-proxy, Docker) edits the same nat table at the same time, and restoring a
 * whole table would undo its changes.
 */
import { ZtunnelError } from './errors.js';
import {
  iptablesMessage,
  type RuleSet,
  type Runner,
  restoreCommand,
  runCommand,
  saveCommand,
} from './iptables-rules.js';

/**
 * Per table, the lines of `<iptables>-save -t <table>` about a rule set, in save order: its chains'
 * declarations (`:<chain> - [0:0]`), their rules (`-A <chain> ...`) and the hooks (`-A <hook> -j <chain>`).
 */
export type CaptureSnapshot = Map<string, string[]>;

type Chain = RuleSet['chains'][number];

const declares = (line: string, c: Chain) => line.startsWith(`:${c.chain} `);
const ruleOf = (line: string, c: Chain) => line.startsWith(`-A ${c.chain} `);
const hookRule = (c: Chain) => `-A ${c.hook} -j ${c.chain}`;

/** The lines of one table's `-save` output that belong to a rule set: nobody else's rules are kept. */
export function ownLines(set: RuleSet, table: string, saved: string): string[] {
  const chains = set.chains.filter((c) => c.table === table);
  return saved
    .split('\n')
    .filter((line) => chains.some((c) => declares(line, c) || ruleOf(line, c) || line === hookRule(c)));
}

/** Reads the rule set's chains and hooks; throws ERR_ZTUNNEL_CONFIG naming the save command when it fails. */
export async function snapshotCaptureRules(
  set: RuleSet,
  iptables: string,
  exec: Runner = runCommand,
): Promise<CaptureSnapshot> {
  const save = saveCommand(iptables);
  const snapshot: CaptureSnapshot = new Map();
  for (const table of new Set(set.chains.map((c) => c.table))) {
    const r = await exec(save, ['-t', table]);
    if (!r.ok) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_CONFIG',
        `${save} -t ${table} failed: ${iptablesMessage(r.stderr) || 'no error message'}`,
      );
    }
    snapshot.set(table, ownLines(set, table, r.stdout));
  }
  return snapshot;
}

/**
 * The `-restore --noflush` input that turns the chains and hooks from `now` back into `before`: each chain that
 * exists in either is declared (with --noflush that creates or flushes it), hooks are deleted or inserted until
 * as many jump to it as before, then a chain that existed gets its old rules back and one that did not is
 * deleted. Lines come verbatim from -save, which writes them as -restore reads them.
 */
export function rollbackInput(set: RuleSet, before: CaptureSnapshot, now: CaptureSnapshot): string {
  const lines: string[] = [];
  for (const table of new Set(set.chains.map((c) => c.table))) {
    const was = before.get(table) ?? [];
    const is = now.get(table) ?? [];
    const chains = set.chains.filter((c) => c.table === table);
    const existed = (c: Chain) => was.some((line) => declares(line, c));
    const exists = (c: Chain) => is.some((line) => declares(line, c));
    const hooks = (snapshot: string[], c: Chain) => snapshot.filter((line) => line === hookRule(c)).length;
    lines.push(`*${table}`);
    for (const c of chains) if (existed(c) || exists(c)) lines.push(`:${c.chain} - [0:0]`);
    for (const c of chains) {
      // -D takes the first match, which is the hook install inserted at the top.
      for (let n = hooks(is, c); n > hooks(was, c); n--) lines.push(`-D ${c.hook} -j ${c.chain}`);
      for (let n = hooks(is, c); n < hooks(was, c); n++) lines.push(`-I ${c.hook} 1 -j ${c.chain}`);
      if (existed(c)) lines.push(...was.filter((line) => ruleOf(line, c)));
      else if (exists(c)) lines.push(`-X ${c.chain}`);
    }
    lines.push('COMMIT');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Puts the rule set's chains and hooks back as `before` holds them, in one transaction (all of it or nothing);
 * throws ERR_ZTUNNEL_CONFIG naming the command that failed.
 */
export async function restoreCaptureRules(
  set: RuleSet,
  before: CaptureSnapshot,
  iptables: string,
  exec: Runner = runCommand,
): Promise<void> {
  // Read again rather than assumed: how many hooks are there now decides how many to delete.
  const now = await snapshotCaptureRules(set, iptables, exec);
  const restore = restoreCommand(iptables);
  const r = await exec(restore, ['-w', '--noflush'], rollbackInput(set, before, now));
  if (!r.ok) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `${restore} --noflush failed: ${iptablesMessage(r.stderr) || 'no error message'}`,
    );
  }
}
