/** Runs the example as a real process, as its `start` script does. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { join } from 'node:path';

const dir = join(__dirname, '..');
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function run(args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--conditions=@ambient-ts/source', '--import', 'tsx', 'src/main.ts', ...args],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return { child, output: () => out };
}

it('runs end to end and exits 0', async () => {
  const { child, output } = run([]);
  const [code] = await once(child, 'exit');
  expect(output()).toContain('got back "hello through HBONE"');
  expect(output()).toContain('exiting 0');
  expect(code).toBe(0);
}, 60_000);

it('--keep keeps serving; a TCP client gets its bytes back through the tunnel', async () => {
  const { child, output } = run(['--keep']);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /nc 127\.0\.0\.1 (\d+)/.exec(output());
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', () => reject(new Error(`example exited early:\n${output()}`)));
  });
  const reply = await new Promise<string>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let data = '';
    s.on('data', (c: Buffer) => {
      data += c.toString();
    });
    s.once('end', () => resolve(data));
    s.once('error', reject);
    s.end('like nc would\n');
  });
  expect(reply).toBe('like nc would\n');
  child.kill('SIGINT');
  const [code] = await once(child, 'exit');
  expect(code).toBe(0);
}, 60_000);
