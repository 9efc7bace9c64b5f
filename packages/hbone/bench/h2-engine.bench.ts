/**
 * HTTP/2 engine microbenchmark: one CONNECT stream over TLS 1.3 on loopback, client in this process, server
 * in a child process (one core each). Compares our engine (src/h2) with node:http2 (default windows, and
 * 4 MiB stream / 16 MiB connection windows) and with plain TLS (no HTTP/2 at all, the ceiling).
 *
 *  - bulk: the client uploads BULK_MIB through one stream to a sink that acknowledges the end.
 *  - ping-pong: 100-byte messages echoed back, one in flight at a time.
 *
 * Run: node scripts/bench.mjs h2-engine
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createH2Connection, type H2Stream } from '../src/h2/index.js';

const BULK_MIB = Number(process.env.H2_BENCH_MIB ?? 512);
const PINGS = Number(process.env.H2_BENCH_PINGS ?? 4000);
const RUNS = 3;
const CHUNK = 64 * 1024;
const WINDOWS = { stream: 4 << 20, connection: 16 << 20, frame: 1 << 20 };

type Impl = 'tls' | 'ours' | 'node-default' | 'node-tuned';
const IMPLS: Impl[] = ['tls', 'ours', 'node-default', 'node-tuned'];
interface Creds {
  key: string;
  cert: string;
}

// ------------------------------------------------------------------------------------------- server side

/** Sink mode: read everything, then write one byte and end. Echo mode: pipe back. */
function serve(stream: Duplex, mode: string): void {
  stream.on('error', () => undefined);
  if (mode === 'echo') {
    stream.pipe(stream);
    return;
  }
  stream.on('data', () => undefined);
  stream.on('end', () => stream.end('k'));
}

