/** Shared by the root-only tests (network namespaces, iptables): what they need, and how they run ztunnel. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const REPO_ROOT = join(__dirname, '..', '..', '..', '..');

/** argv that runs the `ztunnel` bin from source. */
export const ZTUNNEL_CLI = [
  process.execPath,
  '--conditions=@ambient-ts/source',
  '--import',
  'tsx',
  join(REPO_ROOT, 'packages', 'ztunnel', 'src', 'cli.ts'),
];

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why a root-only test cannot run here (not Linux, not root, a command missing), or undefined when it can. */
export function rootTestUnavailable(commands: string[], debianPackages: string): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  const missing = commands.find((cmd) => !hasCommand(cmd));
  return missing ? `needs ${missing} (Debian: ${debianPackages})` : undefined;
}
