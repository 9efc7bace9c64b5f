/** Child processes of the demo (the control plane and the ztunnels), with their JSON log lines. */
import { type ChildProcess, spawn } from 'node:child_process';

export interface LogLine {
  msg: string;
  scope?: string;
  level?: string;
  [k: string]: unknown;
}

/** How many log lines a Proc keeps: enough for the walk-through's waits, bounded for a demo kept running. */
export const PROC_LOG_LINES = 2000;

export class Proc {
  /** The last PROC_LOG_LINES log lines, oldest first. */
  readonly logs: LogLine[] = [];
  private readonly waiters = new Set<{
    match: (l: LogLine) => boolean;
    resolve: (l: LogLine) => void;
    reject: (e: Error) => void;
  }>();
  readonly exited: Promise<number | null>;
  private tail = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (c: string) => {
        buf += c;
        for (let i = buf.indexOf('\n'); i !== -1; i = buf.indexOf('\n')) {
          this.line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        for (const w of this.waiters) w.reject(new Error(`${name} exited with code ${code}:\n${this.tail}`));
        resolve(code);
      }),
    );
  }

  /** First log line (past or future) matching. */
  waitFor(match: (l: LogLine) => boolean): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => this.waiters.add({ match, resolve, reject }));
  }

  /** First matching line logged from now on. */
  next(match: (l: LogLine) => boolean): Promise<LogLine> {
    return new Promise((resolve, reject) => this.waiters.add({ match, resolve, reject }));
  }

  /** SIGTERM (a graceful drain), then SIGKILL if the process is still there after `graceMs`. */
  async stop(graceMs = 5000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      t.unref();
      this.exited.finally(() => clearTimeout(t));
    }
    return this.exited;
  }

  private line(text: string): void {
    this.tail = `${this.tail}${text}\n`.slice(-4000);
    let l: LogLine;
    try {
      l = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    this.logs.push(l);
    if (this.logs.length > PROC_LOG_LINES) this.logs.splice(0, this.logs.length - PROC_LOG_LINES);
    for (const w of [...this.waiters]) {
      if (w.match(l)) {
        this.waiters.delete(w);
        w.resolve(l);
      }
    }
  }
}

/** The command line that runs a TypeScript file of this repository with Node + tsx against the sources. */
export function tsCommand(script: string, args: string[] = []): string[] {
  return [process.execPath, '--conditions=@ambient-ts/source', '--import', 'tsx', script, ...args];
}

/**
 * Run a TypeScript bin of this repository with Node + tsx against the sources; `wrapper` goes in front of the
 * command line (the netns demo uses `ip netns exec <namespace>`).
 */
export function runTs(name: string, script: string, args: string[], cwd: string, wrapper: string[] = []): Proc {
  const [cmd, ...rest] = [...wrapper, ...tsCommand(script, args)] as [string, ...string[]];
  const child = spawn(cmd, rest, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Proc(name, child);
}
