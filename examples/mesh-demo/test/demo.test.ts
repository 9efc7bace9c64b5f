import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '../../..');

jest.setTimeout(120_000);

describe('mesh-demo', () => {
  it('runs the whole walk-through with real processes and exits 0', async () => {
    const child = spawn(process.execPath, [resolve(ROOT, 'scripts/demo.mjs')], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
