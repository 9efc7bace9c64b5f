/**
 * `ztunnel iptables install|remove`: the node's capture rules (iptables-rules.ts) from the command line.
 * Both actions are idempotent. Install is safe to run on every ztunnel start; remove is for uninstalling ztunnel
 * from the node, not for every stop: the rules stay across a restart, so while ztunnel is down pod traffic is
 * redirected to a closed port and fails rather than bypassing the mesh (fail closed). IPv6 rules
 * (ip6tables) are installed when a pod CIDR is IPv6, IPv4 rules when one is IPv4: a family without pod
 * addresses has no pod traffic to capture, and a node without IPv6 need not have ip6tables' nat table. Remove
 * takes both families away whatever CIDRs it is given, so it always leaves nothing behind. A dual-stack install is
 * all or nothing: when the IPv6 transaction fails, the IPv4 rules this run installed are rolled back.
 */
import { ZtunnelError } from './errors.js';
import {
  captureRules,
  cidrFamily,
  INTERFACE_PATTERN,
  installCaptureRules,
  isCidr,
  type RuleSet,
  type Runner,
  removeCaptureRules,
  runCommand,
  saveCommand,
} from './iptables-rules.js';
import { type CaptureSnapshot, restoreCaptureRules, snapshotCaptureRules } from './iptables-snapshot.js';

export const IPTABLES_USAGE = `Usage: ztunnel iptables install|remove [options]

Installs (or removes) the nat rules that send this node's pod traffic through ztunnel: pods' TCP to the
outbound capture port, pods' DNS to the DNS proxy, HBONE and plaintext to local pods to the inbound ports.
Both are idempotent. Install on every ztunnel start; remove only to uninstall (the rules stay across a
restart, so pod traffic fails closed while ztunnel is down). Needs root and the nat table of iptables (and
of ip6tables for IPv6). Install applies each family's chains, rules and hooks in one transaction with
<iptables>-restore --noflush (e.g. iptables-restore): the chains are never empty while it runs, and when it
fails that family is left as it was.

IPv4 rules (iptables) are installed when a --pod-cidr is IPv4, IPv6 rules (ip6tables) when one is IPv6: give
both CIDRs on a dual-stack node. IPv4 goes first; its chains and hooks are read (<iptables>-save) beforehand,
and when IPv6 then fails they are put back as they were, so no family is left half-applied (if putting them
back fails too, the error says what is left). remove takes away the rules of both families.

Options:
  --pod-interfaces <pattern>   pod veth interface names, iptables syntax ('+' wildcard)  [required, e.g. veth+]
  --pod-cidr <cidr>            addresses of the pods on this node, IPv4 or IPv6 (repeatable)  [required]
  --ztunnel-uid <uid>          never capture sockets owned by this uid (ztunnel's)
  --no-dns                     do not redirect pods' DNS (port 53) to the DNS proxy
  --outbound-port <port>       outbound capture port   [default 15001]
  --hbone-port <port>          HBONE inbound port      [default 15008]
  --plaintext-port <port>      plaintext inbound port  [default 15006]
  --dns-port <port>            DNS proxy port          [default 15053]
  --mark <mark>                never capture packets carrying this fwmark bit(s), decimal or 0x hex  [default 0x539]
  --chain-prefix <name>        names the chains <name>_PREROUTING and <name>_OUTPUT  [default AMBIENT]
  --iptables <command>         iptables binary, with <command>-restore and -save next to it   [default iptables]
  --ip6tables <command>        ip6tables binary, with <command>-restore and -save next to it  [default ip6tables]

Exit status: 0 done, 2 bad arguments (nothing changed), 1 an iptables command failed (the message names it
and says what was rolled back).
`;

/** Exit statuses of `ztunnel iptables`, the same as scripts/ztunnel-iptables.sh's. */
export const IPTABLES_EXIT = { done: 0, failed: 1, usage: 2 } as const;

/** Where `ztunnel iptables` writes: `process` in the bin. */
export interface IptablesOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/**
 * `ztunnel iptables ...` as the bin runs it. Which step failed decides the exit status, not the message: the
 * arguments are all checked before any command runs, so a refusal there is a usage error (2) and changed
 * nothing, while a failure after it is a failed iptables command (1).
 */
export async function iptablesMain(argv: readonly string[], io: IptablesOutput, exec?: Runner): Promise<number> {
  let cmd: IptablesCommand | { help: true };
  try {
    cmd = parseIptablesCommand(argv);
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n`);
    return IPTABLES_EXIT.usage;
  }
  if ('help' in cmd) {
    io.stdout.write(IPTABLES_USAGE);
    return IPTABLES_EXIT.done;
  }
  try {
    await runIptablesCommand(cmd, exec);
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n`);
    return IPTABLES_EXIT.failed;
  }
  io.stdout.write(`ztunnel iptables ${cmd.action}: done\n`);
  return IPTABLES_EXIT.done;
}

