/**
 * Delta ADS fan-out: 10,000 workloads, 1,000 Delta clients on loopback, each on its own TCP
 * connection. The server runs in this process; the clients run in one child process (2 cores:
 * one for each side). The clients are protocol-level peers: they read each response's nonce,
 * count resources and ACK, without decoding resource bodies (that cost is measured separately,
 * per client, by the "XdsClient full decode" row).
 *
 * Rows: initial sync of all clients, one workload change reaching every client, bytes on the wire
 * per client for that change (TCP payload, from the kernel's per-socket counters via `ss`), memory
 * per connected client. Baselines from the same run: protobufjs encoding each client's response
 * separately instead of splicing the shared encoded bytes.
 */
import { execFileSync, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import {
  ADDRESS_TYPE_URL,
  createIstioRegistry,
  DELTA_METHOD,
  encodeDeltaRequest,
  encodeDeltaResponse,
  parseIp,
  ResourceCache,
  XdsClient,
  XdsServer,
} from '../src/index.js';

const WORKLOADS = Number(process.env.XDS_BENCH_WORKLOADS ?? 10_000);
const CLIENTS = Number(process.env.XDS_BENCH_CLIENTS ?? 1_000);
const CHANGES = 5;

function workload(i: number, gen = 0) {
  return {
    workload: {
      uid: `Kubernetes//Pod/default/app-${i}`,
      name: `app-${i}`,
      namespace: 'default',
      addresses: [parseIp(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)],
      tunnelProtocol: 'HBONE' as const,
      trustDomain: 'cluster.local',
      serviceAccount: `sa-${i % 100}`,
      node: `node-${i % 50}`,
      canonicalName: `app-${i % 100}`,
      canonicalRevision: `v${gen}`,
      workloadName: `app-${i % 100}`,
      workloadType: 'DEPLOYMENT' as const,
      clusterId: 'Kubernetes',
      services: {
        [`default/svc-${i % 100}.default.svc.cluster.local`]: { ports: [{ servicePort: 80, targetPort: 8080 }] },
      },
    },
  };
}

// ---------------------------------------------------------------- child: the clients
async function runClients(target: string, count: number): Promise<void> {
  const send = (m: unknown) => process.send?.(m);
  const id = (b: Buffer): Buffer => b;
  const streams: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
  let lastReceipt = 0;
  let received = 0;
  for (let i = 0; i < count; i++) {
    const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc-node.flow_control_window': 4 * 1024 * 1024,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    });
    const call = client.makeBidiStreamRequest(DELTA_METHOD, id, id, new grpc.Metadata());
    call.on('error', () => {});
    call.on('data', (buf: Buffer) => {
      // Read the nonce (field 5); skip resource bodies.
      const r = protobuf.Reader.create(buf);
      let nonce = '';
      while (r.pos < r.len) {
        const tag = r.uint32();
        if (tag >>> 3 === 5) nonce = r.string();
        else r.skipType(tag & 7);
      }
      lastReceipt = performance.timeOrigin + performance.now();
      received++;
      call.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, responseNonce: nonce }));
    });
    call.write(
      encodeDeltaRequest({
        typeUrl: ADDRESS_TYPE_URL,
        node: { id: `ztunnel~10.1.0.${i}~zt-${i}.istio-system~istio-system.svc.cluster.local` },
      }),
    );
    streams.push(call);
  }
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'report') send({ lastReceipt, received });
    if (m.cmd === 'exit') process.exit(0);
  });
  send({ started: true });
}

