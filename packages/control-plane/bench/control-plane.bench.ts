/**
 * The control plane at scale: 500 services, 10,000 pods on 100 nodes, 1,000 AuthorizationPolicies.
 * Measures cold start to serving, memory, the initial sync of 100 ztunnel clients, and the time from a
 * file change (one pod) to the push reaching all 100 clients. The server runs in this process; the 100
 * clients run in one child process (2 cores) as protocol-level Delta ADS peers over TLS with per-node
 * bootstrap tokens: they read each response's type, nonce and resource names and ACK it.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsChannelCredentials } from '@ambient-ts/ca';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, DELTA_METHOD, encodeDeltaRequest } from '@ambient-ts/xds';
import * as grpc from '@grpc/grpc-js';
import { keyOf } from '../src/config-object.js';
import type { ConfigChange } from '../src/config-source.js';
import { ControlPlane } from '../src/control-plane.js';
import { parseConfigText } from '../src/parse-config.js';
import { authzConverter } from '../src/policy-adapter.js';
import { Translator } from '../src/translator.js';

const NAMESPACES = 10;
const SERVICES = 500;
const PODS = 10_000;
const NODES = 100;
const POLICIES = 1_000;
const CLIENTS = 100;
const now = () => Number(process.hrtime.bigint()) / 1e6; // monotonic and shared by parent and child

// ---------------------------------------------------------------- the mesh
function podYaml(i: number, ipOffset = 0): string {
  const ns = `ns-${i % NAMESPACES}`;
  const svc = Math.floor(i / NAMESPACES) % (SERVICES / NAMESPACES);
  const node = i % NODES;
  const ip = `10.${(node + ipOffset) % 256}.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  return `apiVersion: v1
kind: Pod
metadata:
  name: app-${i}
  namespace: ${ns}
  labels: {app: svc-${svc}, version: v1}
spec:
  nodeName: node-${node}
  serviceAccountName: sa-${svc}
  containers: [{name: app, ports: [{name: http, containerPort: 8080}]}]
status:
  podIP: ${ip}
`;
}

function serviceYaml(s: number): string {
  const ns = `ns-${s % NAMESPACES}`;
  const local = Math.floor(s / NAMESPACES);
  return `apiVersion: v1
kind: Service
metadata: {name: svc-${local}, namespace: ${ns}}
spec:
  selector: {app: svc-${local}}
  clusterIP: 10.96.${Math.floor(s / 250)}.${(s % 250) + 1}
  ports: [{name: http, port: 80, targetPort: http}, {name: grpc, port: 9090, targetPort: 9090}]
`;
}

function policyYaml(p: number): string {
  const ns = `ns-${p % NAMESPACES}`;
  const target = Math.floor(p / NAMESPACES) % (SERVICES / NAMESPACES);
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-${p}, namespace: ${ns}}
spec:
  selector: {matchLabels: {app: svc-${target}}}
  action: ALLOW
  rules:
  - from: [{source: {principals: [cluster.local/ns/${ns}/sa/sa-${(target + 1) % 50}], namespaces: [${ns}]}}]
    to: [{operation: {ports: ["8080", "9090"]}}]
`;
}

/** One file per namespace for services and policies; pods in files of 500 (as a team might split them). */
function writeMesh(dir: string): Map<number, string> {
  const podFiles = new Map<number, string>();
  for (let n = 0; n < NAMESPACES; n++) {
    writeFileSync(join(dir, `ns-${n}.yaml`), `apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-${n}}\n`);
  }
  const byNs = (count: number, f: (i: number) => string) => {
    const out: string[][] = Array.from({ length: NAMESPACES }, () => []);
    for (let i = 0; i < count; i++) out[i % NAMESPACES]?.push(f(i));
    return out;
  };
  for (const [n, docs] of byNs(SERVICES, serviceYaml).entries())
    writeFileSync(join(dir, `services-${n}.yaml`), docs.join('---\n'));
  for (const [n, docs] of byNs(POLICIES, policyYaml).entries())
    writeFileSync(join(dir, `policies-${n}.yaml`), docs.join('---\n'));
  for (let start = 0; start < PODS; start += 500) {
    const docs: string[] = [];
    for (let i = start; i < start + 500; i++) {
      docs.push(podYaml(i));
      podFiles.set(i, `pods-${start / 500}.yaml`);
    }
    writeFileSync(join(dir, `pods-${start / 500}.yaml`), docs.join('---\n'));
  }
  return podFiles;
}

function rewritePodFile(dir: string, file: string, changed: number, offset: number): void {
  const start = Number(/pods-(\d+)/.exec(file)?.[1]) * 500;
  const docs: string[] = [];
  for (let i = start; i < start + 500; i++) docs.push(podYaml(i, i === changed ? offset : 0));
  writeFileSync(join(dir, file), docs.join('---\n'));
}

