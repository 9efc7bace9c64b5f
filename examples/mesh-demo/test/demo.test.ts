import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');
const DEMO_MAIN = resolve(ROOT, 'examples/mesh-demo/src/main.ts');

jest.setTimeout(120_000);

/** Demos a test started: one that failed before its demo exited must not leave the mesh running. */
const demos = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of demos) {
    // SIGTERM is the demo's own graceful stop (children drained, directory removed), passed on by demo.mjs.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
  demos.clear();
});

describe('mesh-demo', () => {
  it('runs the whole walk-through with real processes and exits 0', async () => {
    const child = spawn(process.execPath, [resolve(ROOT, 'scripts/demo.mjs')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demos.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    if (code !== 0) throw new Error(`demo exited ${code}:\n${out}`);
    expect(out).toMatch(/got HTTP\/1\.1 200 OK: \{"service":"echo"/);
    expect(out).toContain('inbound  spiffe://cluster.local/ns/demo/sa/client → spiffe://cluster.local/ns/demo/sa/echo');
    expect(out).toContain('refused: SOCKS5 reply 2');
    expect(out).toContain('denied by policy: DENY policy demo/deny-client');
    expect(out).toMatch(/istio_tcp_connections_opened_total\{reporter="destination"/);
    expect(out).toMatch(/renewed spiffe:\/\/cluster.local\/ns\/demo\/sa\/echo: serial \w+… → \w+…/);
    expect(out).toContain('the open connection never stopped');
    expect(out).not.toMatch(/PRIVATE KEY/);
  });
});

/** Command lines of every process that mentions `text` (the demo's working directory is in its children's). */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(text)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Starts the demo, resolves with it and its working directory once its ztunnels are being started. */
async function demoUntilZtunnels(): Promise<{ child: ChildProcessWithoutNullStreams; dir: string; out: () => string }> {
  const child = spawn(process.execPath, ['--conditions=@ambient-ts/source', '--import', 'tsx', DEMO_MAIN], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  demos.add(child);
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  const dir = await new Promise<string>((resolveDir, reject) => {
    let dirSeen = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      dirSeen ||= /working directory (\S+)\)/.exec(out)?.[1] ?? '';
      if (dirSeen && out.includes('Two ztunnels')) resolveDir(dirSeen);
    });
    child.once('exit', (code) => reject(new Error(`demo exited ${code} early:\n${out}`)));
  });
  return { child, dir, out: () => out };
}

const linuxProc = existsSync('/proc/self/cmdline');

describe('mesh-demo stops cleanly', () => {
  (linuxProc ? it : it.skip)(
    'SIGTERM during the walk-through stops every child and removes the directory (skipped without /proc)',
    async () => {
      const { child, dir, out } = await demoUntilZtunnels();
      expect(processesMentioning(dir).length).toBeGreaterThan(0);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code).toBe(143);
      expect(out()).toContain('SIGTERM: stopping the mesh');
      expect(out()).not.toContain('mesh-demo failed');
      expect(processesMentioning(dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    },
  );

  (linuxProc ? it : it.skip)(
    'a reader that goes away (`pnpm demo | head`) stops every child (skipped without /proc)',
    async () => {
      const { child, dir } = await demoUntilZtunnels();
      // Like `head` exiting: the read end of the demo's stdout closes, its next write gets EPIPE.
      child.stdout.destroy();
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code).toBe(1);
      expect(processesMentioning(dir)).toEqual([]);
      expect(existsSync(dir)).toBe(false);
    },
  );
});
