import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import type { Server } from 'node:net';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why network-namespace tests cannot run here, or undefined when they can (root, ip, iptables, netns works). */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  for (const cmd of ['ip', 'iptables']) if (!has(cmd)) return `needs ${cmd} (Debian: iproute2 / iptables)`;
  const probe = `aod-probe-${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'ignore' });
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    return 'cannot create a network namespace here (container without CAP_SYS_ADMIN?)';
  }
  return undefined;
}

/** A throwaway network namespace with an interface (d0) for the test addresses; destroy() removes it all. */
export class TestNetns {
  readonly name: string;
  private readonly children: ChildProcess[] = [];

  constructor(tag: string) {
    this.name = `aod-${tag}-${process.pid}`;
    execFileSync('ip', ['netns', 'add', this.name]);
    try {
      // A veth pair with both ends inside gives the test addresses an interface and a route (no dummy module needed).
      this.exec('ip', 'link', 'set', 'lo', 'up');
      this.exec('ip', 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
      this.exec('ip', 'link', 'set', 'd0', 'up');
      this.exec('ip', 'link', 'set', 'd1', 'up');
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  exec(...argv: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...argv], { encoding: 'utf8' });
  }

  tryExec(...argv: string[]): boolean {
    try {
      execFileSync('ip', ['netns', 'exec', this.name, ...argv], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** A listener bound inside the namespace, owned by this process (handed over by a helper child). */
  listen(host: string, port: number): Promise<Server> {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.name,
        process.execPath,
        `${__dirname}/fixtures/listen-and-hand-over.cjs`,
        host,
        String(port),
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    this.children.push(child);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`listener helper exited with ${code}`)));
      child.once('message', (_msg, handle) => resolve(handle as Server));
    });
  }

  /** Runs a plain Node TCP client inside the namespace: connects, sends `payload`, waits for the peer to close. */
  connect(host: string, port: number, payload: string): Promise<void> {
    const script = `const s=require('node:net').connect(${port},${JSON.stringify(host)});s.on('connect',()=>s.end(${JSON.stringify(payload)}));s.resume();s.on('error',(e)=>{console.error(e.message);process.exit(1)});`;
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', script], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.children.push(child);
    const done = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`client exited with ${code}`))));
    });
    // A test that failed before awaiting the client must not turn its later exit into an unhandled rejection.
    done.catch(() => {});
    return done;
  }

  destroy(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill();
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