/** One address family's binary and rules. */
export interface FamilyRules {
  family: 4 | 6;
  command: string;
  rules: RuleSet;
  /** Whether install sets this family up (a --pod-cidr of it was given); remove takes every family away. */
  install: boolean;
}

export interface IptablesCommand {
  action: 'install' | 'remove';
  families: FamilyRules[];
}

/** Parses `install|remove [options]`; throws ERR_ZTUNNEL_CONFIG listing every problem. */
export function parseIptablesCommand(argv: readonly string[]): IptablesCommand | { help: true } {
  const problems: string[] = [];
  const [action, ...rest] = argv;
  if (action === '-h' || action === '--help' || rest.includes('--help') || rest.includes('-h')) return { help: true };
  if (action !== 'install' && action !== 'remove')
    problems.push(`expected 'install' or 'remove' after 'iptables', got ${JSON.stringify(action ?? '')}`);
  let podInterfaces: string | undefined;
  // Whether the option was given at all: an invalid value is reported as such, not also as missing.
  let podInterfacesGiven = false;
  let podCidrGiven = false;
  const cidrs: string[] = [];
  let uid: number | undefined;
  let dns = true;
  let mark: number | undefined;
  let chainPrefix: string | undefined;
  const binaries: Record<'iptables' | 'ip6tables', string> = { iptables: 'iptables', ip6tables: 'ip6tables' };
  const ports: Record<string, number> = {};
  const port = (flag: string, text: string | undefined): number | undefined => {
    const n = Number(text);
    if (text === undefined || !/^\d+$/.test(text) || n < 1 || n > 65535) {
      problems.push(`--${flag}: ${JSON.stringify(text ?? '')} is not a port number (1-65535)`);
      return undefined;
    }
    return n;
  };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') ? arg.slice(2, eq === -1 ? undefined : eq) : '';
    if (name === 'no-dns') {
      dns = false;
      continue;
    }
    if (name === 'pod-interfaces') podInterfacesGiven = true;
    if (name === 'pod-cidr') podCidrGiven = true;
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (name !== '' && !(rest[i + 1] ?? '--').startsWith('--')) value = rest[++i];
    else if (name !== '') {
      // No value starts with --: "--pod-interfaces --no-dns" lacks the pattern, it does not mean "-i --no-dns".
      problems.push(`--${name} needs a value (see ztunnel iptables --help)`);
      continue;
    }
    switch (name) {
      case 'pod-interfaces':
        if (value === undefined || !INTERFACE_PATTERN.test(value))
          problems.push(
            `--pod-interfaces: ${JSON.stringify(value ?? '')} is not an interface name pattern (up to 15 letters, digits, _ . -, not starting with -, optionally ending in +; e.g. veth+)`,
          );
        else podInterfaces = value;
        break;
      case 'pod-cidr':
        if (value === undefined || !isCidr(value))
          problems.push(
            `--pod-cidr: ${JSON.stringify(value ?? '')} is not an address or CIDR (e.g. 10.248.1.0/24 or fd00:248:1::/64)`,
          );
        else cidrs.push(value);
        break;
      case 'ztunnel-uid':
        if (value === undefined || !/^\d+$/.test(value))
          problems.push(`--ztunnel-uid: ${JSON.stringify(value ?? '')} is not a uid`);
        else uid = Number(value);
        break;
      case 'mark':
        // 0 would match every packet, so every packet would be excluded from capture.
        if (
          value === undefined ||
          !/^(0x[0-9a-f]+|\d+)$/i.test(value) ||
          !(Number(value) >= 1 && Number(value) <= 0xffffffff)
        )
          problems.push(`--mark: ${JSON.stringify(value ?? '')} is not a fwmark (1-0xffffffff, decimal or 0x hex)`);
        else mark = Number(value);
        break;
      case 'chain-prefix':
        // iptables chain names are at most 28 characters; the longest suffix is _PREROUTING (11).
        if (value === undefined || !/^[A-Za-z][A-Za-z0-9_-]{0,16}$/.test(value))
          problems.push(
            `--chain-prefix: ${JSON.stringify(value ?? '')} is not a chain name prefix (a letter, then up to 16 letters, digits, _ or -)`,
          );
        else chainPrefix = value;
        break;
      case 'iptables':
      case 'ip6tables':
        if (!value) problems.push(`--${name} needs a command name`);
        else binaries[name] = value;
        break;
      case 'outbound-port':
      case 'hbone-port':
      case 'plaintext-port':
      case 'dns-port': {
        const n = port(name, value);
        if (n !== undefined) ports[name.slice(0, -'-port'.length)] = n;
        break;
      }
      default:
        problems.push(`unknown option ${JSON.stringify(arg)} (see ztunnel iptables --help)`);
    }
  }
  if (!podInterfacesGiven) problems.push('--pod-interfaces is required (the pod veth names on this node, e.g. veth+)');
  if (!podCidrGiven) problems.push('--pod-cidr is required (the addresses of the pods on this node)');
  const families: FamilyRules[] = [];
  if (problems.length === 0) {
    const options = {
      podInterfaces: podInterfaces as string,
      localPodCidrs: cidrs,
      ports,
      captureDns: dns,
      ...(uid === undefined ? {} : { ztunnelUid: uid }),
      ...(mark === undefined ? {} : { mark }),
      ...(chainPrefix === undefined ? {} : { chainPrefix }),
    };
    try {
      for (const family of [4, 6] as const) {
        families.push({
          family,
          command: family === 4 ? binaries.iptables : binaries.ip6tables,
          rules: captureRules(options, family),
          install: cidrs.some((c) => cidrFamily(c) === family),
        });
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `ztunnel iptables: invalid arguments:\n  - ${problems.join('\n  - ')}\nRun ztunnel iptables --help.`,
    );
  }
  return { action: action as 'install' | 'remove', families };
}

