/**
 * HBONE tunnel benchmark: app → local TCP listener → tunnel client → tunnel server → TCP sink, on loopback,
 * side by side with baselines measured in the same run (raw TCP, Node TLS 1.3 direct, a naive node:http2
 * CONNECT tunnel with default and with 4 MiB / 16 MiB windows, a stunnel4 mTLS pair, and a plain node:tls relay
 * pair without HTTP/2 — the floor for anything built on node:tls, which shows how much of a gap to stunnel is
 * Node's TLS rather than the tunnel).
 * Each tunnel end runs in its own process (as stunnel's two processes do); the app and the sink share
 * this one. Prints a markdown table of medians and the ratios against the bars of issue 2.
 *
 * Run: node scripts/bench.mjs tunnel   (or: pnpm bench tunnel)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';

const SELF = process.argv[1]!;
const role = process.argv[2];
const SERVER_ID = 'spiffe://cluster.local/ns/bench/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/bench/sa/client';
const RUNS = 5;
const THROUGHPUT_MS = 1500;
const PINGPONG_MS = 1000;
const CONNRATE_MS = 1200;
const CONN_CONCURRENCY = 16;
const IDLE_TUNNELS = 1000;
/** BENCH_CASES=tput,rtt,conn,idle (default: all) narrows a run while investigating one figure. */
const CASES = new Set((process.env.BENCH_CASES ?? 'tput,rtt,conn,idle').split(','));
/** Linux USER_HZ: /proc CPU times are in these ticks. */
const CLOCK_TICKS = 100;