// ---------------------------------------------------------------- child: 100 ztunnel clients
function scanResponse(buf: Buffer, watch: string | undefined): { typeUrl: string; nonce: string; sawWatched: boolean } {
  let pos = 0;
  const varint = (): number => {
    let r = 0;
    let s = 0;
    for (;;) {
      const b = buf[pos++] as number;
      r += (b & 0x7f) * 2 ** s;
      if (b < 0x80) return r;
      s += 7;
    }
  };
  let typeUrl = '';
  let nonce = '';
  let sawWatched = false;
  while (pos < buf.length) {
    const tag = varint();
    const wt = tag & 7;
    const field = tag >>> 3;
    if (wt !== 2) {
      if (wt === 0) varint();
      else pos += wt === 1 ? 8 : 4;
      continue;
    }
    const len = varint();
    const end = pos + len;
    if (field === 4) typeUrl = buf.toString('utf8', pos, end);
    else if (field === 5) nonce = buf.toString('utf8', pos, end);
    else if (field === 2 && watch) {
      // Resource { name = 3 }: look for the name only.
      let p = pos;
      while (p < end) {
        const t = buf[p++] as number;
        let l = 0;
        let s = 0;
        for (;;) {
          const b = buf[p++] as number;
          l += (b & 0x7f) * 2 ** s;
          if (b < 0x80) break;
          s += 7;
        }
        if (t === 0x1a && buf.toString('utf8', p, p + l) === watch) sawWatched = true;
        p += (t & 7) === 2 ? l : 0;
      }
    }
    pos = end;
  }
  return { typeUrl, nonce, sawWatched };
}