async function runServer(impl: Impl, creds: Creds): Promise<void> {
  // Every implementation gets TCP_NODELAY on both ends (HBONE sets it): no Nagle delay on small writes.
  const tlsOptions = { ...creds, ALPNProtocols: ['h2'], minVersion: 'TLSv1.3' as const, noDelay: true };
  let port: number;
  if (impl === 'tls') {
    const server = tls.createServer(tlsOptions, (socket) => {
      socket.once('readable', () => {
        const mode = (socket.read(1) as Buffer).toString() === 'e' ? 'echo' : 'sink';
        serve(socket, mode);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  } else if (impl === 'ours') {
    const server = tls.createServer(tlsOptions, (socket) => {
      const conn = createH2Connection({
        role: 'server',
        socket,
        settings: { initialWindowSize: WINDOWS.stream, maxFrameSize: WINDOWS.frame },
        connectionWindowSize: WINDOWS.connection,
      });
      conn.on('error', () => undefined);
      conn.on('stream', (stream: H2Stream, headers) => {
        stream.respond(200);
        serve(stream, new Map(headers).get(':authority')!.split(':')[0]!);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  } else {
    const tuned = impl === 'node-tuned';
    const server = http2.createSecureServer({
      ...tlsOptions,
      settings: tuned ? { initialWindowSize: WINDOWS.stream, maxFrameSize: WINDOWS.frame } : {},
    });
    if (tuned) server.on('session', (s) => s.setLocalWindowSize(WINDOWS.connection));
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      serve(stream, String(headers[':authority']).split(':')[0]!);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  }
  process.on('message', () => {
    const u = process.cpuUsage();
    process.send!({ cpu: u.user + u.system });
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ port });
}

/** CPU time (µs) used so far by this process and by the server child. */
async function cpuNow(child: import('node:child_process').ChildProcess): Promise<number> {
  const reply = once(child, 'message');
  child.send('cpu');
  const [{ cpu }] = (await reply) as [{ cpu: number }];
  const u = process.cpuUsage();
  return cpu + u.user + u.system;
}

// ------------------------------------------------------------------------------------------- client side

interface Client {
  open(mode: 'sink' | 'echo'): Promise<Duplex>;
  close(): void;
}

async function connectClient(impl: Impl, port: number, ca: string): Promise<Client> {
  const tlsOptions = { host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2'] };
  if (impl === 'tls') {
    const sockets: tls.TLSSocket[] = [];
    return {
      async open(mode) {
        const socket = tls.connect(tlsOptions);
        sockets.push(socket);
        await once(socket, 'secureConnect');
        socket.setNoDelay(true);
        socket.write(mode === 'echo' ? 'e' : 's');
        return socket;
      },
      close: () => {
        for (const s of sockets) s.destroy();
      },
    };
  }
  if (impl === 'ours') {
    const socket = tls.connect(tlsOptions);
    await once(socket, 'secureConnect');
    socket.setNoDelay(true);
    const conn = createH2Connection({
      role: 'client',
      socket,
      settings: { initialWindowSize: WINDOWS.stream, maxFrameSize: WINDOWS.frame },
      connectionWindowSize: WINDOWS.connection,
    });
    conn.on('error', () => undefined);
    await conn.ready();
    return {
      async open(mode) {
        const stream = conn.request([
          [':method', 'CONNECT'],
          [':authority', `${mode}:9`],
        ]);
        await once(stream, 'response');
        return stream;
      },
      close: () => conn.destroy(),
    };
  }
  const tuned = impl === 'node-tuned';
  const session = http2.connect(`https://localhost:${port}`, {
    ...tlsOptions,
    settings: tuned ? { initialWindowSize: WINDOWS.stream, maxFrameSize: WINDOWS.frame } : {},
  });
  await once(session, 'connect');
  if (tuned) session.setLocalWindowSize(WINDOWS.connection);
  return {
    async open(mode) {
      const req = session.request({ ':method': 'CONNECT', ':authority': `${mode}:9` });
      await once(req, 'response');
      return req;
    },
    close: () => session.destroy(),
  };
}

async function bulk(client: Client, cpu: () => Promise<number>): Promise<{ gbps: number; cpuMsPerGiB: number }> {
  const stream = await client.open('sink');
  const chunk = Buffer.alloc(CHUNK, 0x61);
  const total = BULK_MIB * 1024 * 1024;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', () => undefined);
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const cpu0 = await cpu();
  const start = performance.now();
  for (let sent = 0; sent < total; sent += CHUNK) {
    if (!stream.write(chunk)) await once(stream, 'drain');
  }
  stream.end();
  await done;
  const seconds = (performance.now() - start) / 1000;
  const cpuMs = ((await cpu()) - cpu0) / 1000;
  return { gbps: (total * 8) / seconds / 1e9, cpuMsPerGiB: cpuMs / (total / 2 ** 30) };
}

async function pingPong(client: Client): Promise<number> {
  const stream = await client.open('echo');
  const msg = Buffer.alloc(100, 0x62);
  let pending = 0;
  let wake: (() => void) | null = null;
  stream.on('data', (d: Buffer) => {
    pending -= d.length;
    if (pending <= 0 && wake) {
      const w = wake;
      wake = null;
      w();
    }
  });
  const roundTrip = () =>
    new Promise<void>((resolve) => {
      wake = resolve;
      pending = msg.length;
      stream.write(msg);
    });
  for (let i = 0; i < 200; i++) await roundTrip(); // warm-up
  const start = performance.now();
  for (let i = 0; i < PINGS; i++) await roundTrip();
  const us = ((performance.now() - start) * 1000) / PINGS;
  stream.destroy();
  return us;
}

async function selfSigned(): Promise<Creds> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(globalThis.crypto);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=localhost',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }])],
  });
  const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return {
    key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
    cert: cert.toString('pem'),
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const creds = await selfSigned();
  const results = new Map<Impl, { gbps: number; us: number; cpu: number }>();
  for (const impl of IMPLS) {
    const child = fork(fileURLToPath(import.meta.url), ['server', impl], {
      execArgv: process.execArgv,
      env: { ...process.env, H2_BENCH_CREDS: JSON.stringify(creds) },
    });
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const client = await connectClient(impl, port, creds.cert);
    const gbps: number[] = [];
    const cpu: number[] = [];
    const us: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const b = await bulk(client, () => cpuNow(child));
      gbps.push(b.gbps);
      cpu.push(b.cpuMsPerGiB);
      us.push(await pingPong(client));
    }
    client.close();
    child.kill();
    results.set(impl, { gbps: median(gbps), us: median(us), cpu: median(cpu) });
    console.error(
      `${impl}: bulk ${gbps.map((g) => g.toFixed(2)).join('/')} Gbit/s, ${cpu.map((c) => c.toFixed(0)).join('/')} CPU ms/GiB, ping-pong ${us.map((u) => u.toFixed(1)).join('/')} µs`,
    );
  }
  const ours = results.get('ours')!;
  console.log(`\nOne CONNECT stream over TLS 1.3 on loopback, ${BULK_MIB} MiB bulk upload, ${PINGS} x 100-byte`);
  console.log(`round trips; median of ${RUNS} runs; server in a child process. Node ${process.version}.\n`);
  console.log(
    '| implementation | bulk Gbit/s | ours / this (bulk) | CPU ms per GiB (both ends) | ping-pong µs/round trip | this / ours (ping-pong) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|');
  const label: Record<Impl, string> = {
    tls: 'plain TLS socket (no HTTP/2, ceiling)',
    ours: 'ours (src/h2), 4 MiB/16 MiB windows, 1 MiB frames',
    'node-default': 'node:http2 CONNECT, default windows',
    'node-tuned': 'node:http2 CONNECT, 4 MiB/16 MiB windows, 1 MiB frames',
  };
  for (const impl of IMPLS) {
    const r = results.get(impl)!;
    console.log(
      `| ${label[impl]} | ${r.gbps.toFixed(2)} | ${(ours.gbps / r.gbps).toFixed(2)}x | ${r.cpu.toFixed(0)} | ${r.us.toFixed(1)} | ${(r.us / ours.us).toFixed(2)}x |`,
    );
  }
}

if (process.argv[2] === 'server') {
  await runServer(process.argv[3] as Impl, JSON.parse(process.env.H2_BENCH_CREDS!) as Creds);
} else {
  await main();
}
