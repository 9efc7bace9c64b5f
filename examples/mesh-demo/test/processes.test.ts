/** Proc: the demo's child processes keep a bounded tail of their log lines, so `--keep` does not grow forever. */
import { spawn } from 'node:child_process';
import { PROC_LOG_LINES, Proc } from '../src/processes.js';

describe('Proc', () => {
  it('keeps only the last PROC_LOG_LINES log lines and still finds new ones', async () => {
    const total = PROC_LOG_LINES + 500;
    // Prints `total` lines, then one more once told to on stdin, so next() is registered before it comes.
    const script = `for (let i = 0; i < ${total}; i++) console.log(JSON.stringify({ msg: 'line', i }));
      process.stdin.once('data', () => { console.log(JSON.stringify({ msg: 'last' })); process.exit(0); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    const p = new Proc('printer', child);
    const lastOfBatch = await p.waitFor((l) => l.i === total - 1);
    expect(lastOfBatch.i).toBe(total - 1);
    expect(p.logs).toHaveLength(PROC_LOG_LINES);
    expect(p.logs[0]?.i).toBe(total - PROC_LOG_LINES);
    const last = p.next((l) => l.msg === 'last');
    child.stdin?.end('go\n');
    expect((await last).msg).toBe('last');
    expect(await p.exited).toBe(0);
    expect(p.logs).toHaveLength(PROC_LOG_LINES);
  });
});