interface Pems {
  root: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

// ---------------------------------------------------------------------------------------------- children

async function runChild(which: string, args: string[]): Promise<void> {
  const pems = JSON.parse(process.env.BENCH_PEMS!) as Pems;
  const send = (m: unknown): void => {
    process.send!(m);
  };
  const sinkPort = Number(args[1]);
  const serverCreds = { key: pems.serverKey, certChain: pems.serverCert, trustBundle: pems.root };
  const clientCreds = { key: pems.clientKey, certChain: pems.clientCert, trustBundle: pems.root };
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'rss') send({ rss: settledRss(), heap: process.memoryUsage().heapUsed });
  });

  if (which === 'tcp-proxy') {
    const { splice } = await import('../src/index.js');
    const listener = localListener(async (local) => {
      const up = net.connect({ host: '127.0.0.1', port: sinkPort, allowHalfOpen: true });
      up.setNoDelay(true);
      await once(up, 'connect');
      await splice(local, up);
    });
    send({ port: await listenPort(listener) });
    return;
  }

  if (which === 'tls-server') {
    // The floor for any tunnel built on node:tls: a TLS 1.3 relay with no HTTP/2 at all, piped both ways.
    const server = tls.createServer(tlsServerOptions(pems), (s) => {
      s.setNoDelay(true);
      const up = net.connect({ host: '127.0.0.1', port: sinkPort, allowHalfOpen: true });
      up.setNoDelay(true);
      pipeBothWays(s, up);
    });
    send({ port: await listenPort(server as unknown as net.Server) });
    return;
  }
  if (which === 'tls-client') {
    const tlsPort = Number(args[0]);
    const listener = localListener(async (local) => {
      const t = tls.connect(tlsClientOptions(pems, tlsPort));
      t.setNoDelay(true);
      await once(t, 'secureConnect');
      pipeBothWays(local, t);
    });
    send({ port: await listenPort(listener) });
    return;
  }
  if (which === 'hbone-server') {
    const { HboneServer } = await import('../src/index.js');
    const server = new HboneServer({
      credentials: serverCreds,
      handler: (req) =>
        new Promise<Duplex>((resolve, reject) => {
          const s = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
          s.setNoDelay(true);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        }),
    });
    const { port } = await server.listen(0, '127.0.0.1');
    send({ port });
    return;
  }
  if (which === 'hbone-client') {
    const { HboneClient, splice } = await import('../src/index.js');
    const hbonePort = Number(args[0]);
    const client = new HboneClient({ credentials: clientCreds });
    const listener = localListener((local) =>
      client
        .connect(
          { address: '127.0.0.1', port: sinkPort },
          { expectedIdentities: [SERVER_ID], server: { address: '127.0.0.1', port: hbonePort } },
        )
        .then((t) => splice(local, t)),
    );
    send({ port: await listenPort(listener) });
    return;
  }
  if (which === 'h2-server') {
    const tuned = args[0] === 'tuned';
    const server = http2.createSecureServer({
      key: pems.serverKey,
      cert: pems.serverCert,
      ca: pems.root,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      ...(tuned ? { settings: { initialWindowSize: 4 * 1024 * 1024, maxFrameSize: 1024 * 1024 } } : {}),
    });
    if (tuned) server.on('session', (s) => s.setLocalWindowSize(16 * 1024 * 1024));
    server.on('stream', (stream, headers) => {
      const [host, p] = String(headers[':authority']).split(':');
      const up = net.connect({ host: host!, port: Number(p), allowHalfOpen: true }, () => {
        stream.respond({ ':status': 200 });
        up.pipe(stream).on('error', () => {});
        stream.pipe(up);
      });
      up.setNoDelay(true);
      up.on('error', () => stream.destroy());
      stream.on('error', () => up.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    send({ port: (server.address() as net.AddressInfo).port });
    return;
  }
  if (which === 'h2-client') {
    const tuned = args[2] === 'tuned';
    const session = http2.connect(`https://127.0.0.1:${args[0]}`, {
      key: pems.clientKey,
      cert: pems.clientCert,
      ca: pems.root,
      checkServerIdentity: () => undefined,
      ...(tuned ? { settings: { initialWindowSize: 4 * 1024 * 1024, maxFrameSize: 1024 * 1024 } } : {}),
    });
    await once(session, 'remoteSettings');
    if (tuned) session.setLocalWindowSize(16 * 1024 * 1024);
    const listener = localListener(async (local) => {
      const req = session.request(
        { ':method': 'CONNECT', ':authority': `127.0.0.1:${sinkPort}` },
        { endStream: false },
      );
      await once(req, 'response');
      req.on('error', () => local.destroy());
      local.on('error', () => req.destroy());
      local.pipe(req);
      req.pipe(local);
    });
    send({ port: await listenPort(listener) });
    return;
  }
  throw new Error(`unknown role ${which}`);
}

/** Mutual TLS 1.3 with the bench PKI, for the plain node:tls paths. */
function tlsServerOptions(pems: Pems): tls.TlsOptions {
  return {
    key: pems.serverKey,
    cert: pems.serverCert,
    ca: pems.root,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  };
}

function tlsClientOptions(pems: Pems, port: number): tls.ConnectionOptions {
  return {
    host: '127.0.0.1',
    port,
    key: pems.clientKey,
    cert: pems.clientCert,
    ca: pems.root,
    checkServerIdentity: () => undefined,
  };
}

/** The naive relay: pipe() each way, an error on either side destroys the other. */
function pipeBothWays(a: Duplex, b: Duplex): void {
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
  a.pipe(b);
  b.pipe(a);
}

function localListener(onConn: (s: net.Socket) => Promise<unknown>): net.Server {
  return net.createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    onConn(s).catch(() => s.destroy());
  });
}

async function listenPort(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function settledRss(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 6; i++) gc?.();
  return process.memoryUsage().rss;
}

// ---------------------------------------------------------------------------------------------- parent

/** The sink: first byte selects the mode. 'D' discards (counting), 'E' echoes. */
let sinkBytes = 0;
function sinkHandler(s: Duplex): void {
  s.on('error', () => {});
  s.once('data', (first: Buffer) => {
    const mode = first[0];
    const rest = first.subarray(1);
    if (mode === 0x44) {
      sinkBytes += rest.length;
      s.on('data', (c: Buffer) => {
        sinkBytes += c.length;
      });
      s.on('end', () => s.end());
    } else {
      if (rest.length) s.write(rest);
      s.pipe(s);
    }
  });
}