/**
 * Install: the families with pod CIDRs, IPv4 first, all or none (see installFamilies). Remove: every family,
 * even when one fails (a missing chain, table or binary is no failure); then throws ERR_ZTUNNEL_CONFIG naming
 * each family's failure.
 */
export async function runIptablesCommand(cmd: IptablesCommand, exec: Runner = runCommand): Promise<void> {
  if (cmd.action === 'install') {
    await installFamilies(
      cmd.families.filter((f) => f.install),
      exec,
    );
    return;
  }
  const failures: string[] = [];
  for (const f of cmd.families) {
    try {
      await removeCaptureRules(f.rules, f.command, exec);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) throw new ZtunnelError('ERR_ZTUNNEL_CONFIG', failures.join('\n'));
}

const label = (f: FamilyRules) => `IPv${f.family} (${f.command})`;

/**
 * Installs each family in its own transaction, in order; when one fails, those installed before it in this run
 * are put back from snapshots taken before anything changed. The last family needs no snapshot (nothing after
 * it can fail), so a single-family node never runs -save.
 */
async function installFamilies(families: FamilyRules[], exec: Runner): Promise<void> {
  const snapshots: CaptureSnapshot[] = [];
  for (const f of families.slice(0, -1)) {
    try {
      snapshots.push(await snapshotCaptureRules(f.rules, f.command, exec));
    } catch (err) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_CONFIG',
        `${(err as Error).message}; nothing was changed (the ${label(f)} rules are read first, to put them back if ` +
          `a later family fails; run as root, with ${saveCommand(f.command)} next to ${f.command})`,
        { cause: err },
      );
    }
  }
  for (const [i, f] of families.entries()) {
    try {
      await installCaptureRules(f.rules, f.command, exec);
    } catch (err) {
      if (i === 0) throw err;
      throw await rollBack(err as Error, f, families.slice(0, i), snapshots, exec);
    }
  }
}

/**
 * Puts back each family installed earlier in this run. The error names the family that failed and its error,
 * then per earlier family that it was rolled back, or, when that failed too, what is left for an operator.
 */
async function rollBack(
  cause: Error,
  failed: FamilyRules,
  installed: FamilyRules[],
  snapshots: CaptureSnapshot[],
  exec: Runner,
): Promise<ZtunnelError> {
  const reports: string[] = [];
  for (const [i, f] of installed.entries()) {
    const before = snapshots[i] as CaptureSnapshot;
    try {
      await restoreCaptureRules(f.rules, before, f.command, exec);
      reports.push(`${label(f)} was rolled back: its rules are as they were before this install.`);
    } catch (err) {
      reports.push(leftBehind(f, before, (err as Error).message));
    }
  }
  const message = `${label(failed)} install failed: ${cause.message}\n${reports.join('\n')}`;
  return new ZtunnelError('ERR_ZTUNNEL_CONFIG', message, { cause });
}

/** What a family whose rollback failed holds now (this run's rules), and what it held before, to fix by hand. */
function leftBehind(f: FamilyRules, before: CaptureSnapshot, error: string): string {
  const chains = f.rules.chains.map((c) => c.chain).join(' and ');
  const hooks = f.rules.chains.map((c) => c.hook).join(' and ');
  const was = [...before.values()].flat();
  const previously =
    was.length === 0
      ? `Before this install ${f.command} had none of these chains (remove takes them away, in both families).`
      : `Before this install ${saveCommand(f.command)} showed these lines of them (install again with the ` +
        `options that made them to get them back):\n    ${was.join('\n    ')}`;
  return (
    `Rolling back ${label(f)} failed too (${error}), so the node is half-applied: ${f.command} still has this ` +
    `install's rules in ${chains}, hooked from ${hooks}. ${previously}`
  );
}