async function runClients(target: string, rootFile: string, count: number): Promise<void> {
  // One credentials object for the fleet; the server is at an IP, so no SNI (and no DEP0123 warning).
  const serverName = target.slice(0, target.lastIndexOf(':'));
  const credentials = new TlsChannelCredentials({ serverName, trustBundle: readFileSync(rootFile) });
  const id = (b: Buffer): Buffer => b;
  let synced = 0;
  const syncedTypes: Array<Set<string>> = [];
  let watch: string | undefined;
  let seen = new Set<number>();
  let watchStarted = 0;
  for (let i = 0; i < count; i++) {
    syncedTypes.push(new Set());
    const client = new grpc.Client(target, credentials, {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    });
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ztunnel-token-node-${i}-0123456789`);
    const call = client.makeBidiStreamRequest(DELTA_METHOD, id, id, md);
    call.on('error', (e) => process.send?.({ error: String(e) }));
    call.on('data', (buf: Buffer) => {
      const r = scanResponse(buf, watch);
      call.write(encodeDeltaRequest({ typeUrl: r.typeUrl, responseNonce: r.nonce }));
      const types = syncedTypes[i] as Set<string>;
      if (types.size < 2) {
        types.add(r.typeUrl);
        if (types.size === 2 && ++synced === count) process.send?.({ synced: now() });
      }
      if (watch && r.sawWatched && !seen.has(i)) {
        seen.add(i);
        if (seen.size === count) process.send?.({ received: now(), since: watchStarted });
      }
    });
    call.write(
      encodeDeltaRequest({
        typeUrl: ADDRESS_TYPE_URL,
        node: { id: `ztunnel~10.${i}.0.1~zt-${i}.istio-system~istio-system.svc.cluster.local` },
      }),
    );
    call.write(encodeDeltaRequest({ typeUrl: AUTHORIZATION_TYPE_URL }));
  }
  process.on('message', (m: { cmd: string; name?: string }) => {
    if (m.cmd === 'watch') {
      watch = m.name;
      seen = new Set();
      watchStarted = now();
      process.send?.({ watching: true });
    }
    if (m.cmd === 'exit') process.exit(0);
  });
}

// ---------------------------------------------------------------- parent
function mem(): { heap: number; rss: number } {
  globalThis.gc?.();
  globalThis.gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
const ms = (v: number) => `${v.toFixed(v < 10 ? 1 : 0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  if (process.argv[2] === 'child') {
    await runClients(process.argv[3] as string, process.argv[4] as string, Number(process.argv[5]));
    return;
  }
  const rows: Array<[string, string, string]> = [];
  const work = mkdtempSync(join(tmpdir(), 'cp-bench-'));
  const configDir = join(work, 'config');
  mkdirSync(configDir);
  const podFiles = writeMesh(configDir);
  writeFileSync(
    join(work, 'tokens.yaml'),
    `tokens:\n${Array.from({ length: NODES }, (_, i) => `- {token: ztunnel-token-node-${i}-0123456789, identity: "spiffe://cluster.local/ns/istio-system/sa/ztunnel", kind: ztunnel, node: node-${i}}`).join('\n')}\n`,
  );

  // Baselines: parse only, and translate everything from scratch (what a non-incremental design redoes on every change).
  const base0 = mem();
  let t = now();
  const files = (await import('node:fs')).readdirSync(configDir).sort();
  const changes: ConfigChange[] = [];
  for (const f of files) {
    for (const o of parseConfigText(readFileSync(join(configDir, f), 'utf8'), f).objects)
      changes.push({ type: 'added', key: keyOf(o), object: o });
  }
  const parseMs = now() - t;
  t = now();
  const full = new Translator({ convertPolicy: authzConverter });
  full.apply(changes);
  const fullMs = now() - t;
  const onePod = changes.find((c) => c.key === 'Pod/ns-3/app-4243') as ConfigChange;
  const moved = parseConfigText(podYaml(4243, 7), 'x').objects[0];
  const durations: number[] = [];
  for (let k = 0; k < 5; k++) {
    const s = now();
    const d = full.apply([
      { type: 'modified', key: onePod.key, object: moved ?? onePod.object, previous: onePod.object },
    ]);
    durations.push(now() - s);
    full.apply([{ type: 'modified', key: onePod.key, object: onePod.object, previous: moved ?? onePod.object }]);
    if (k === 0 && d.addresses.upserted.size !== 1) throw new Error('expected one changed resource');
  }
  const incMs = median(durations);
  changes.length = 0;
  void base0;

  // Cold start to serving (new state dir: the CA root is created too).
  globalThis.gc?.();
  const before = mem();
  t = now();
  const cp = await ControlPlane.start({
    configDir,
    stateDir: join(work, 'state'),
    tokens: join(work, 'tokens.yaml'),
    listen: '127.0.0.1:0',
    monitoringListen: '127.0.0.1:0',
  });
  const coldMs = now() - t;
  const after = mem();
  const addresses = cp.translator.addresses().size;
  const authorizations = cp.translator.authorizations().size;

  // 100 ztunnel clients.
  const child = fork(
    process.argv[1] as string,
    ['child', `127.0.0.1:${cp.grpcPort}`, join(work, 'state', 'root-cert.pem'), String(CLIENTS)],
    {
      execArgv: process.execArgv,
    },
  );
  const messages: Array<Record<string, number | boolean | string>> = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m) => {
    messages.push(m as Record<string, number>);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (key: string): Promise<Record<string, number | boolean | string>> => {
    for (;;) {
      const i = messages.findIndex((m) => key in m || 'error' in m);
      if (i >= 0) {
        const [m] = messages.splice(i, 1);
        if (m && 'error' in m) throw new Error(String(m.error));
        return m as Record<string, number>;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const syncStart = now();
  const synced = (await next('synced')).synced as number;
  const syncMs = synced - syncStart;
  const connected = mem();

  // One pod changes in its file: time from the write to all 100 clients having the new workload.
  const pushes: number[] = [];
  for (let k = 0; k < 5; k++) {
    const pod = 1234 + k * 1111;
    child.send({ cmd: 'watch', name: `Kubernetes//Pod/ns-${pod % NAMESPACES}/app-${pod}` });
    await next('watching');
    const w = now();
    rewritePodFile(configDir, podFiles.get(pod) as string, pod, 3 + k);
    const got = (await next('received')).received as number;
    pushes.push(got - w);
  }
  const pushMs = median(pushes);
  const metrics = await cp.metrics.registry.getSingleMetricAsString('pilot_proxy_convergence_time');
  child.send({ cmd: 'exit' });
  await cp.close();
  rmSync(work, { recursive: true, force: true });

  rows.push([
    'config',
    `${SERVICES} services, ${PODS} pods on ${NODES} nodes, ${POLICIES} policies, ${files.length} files`,
    `${addresses} Address + ${authorizations} Authorization resources`,
  ]);
  rows.push(['baseline: parse + schema-check all YAML', ms(parseMs), 'lower bound of any cold start']);
  rows.push([
    'baseline: translate everything from scratch',
    ms(fullMs),
    'what a non-incremental design redoes per change',
  ]);
  rows.push([
    'incremental translate of a one-pod change (median of 5)',
    ms(incMs),
    `${(fullMs / incMs).toFixed(0)}× less than from scratch`,
  ]);
  rows.push([
    'cold start to serving (new state dir: CA root created)',
    ms(coldMs),
    `bar < 5 s ${coldMs < 5000 ? '✔' : '✘'}`,
  ]);
  rows.push([
    'memory after start (heap / rss growth)',
    `${mib(after.heap - before.heap)} / ${mib(after.rss - before.rss)}`,
    `heap total ${mib(after.heap)}, rss ${mib(after.rss)}`,
  ]);
  rows.push([
    `initial sync of ${CLIENTS} ztunnel clients (TLS, token, Delta, both types)`,
    ms(syncMs),
    `heap +${mib(connected.heap - after.heap)} with ${CLIENTS} clients`,
  ]);
  rows.push([
    `one-pod file change → pushed to all ${CLIENTS} clients (median of 5)`,
    ms(pushMs),
    `bar < 1 s ${pushMs < 1000 ? '✔' : '✘'}; runs: ${pushes.map((p) => p.toFixed(0)).join(', ')} ms; includes the 100 ms debounce`,
  ]);
  console.log('| measurement | result | notes |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  const count = /pilot_proxy_convergence_time_count (\d+)/.exec(metrics)?.[1];
  console.log(`\npilot_proxy_convergence_time observations: ${count}`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
