/**
 * What `--netns` needs from the machine, checked before anything is created, so a user without it learns
 * exactly what is missing instead of seeing a half-built network fail.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { originalDstSupport } from '@ambient-ts/original-dst';

/** Commands the netns demo runs, with the Debian package that provides each. */
export const NETNS_COMMANDS: ReadonlyArray<readonly [command: string, debianPackage: string]> = [
  ['bash', 'bash'],
  ['ip', 'iproute2'],
  ['iptables', 'iptables'],
  // `ztunnel iptables install` applies its rules as one iptables-restore transaction.
  ['iptables-restore', 'iptables'],
  ['curl', 'curl'],
  ['tcpdump', 'tcpdump'],
];

/** How to run the demo as root without losing node and npx to sudo's own PATH. */
export const SUDO_COMMAND = 'sudo env "PATH=$PATH" npx -y pnpm@10.34.8 demo --netns';

/** The facts the check depends on; tests pass their own. */
export interface PreflightProbe {
  platform: NodeJS.Platform;
  /** Effective user id; undefined where the platform has none. */
  uid: number | undefined;
  hasCommand(command: string): boolean;
  originalDst(): { available: boolean; reason?: string };
}

export function systemProbe(env: NodeJS.ProcessEnv = process.env): PreflightProbe {
  return {
    platform: process.platform,
    uid: process.geteuid?.(),
    hasCommand: (command) => findOnPath(command, env.PATH ?? '') !== undefined,
    originalDst: () => originalDstSupport(),
  };
}

/** One line per missing thing, in the order a user would fix them; empty when everything is there. */
export function netnsPreflight(probe: PreflightProbe = systemProbe()): string[] {
  if (probe.platform !== 'linux') {
    return [`Linux: network namespaces and iptables exist only on Linux (this is ${probe.platform})`];
  }
  const missing: string[] = [];
  if (probe.uid !== 0) {
    missing.push(
      `root: creating network namespaces and iptables rules needs root (this is uid ${probe.uid ?? '?'}); run it with sudo, keeping your PATH (sudo may reset it and lose node and npx): ${SUDO_COMMAND}`,
    );
  }
  for (const [command, pkg] of NETNS_COMMANDS) {
    if (!probe.hasCommand(command)) missing.push(`${command}: not found on PATH (Debian package ${pkg})`);
  }
  const addon = probe.originalDst();
  if (!addon.available) {
    missing.push(`the @ambient-ts/original-dst native addon (SO_ORIGINAL_DST): ${addon.reason ?? 'unavailable'}`);
  }
  return missing;
}

/** The message printed when something is missing. */
export function preflightReport(missing: readonly string[]): string {
  return [
    'mesh-demo --netns cannot run here; missing:',
    ...missing.map((m) => `  - ${m}`),
    'The default demo (`pnpm demo`, without --netns) needs none of these.',
  ].join('\n');
}

function findOnPath(command: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
