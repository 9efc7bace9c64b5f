/**
 * HBONE against hyper-h2: a pure-Python HTTP/2 stack (its own framing, flow control and HPACK) that shares no
 * code with ours or with nghttp2, which Node's http2 module and curl are both built on. The peer runs as a
 * real process over mutual TLS 1.3 (test/support/hyper_h2_peer.py). Its default SETTINGS (64 KiB windows,
 * 16 KiB frames) are far below ours, so every transfer here also checks that our side obeys a small window.
 * Needs Debian's python3-h2 (CI installs it); skipped with the reason otherwise.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { HboneRequest } from '../src/index.js';
import {
  CLIENT_ID,
  cleanup,
  echoServer,
  forwardToAuthority,
  hboneClient,
  hboneServer,
  onCleanup,
  pki,
  readAll,
  tcpServer,
  via,
} from './support/harness.js';

const PEER = join(__dirname, 'support', 'hyper_h2_peer.py');

/** A Python that can import hyper-h2: Debian's (where apt puts python3-h2) before whatever is first on PATH. */
const python = ['/usr/bin/python3', 'python3'].find((py) => {
  try {
    execFileSync(py, ['-c', 'import h2.connection'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
const withPeer = python ? describe : describe.skip;
if (!python) console.warn('interop-hyper-h2: skipped, hyper-h2 is not installed (apt-get install python3-h2)');

afterEach(cleanup);

interface PeerFiles {
  cert: string;
  key: string;
  ca: string;
}

/** Writes one side's certificate, key (0600) and the root for the Python peer. */
async function peerFiles(side: 'client' | 'server'): Promise<PeerFiles> {
  const { ca, client, server } = await pki();
  const creds = side === 'client' ? client : server;
  const dir = mkdtempSync(join(tmpdir(), 'hyper-h2-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const files = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), ca: join(dir, 'ca.pem') };
  writeFileSync(files.cert, String(creds.certChain));
  writeFileSync(files.key, String(creds.key), { mode: 0o600 });
  writeFileSync(files.ca, ca.certPem);
  return files;
}

interface StreamResult {
  status: number | null;
  headers?: Array<[string, string]>;
  received: number;
  sent_sha256: string;
  received_sha256: string;
  reset?: number;
  goaway?: number;
  closed?: boolean;
}

interface ClientStream {
  authority: string;
  method?: string;
  headers?: Array<[string, string]>;
  send?: number;
  end_first?: boolean;
}

/** Runs the Python client to completion and returns its report; rejects with its stderr if it fails. */
async function runPythonClient(
  port: number,
  streams: ClientStream[],
  ping = false,
): Promise<{ alpn: string; streams: StreamResult[]; ping: string | null }> {
  const files = await peerFiles('client');
  const proc = spawn(python!, [PEER, 'client', JSON.stringify({ host: '127.0.0.1', port, ...files, streams, ping })]);
  onCleanup(() => proc.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => {
    stdout += c;
  });
  proc.stderr.on('data', (c: Buffer) => {
    stderr += c;
  });
  const [code] = (await once(proc, 'close')) as [number];
  if (code !== 0) throw new Error(`hyper-h2 client exited ${code}: ${stderr}`);
  return JSON.parse(stdout);
}

interface PythonServer {
  port: number;
  proc: ChildProcess;
  /** Events the server reported so far (connections, requests, GOAWAYs). */
  events: Array<{ event: string; headers?: Array<[string, string]> }>;
  /** Resolves once `n` events named `name` were reported. */
  waitFor(name: string, n: number): Promise<void>;
}

async function startPythonServer(options: { goaway_after?: number } = {}): Promise<PythonServer> {
  const files = await peerFiles('server');
  const proc = spawn(python!, [PEER, 'server', JSON.stringify({ ...files, ...options })]);
  onCleanup(() => {
    proc.kill('SIGKILL');
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c;
  });
  const events: PythonServer['events'] = [];
  const waiters: Array<() => void> = [];
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`hyper-h2 server exited ${code}: ${stderr}`)));
    lines.on('line', (line) => {
      const msg = JSON.parse(line);
      if (msg.port) resolve(msg.port);
      else events.push(msg);
      for (const w of waiters.splice(0)) w();
    });
  });
  const count = (name: string): number => events.filter((e) => e.event === name).length;
  return {
    port,
    proc,
    events,
    async waitFor(name, n) {
      while (count(name) < n) await new Promise<void>((r) => waiters.push(r));
    },
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

withPeer('hyper-h2 client -> HboneServer', () => {
  it('tunnels 3 MiB each way through a 64 KiB-window peer, with telemetry headers parsed', async () => {
    const echo = await echoServer();
    const seen: HboneRequest[] = [];
    const { port } = await hboneServer({
      handler: (req) => {
        seen.push(req);
        return forwardToAuthority(req);
      },
    });
    const size = 3 * 1024 * 1024 + 11;
    const report = await runPythonClient(port, [
      {
        authority: `127.0.0.1:${echo.port}`,
        send: size,
        headers: [
          ['baggage', 'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep'],
          ['forwarded', 'for="10.0.0.7:41234"'],
          ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
        ],
      },
    ]);
    expect(report.alpn).toBe('h2');
    const [stream] = report.streams;
    expect(stream!.status).toBe(200);
    expect(stream!.received).toBe(size);
    expect(stream!.received_sha256).toBe(stream!.sent_sha256);
    const req = seen[0]!;
    expect(String(req.peerIdentity)).toBe(CLIENT_ID);
    expect(req.authority).toMatchObject({ host: '127.0.0.1', port: echo.port });
    expect(req.baggage).toMatchObject({ clusterName: 'Kubernetes', namespaceName: 'default', workloadName: 'sleep' });
    expect(req.forwarded?.for).toEqual({ address: '10.0.0.7', port: 41234 });
    expect(req.traceparent).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', flags: 1 });
  });

  it('keeps the server-to-client direction open after the client half-closes first', async () => {
    const greeting = Buffer.alloc(300_000, 'g');
    const { port: upstreamPort } = await tcpServer((s) => {
      // Answer only once the client's FIN arrived: proves its END_STREAM became a TCP half-close, not a reset.
      s.on('data', () => {});
      s.on('end', () => s.end(greeting));
    });
    const { port } = await hboneServer();
    const report = await runPythonClient(port, [{ authority: `127.0.0.1:${upstreamPort}`, end_first: true }]);
    const [stream] = report.streams;
    expect(stream!.status).toBe(200);
    expect(stream!.received).toBe(greeting.length);
    expect(stream!.received_sha256).toBe(sha256(greeting));
  });

  it('answers a non-CONNECT request and a malformed authority with 400, a handler rejection with its status', async () => {
    const { port } = await hboneServer({ handler: (req) => req.reject(401, 'not allowed here') });
    const report = await runPythonClient(
      port,
      [
        { authority: '127.0.0.1:8080', method: 'GET' },
        { authority: 'not an authority' },
        { authority: '127.0.0.1:8080' },
      ],
      true,
    );
    expect(report.streams.map((s) => s.status)).toEqual([400, 400, 401]);
    // The connection survives all three refusals: its PING is still answered.
    expect(report.ping).toBe('interop!');
  });
});

withPeer('HboneClient -> hyper-h2 server', () => {
  it('tunnels 3 MiB each way, sending within the 64 KiB windows and 16 KiB frames hyper-h2 allows', async () => {
    const peer = await startPythonServer();
    const client = await hboneClient();
    const tunnel = await client.connect({ address: '10.1.2.3', port: 8080 }, via(peer.port));
    const data = Buffer.alloc(3 * 1024 * 1024 + 5);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >>> 12)) & 0xff;
    const echoed = readAll(tunnel);
    tunnel.end(data);
    const got = await echoed;
    expect(got.length).toBe(data.length);
    expect(sha256(got)).toBe(sha256(data));
    await peer.waitFor('request', 1);
    const headers = Object.fromEntries(peer.events.find((e) => e.event === 'request')!.headers!);
    expect(headers[':method']).toBe('CONNECT');
    expect(headers[':authority']).toBe('10.1.2.3:8080');
  });

  it('decodes hyper-h2 response headers across streams (Huffman, dynamic table) on one pooled connection', async () => {
    const peer = await startPythonServer();
    const client = await hboneClient();
    for (let i = 0; i < 3; i++) {
      const tunnel = await client.connect({ address: '10.1.2.3', port: 9000 + i }, via(peer.port));
      const echoed = readAll(tunnel);
      tunnel.end(`round ${i}`);
      expect((await echoed).toString()).toBe(`round ${i}`);
    }
    expect(peer.events.filter((e) => e.event === 'connection')).toHaveLength(1);
    expect(
      peer.events.filter((e) => e.event === 'request').map((e) => Object.fromEntries(e.headers!)[':authority']),
    ).toEqual(['10.1.2.3:9000', '10.1.2.3:9001', '10.1.2.3:9002']);
  });

  it('opens a new connection for the next tunnel once hyper-h2 sent GOAWAY', async () => {
    const peer = await startPythonServer({ goaway_after: 1 });
    const client = await hboneClient();
    const first = await client.connect({ address: '10.1.2.3', port: 80 }, via(peer.port));
    const firstReply = readAll(first);
    first.end('one');
    expect((await firstReply).toString()).toBe('one');
    await peer.waitFor('sent-goaway', 1);
    const second = await client.connect({ address: '10.1.2.3', port: 81 }, via(peer.port));
    const secondReply = readAll(second);
    second.end('two');
    expect((await secondReply).toString()).toBe('two');
    expect(peer.events.filter((e) => e.event === 'connection')).toHaveLength(2);
  });
});