// ---------------------------------------------------------------- parent: the server
function wireBytes(port: number): number {
  const out = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`]).toString();
  let total = 0;
  for (const m of out.matchAll(/bytes_(?:sent|received):(\d+)/g)) total += Number(m[1]);
  return total;
}

function gcHeap(): { heap: number; rss: number; external: number } {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss, external: m.external + m.arrayBuffers };
}

function fmtMs(ms: number): string {
  return `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'child') {
    await runClients(process.argv[3] as string, Number(process.argv[4]));
    return;
  }
  const rows: [string, string, string][] = [];
  const registry = createIstioRegistry();
  const cache = new ResourceCache({ registry });
  let t = performance.now();
  cache.transaction((tx) => {
    for (let i = 0; i < WORKLOADS; i++) tx.set(ADDRESS_TYPE_URL, `Kubernetes//Pod/default/app-${i}`, workload(i));
  });
  rows.push([`cache: load ${WORKLOADS} workloads (encode + validate + hash)`, fmtMs(performance.now() - t), '']);

  const server = new XdsServer({ cache, requestBurst: 100_000, requestsPerSecond: 100_000 });
  const port = await server.listen('127.0.0.1:0');
  const target = `127.0.0.1:${port}`;

  // One full XdsClient (decode + validate every resource) for the per-client decode cost.
  t = performance.now();
  const full = new XdsClient({ target, node: { id: 'bench-full' } }).subscribe(ADDRESS_TYPE_URL).start();
  await full.ready();
  rows.push([`one XdsClient: initial sync incl. decode + validate of ${WORKLOADS}`, fmtMs(performance.now() - t), '']);
  await full.close();

  const before = gcHeap();
  let acks = 0;
  let ackWaiter: (() => void) | undefined;
  let ackTarget = 0;
  server.on('ack', () => {
    acks++;
    if (acks >= ackTarget) ackWaiter?.();
  });
  const allAcked = (n: number) =>
    new Promise<void>((resolve) => {
      ackTarget = n;
      if (acks >= n) resolve();
      else ackWaiter = resolve;
    });

  t = performance.now();
  const child = fork(process.argv[1] as string, ['child', target, String(CLIENTS)], { execArgv: process.execArgv });
  const fromChild = () =>
    new Promise<Record<string, number>>((resolve) =>
      child.once('message', (m) => resolve(m as Record<string, number>)),
    );
  await fromChild();
  await allAcked(CLIENTS);
  const syncMs = performance.now() - t;
  const initialBytes = wireBytes(port);
  rows.push([
    `initial sync: ${CLIENTS} clients × ${WORKLOADS} workloads (connect → last ACK)`,
    fmtMs(syncMs),
    `${(initialBytes / 1024 / 1024).toFixed(0)} MiB on the wire`,
  ]);

  const after = gcHeap();
  rows.push([
    'server memory per connected, synced client',
    `${((after.heap - before.heap) / CLIENTS / 1024).toFixed(1)} KiB heap`,
    `external buffers ${((after.external - before.external) / CLIENTS / 1024).toFixed(1)} KiB, rss ${((after.rss - before.rss) / CLIENTS / 1024).toFixed(0)} KiB (rss includes allocator high-water from the sync)`,
  ]);

  const reach: number[] = [];
  const acked: number[] = [];
  const bytes: number[] = [];
  const msgBytes: number[] = [];
  for (let c = 1; c <= CHANGES; c++) {
    const w0 = wireBytes(port);
    const sent0 = server.clients().reduce((a, s) => a + s.bytesSent, 0);
    const target2 = acks + CLIENTS;
    const start = performance.timeOrigin + performance.now();
    const t0 = performance.now();
    cache.set(ADDRESS_TYPE_URL, `Kubernetes//Pod/default/app-${c}`, workload(c, c));
    await allAcked(target2);
    acked.push(performance.now() - t0);
    child.send({ cmd: 'report' });
    const rep = await fromChild();
    reach.push((rep.lastReceipt ?? 0) - start);
    bytes.push((wireBytes(port) - w0) / CLIENTS);
    msgBytes.push((server.clients().reduce((a, s) => a + s.bytesSent, 0) - sent0) / CLIENTS);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  rows.push([
    `one workload change reaches all ${CLIENTS} clients (median of ${CHANGES})`,
    fmtMs(med(reach)),
    'bar < 1 s',
  ]);
  rows.push([`… and all ${CLIENTS} ACKs are back at the server`, fmtMs(med(acked)), '']);
  rows.push([
    'bytes on the wire per client for that change (both directions, TCP payload)',
    `${med(bytes).toFixed(0)} B`,
    `bar < 2 KiB; response message ${med(msgBytes).toFixed(0)} B`,
  ]);

  // Baselines: what encoding per client (no shared bytes) would cost, on this machine, now.
  const entries = [...cache.entries(ADDRESS_TYPE_URL).values()];
  const asResources = entries.map((e) => ({
    name: e.name,
    version: e.version,
    typeUrl: ADDRESS_TYPE_URL,
    value: e.bytes,
  }));
  t = performance.now();
  for (let i = 0; i < 20; i++)
    encodeDeltaResponse({
      systemVersionInfo: '1',
      typeUrl: ADDRESS_TYPE_URL,
      nonce: String(i),
      removedResources: [],
      resources: asResources,
    });
  const perFull = (performance.now() - t) / 20;
  rows.push([
    `baseline: protobufjs-encode one full ${WORKLOADS}-resource response`,
    fmtMs(perFull),
    `× ${CLIENTS} clients = ${fmtMs(perFull * CLIENTS)} of server CPU`,
  ]);
  const one = asResources.slice(0, 1);
  t = performance.now();
  for (let i = 0; i < CLIENTS; i++)
    encodeDeltaResponse({
      systemVersionInfo: '1',
      typeUrl: ADDRESS_TYPE_URL,
      nonce: String(i),
      removedResources: [],
      resources: one,
    });
  rows.push([`baseline: protobufjs-encode the one-change response ${CLIENTS} times`, fmtMs(performance.now() - t), '']);

  console.log('| measurement | result | notes |');
  console.log('|---|---|---|');
  for (const [a, b, c] of rows) console.log(`| ${a} | ${b} | ${c} |`);
  child.send({ cmd: 'exit' });
  server.destroy();
}

void main().then(
  () => {
    if (process.argv[2] !== 'child') process.exit(0);
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