interface Setup {
  name: string;
  /** The tunnel's own processes (both ends), whose CPU time per GiB is reported. */
  pids: number[];
  /** Connects the app to the setup's entry (plain TCP except for "tls"). */
  connect(): Duplex;
  stop(): Promise<void>;
  note?: string;
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'hbone-bench-'));
  const children: ChildProcess[] = [];
  const stops: Array<() => unknown> = [];
  // Even if this process dies, no proxy outlives it.
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  try {
    const pems = await makePems();
    const env = { ...process.env, BENCH_PEMS: JSON.stringify(pems) };
    const child = async (...args: string[]): Promise<{ proc: ChildProcess; port: number }> => {
      const proc = spawn(process.execPath, [...process.execArgv, SELF, ...args], {
        env,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(proc);
      const [msg] = (await once(proc, 'message')) as [{ port: number }];
      return { proc, port: msg.port };
    };

    const sink = net.createServer({ allowHalfOpen: true }, (s) => {
      s.setNoDelay(true);
      sinkHandler(s);
    });
    const sinkPort = await listenPort(sink);
    stops.push(() => sink.close());
    const tcpTo = (port: number) => (): Duplex => {
      const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      s.setNoDelay(true);
      return s;
    };

    const setups: Setup[] = [];
    setups.push({ name: 'raw TCP', pids: [], connect: tcpTo(sinkPort), stop: async () => {} });

    const tlsSink = tls.createServer(tlsServerOptions(pems), (s) => {
      s.setNoDelay(true);
      sinkHandler(s);
    });
    const tlsPort = await listenPort(tlsSink as unknown as net.Server);
    stops.push(() => tlsSink.close());
    setups.push({
      name: 'Node TLS 1.3 direct',
      pids: [],
      connect: () => {
        const s = tls.connect(tlsClientOptions(pems, tlsPort));
        s.setNoDelay(true);
        return s;
      },
      stop: async () => {},
    });

    for (const mode of ['default', 'tuned'] as const) {
      const srv = await child('h2-server', mode, String(sinkPort));
      const cli = await child('h2-client', String(srv.port), String(sinkPort), mode);
      setups.push({
        name: mode === 'default' ? 'node:http2 CONNECT (defaults)' : 'node:http2 CONNECT (4/16 MiB windows)',
        pids: [srv.proc.pid!, cli.proc.pid!],
        connect: tcpTo(cli.port),
        stop: async () => {},
      });
    }

    const stunnelBin = ['stunnel4', 'stunnel'].find((b) => {
      try {
        execFileSync('sh', ['-c', `command -v ${b}`], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
    let stunnelNote: string | undefined;
    if (stunnelBin) {
      const { port: entry, pids } = await startStunnelPair(stunnelBin, dir, pems, sinkPort, children);
      setups.push({ name: 'stunnel4 mTLS pair', pids, connect: tcpTo(entry), stop: async () => {} });
    } else {
      stunnelNote = 'stunnel4 not installed (apt-get install stunnel4): stunnel column and ratios skipped';
    }

    const ts = await child('tls-server', '0', String(sinkPort));
    const tc = await child('tls-client', String(ts.port), String(sinkPort));
    setups.push({
      name: 'Node TLS relay pair, no HTTP/2 (node:tls floor)',
      pids: [ts.proc.pid!, tc.proc.pid!],
      connect: tcpTo(tc.port),
      stop: async () => {},
    });

    const hs = await child('hbone-server', '0', String(sinkPort));
    const hc = await child('hbone-client', String(hs.port), String(sinkPort));
    setups.push({
      name: '**HBONE (ambient-ts)**',
      pids: [hs.proc.pid!, hc.proc.pid!],
      connect: tcpTo(hc.port),
      stop: async () => {},
    });

    // Warm every path once (JIT, pooled connections, session caches).
    for (const s of setups) {
      progress(`warming ${s.name}`);
      await pingPong(s, 200);
    }

    const results = new Map<string, { tput: number[]; cpu: number[]; rtt: number[]; conn: number[] }>();
    for (const s of setups) results.set(s.name, { tput: [], cpu: [], rtt: [], conn: [] });
    // Setups are interleaved within each case and run, so load from elsewhere on the machine hits them alike.
    for (let run = 0; run < RUNS; run++) {
      for (const s of CASES.has('tput') ? setups : []) {
        progress(`run ${run + 1}/${RUNS} ${s.name}: throughput`);
        const t = await throughput(s, THROUGHPUT_MS);
        results.get(s.name)!.tput.push(t.mibs);
        results.get(s.name)!.cpu.push(t.cpuPerGiB);
      }
      for (const s of CASES.has('rtt') ? setups : []) {
        progress(`run ${run + 1}/${RUNS} ${s.name}: round trips`);
        results.get(s.name)!.rtt.push(await pingPong(s, PINGPONG_MS));
      }
      for (const s of CASES.has('conn') ? setups : []) {
        progress(`run ${run + 1}/${RUNS} ${s.name}: new connections`);
        results.get(s.name)!.conn.push(await connRate(s, CONNRATE_MS, CONN_CONCURRENCY));
      }
    }

    const idle = await idleMemory(child, sinkPort);

    const med = (xs: number[]): number =>
      xs.length === 0 ? Number.NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(
      `Loopback, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, medians of ${RUNS} runs.\n`,
    );
    console.log(
      '| path | bulk throughput (MiB/s) | tunnel CPU ms per GiB (both ends) | 100 B round trips/s | new connections/s |',
    );
    console.log('|---|---:|---:|---:|---:|');
    for (const s of setups) {
      const r = results.get(s.name)!;
      const cpu = Number.isNaN(med(r.cpu)) ? '—' : fmt(med(r.cpu));
      console.log(`| ${s.name} | ${fmt(med(r.tput))} | ${cpu} | ${fmt(med(r.rtt))} | ${fmt(med(r.conn))} |`);
    }
    const mib = (n: number): string => (n / 1048576).toFixed(1);
    console.log(
      `\n${IDLE_TUNNELS.toLocaleString('en-US')} idle open connections, RSS (JS heap) added to each proxy process after gc:\n`,
    );
    console.log('| process | RSS MiB | heap MiB |');
    console.log('|---|---:|---:|');
    console.log(`| plain TCP proxy (Node, splice) | ${mib(idle.tcp.rss)} | ${mib(idle.tcp.heap)} |`);
    console.log(
      `| HBONE client end (local listener + HboneClient) | ${mib(idle.client.rss)} | ${mib(idle.client.heap)} |`,
    );
    console.log(
      `| HBONE server end (HboneServer + upstream sockets) | ${mib(idle.server.rss)} | ${mib(idle.server.heap)} |`,
    );
    console.log(
      `| HBONE both ends together | ${mib(idle.client.rss + idle.server.rss)} | ${mib(idle.client.heap + idle.server.heap)} |\n`,
    );
    const hb = results.get('**HBONE (ambient-ts)**')!;
    const h2t = results.get('node:http2 CONNECT (4/16 MiB windows)')!;
    const st = results.get('stunnel4 mTLS pair');
    console.log('| bar | measured | target | |');
    console.log('|---|---:|---:|---|');
    const bar = (name: string, v: number, target: number, higher = true): void => {
      const ok = higher ? v >= target : v < target;
      console.log(`| ${name} | ${v.toFixed(2)} | ${higher ? '≥' : '<'} ${target} | ${ok ? 'met' : '**missed**'} |`);
    };
    if (st) {
      bar('throughput vs stunnel', med(hb.tput) / med(st.tput), 0.9);
    }
    bar('throughput vs node:http2 tuned', med(hb.tput) / med(h2t.tput), 1.4);
    if (st) {
      bar('round trips vs stunnel', med(hb.rtt) / med(st.rtt), 0.65);
      bar('new connections vs stunnel', med(hb.conn) / med(st.conn), 2.5);
    }
    const floor = results.get('Node TLS relay pair, no HTTP/2 (node:tls floor)')!;
    if (st) {
      console.log(
        `| (reference, no bar) node:tls relay without HTTP/2 vs stunnel: throughput | ${(med(floor.tput) / med(st.tput)).toFixed(2)} | | |`,
      );
      console.log(
        `| (reference, no bar) HBONE vs that node:tls relay: throughput | ${(med(hb.tput) / med(floor.tput)).toFixed(2)} | | |`,
      );
    }
    bar(
      '1,000 idle tunnels, MiB RSS per proxy process (larger end)',
      Math.max(idle.client.rss, idle.server.rss) / 1048576,
      20,
      false,
    );
    if (stunnelNote) console.log(`\nNote: ${stunnelNote}`);
    console.log(`\n(total ${((Date.now() - started) / 1000).toFixed(0)} s)`);
    for (const s of setups) await s.stop();
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const stop of stops) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

/** Progress goes to stderr so the table on stdout stays clean. */
function progress(what: string): void {
  process.stderr.write(`  … ${what}\n`);
}

function fmt(n: number): string {
  if (Number.isNaN(n)) return '—';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

async function connected(s: Duplex): Promise<void> {
  if (s instanceof tls.TLSSocket) await once(s, 'secureConnect');
  else await once(s, 'connect');
}

/** MiB/s delivered to the sink by one connection writing as fast as backpressure allows, and the CPU
 * time the tunnel's own processes spent per GiB (steadier than wall-clock on a shared machine). */
async function throughput(setup: Setup, ms: number): Promise<{ mibs: number; cpuPerGiB: number }> {
  const s = setup.connect();
  s.on('error', () => {});
  await connected(s);
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  s.write('D');
  let stop = false;
  const pump = (): void => {
    while (!stop && s.write(chunk)) {}
  };
  s.on('drain', pump);
  pump();
  // Measure after a short ramp-up (windows opening, TCP slow start).
  await delay(300);
  const cpu0 = setup.pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
  const b0 = sinkBytes;
  const t0 = performance.now();
  await delay(ms);
  const bytes = sinkBytes - b0;
  const secs = (performance.now() - t0) / 1000;
  const cpu = setup.pids.reduce((sum, pid) => sum + cpuMs(pid), 0) - cpu0;
  stop = true;
  s.destroy();
  await delay(100);
  return { mibs: bytes / 1048576 / secs, cpuPerGiB: setup.pids.length ? cpu / (bytes / 1073741824) : Number.NaN };
}

/** Sequential 100-byte echoes through one connection, per second. */
async function pingPong(setup: Setup, ms: number): Promise<number> {
  const s = setup.connect();
  s.on('error', () => {});
  await connected(s);
  const msg = Buffer.alloc(100, 0x62);
  s.write('E');
  let count = 0;
  let got = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  await new Promise<void>((resolve) => {
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got < 100) return;
      got -= 100;
      count++;
      if (performance.now() >= deadline) resolve();
      else s.write(msg);
    });
    s.write(msg);
  });
  const secs = (performance.now() - t0) / 1000;
  s.destroy();
  return count / secs;
}

/** New app connections per second: connect, one byte echoed, close; `concurrency` at a time. */
async function connRate(setup: Setup, ms: number, concurrency: number): Promise<number> {
  const deadline = performance.now() + ms;
  let done = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const s = setup.connect();
        s.on('error', () => resolve());
        s.once('data', () => {
          done++;
          s.end();
        });
        s.once('close', () => resolve());
        s.write('Ex');
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done / ((performance.now() - t0) / 1000);
}

interface MemCost {
  rss: number;
  heap: number;
}

/**
 * RSS (and JS heap) that IDLE_TUNNELS open, idle connections add to each proxy process: the HBONE
 * client end (local listener + HboneClient) and server end (HboneServer + upstream sockets) in their
 * own processes, as two ztunnels would hold them, and a plain TCP proxy for scale.
 */
async function idleMemory(
  child: (...args: string[]) => Promise<{ proc: ChildProcess; port: number }>,
  sinkPort: number,
): Promise<{ client: MemCost; server: MemCost; tcp: MemCost }> {
  const mem = async (proc: ChildProcess): Promise<MemCost> => {
    proc.send({ cmd: 'rss' });
    const [m] = (await once(proc, 'message')) as [MemCost];
    return m;
  };
  const open = async (port: number): Promise<net.Socket> => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.on('error', () => {});
    s.write('Ex');
    await once(s, 'data');
    return s;
  };
  const measure = async (procs: ChildProcess[], port: number): Promise<MemCost[]> => {
    // The idle process: everything set up, a few tunnels made and closed (pooled connection, code warmed).
    const warm = await Promise.all(Array.from({ length: 10 }, () => open(port)));
    for (const s of warm) s.destroy();
    await delay(200);
    const before = await Promise.all(procs.map(mem));
    const sockets: net.Socket[] = [];
    for (let i = 0; i < IDLE_TUNNELS; i += 50) {
      sockets.push(...(await Promise.all(Array.from({ length: 50 }, () => open(port)))));
    }
    await delay(200);
    const after = await Promise.all(procs.map(mem));
    for (const s of sockets) s.destroy();
    for (const p of procs) p.kill();
    return after.map((m, i) => ({ rss: m.rss - before[i]!.rss, heap: m.heap - before[i]!.heap }));
  };
  const tcp = await child('tcp-proxy', '0', String(sinkPort));
  const [tcpCost] = await measure([tcp.proc], tcp.port);
  const hs = await child('hbone-server', '0', String(sinkPort));
  const hc = await child('hbone-client', String(hs.port), String(sinkPort));
  const [clientCost, serverCost] = await measure([hc.proc, hs.proc], hc.port);
  return { client: clientCost!, server: serverCost!, tcp: tcpCost! };
}

/** CPU time (user + system) a process used so far, in ms (Linux /proc; 0 elsewhere). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
  } catch {
    return 0;
  }
}

async function startStunnelPair(
  bin: string,
  dir: string,
  pems: Pems,
  sinkPort: number,
  children: ChildProcess[],
): Promise<{ port: number; pids: number[] }> {
  writeFileSync(join(dir, 'root.pem'), pems.root);
  writeFileSync(join(dir, 'server.pem'), pems.serverCert);
  writeFileSync(join(dir, 'server.key'), pems.serverKey, { mode: 0o600 });
  writeFileSync(join(dir, 'client.pem'), pems.clientCert);
  writeFileSync(join(dir, 'client.key'), pems.clientKey, { mode: 0o600 });
  const serverPort = await freePort();
  const clientPort = await freePort();
  const common = [
    'foreground = yes',
    'pid =',
    'debug = 3',
    'syslog = no',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
  ];
  const tlsConf = [
    `CAfile = ${join(dir, 'root.pem')}`,
    'verifyChain = yes',
    'sslVersionMin = TLSv1.3',
    'ciphersuites = TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
  ];
  writeFileSync(
    join(dir, 'server.conf'),
    [
      ...common,
      '[hbone-like-server]',
      `accept = 127.0.0.1:${serverPort}`,
      `connect = 127.0.0.1:${sinkPort}`,
      `cert = ${join(dir, 'server.pem')}`,
      `key = ${join(dir, 'server.key')}`,
      ...tlsConf,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(dir, 'client.conf'),
    [
      ...common,
      '[hbone-like-client]',
      'client = yes',
      `accept = 127.0.0.1:${clientPort}`,
      `connect = 127.0.0.1:${serverPort}`,
      `cert = ${join(dir, 'client.pem')}`,
      `key = ${join(dir, 'client.key')}`,
      ...tlsConf,
      '',
    ].join('\n'),
  );
  const pids: number[] = [];
  for (const conf of ['server.conf', 'client.conf']) {
    const p = spawn(bin, [join(dir, conf)], { stdio: 'ignore' });
    children.push(p);
    pids.push(p.pid!);
  }
  await waitForPort(serverPort);
  await waitForPort(clientPort);
  return { port: clientPort, pids };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listenPort(s);
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await delay(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function makePems(): Promise<Pems> {
  const { createCa } = await import('../test/support/pki.js');
  const ca = await createCa('bench root');
  const s = await ca.issue(SERVER_ID);
  const c = await ca.issue(CLIENT_ID);
  return {
    root: ca.certPem,
    serverKey: String(s.key),
    serverCert: String(s.certChain),
    clientKey: String(c.key),
    clientCert: String(c.certChain),
  };
}

// Dispatch last: module-level state above must be initialised first.
if (role) await runChild(role, process.argv.slice(3));
else await main();
