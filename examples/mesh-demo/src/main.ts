/**
 * mesh-demo: Istio's ambient mesh on one machine, no root, nothing but Node.
 *
 *   client (127.0.1.10) ─SOCKS5─► ztunnel node-1 (127.0.1.1) ══HBONE mTLS══► ztunnel node-2 ─► echo (127.0.2.10:8080)
 *                                                                                         └─► tcp-echo (127.0.2.11:9000)
 *   control plane (xDS + CA on 127.0.0.1) ◄── both ztunnels (bootstrap tokens, certificates by impersonation)
 *
 * Real processes: the control plane and the two ztunnels are the project's bins. The walk-through sends a
 * request by service hostname, denies it with an AuthorizationPolicy written into the config directory,
 * removes the policy, shows metrics and a /config_dump excerpt, and watches certificates renew live while a
 * connection keeps flowing. Exits 0 at the end; `--keep` keeps everything running to try it by hand.
 *
 * `--netns` (root) runs the transparent-capture walk-through instead, across hosts built from network
 * namespaces: see netns-demo.ts.
 */
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get } from 'node:http';
import { createServer, type Server } from 'node:net';
import { constants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runNetnsDemo } from './netns-demo.js';
import { DENY_YAML } from './policies.js';
import { type Proc, runTs } from './processes.js';
import { httpGet, readExactly, SocksRefused, socksConnect } from './socks.js';

const keep = process.argv.includes('--keep');
const ROOT = resolve(import.meta.dirname, '../../..');
const CONTROL_PLANE_BIN = join(ROOT, 'packages/control-plane/src/cli.ts');
const ZTUNNEL_BIN = join(ROOT, 'packages/ztunnel/src/cli.ts');
const NODE1 = '127.0.1.1';
const NODE2 = '127.0.2.1';
const CLIENT_IP = '127.0.1.10';
const ECHO_IP = '127.0.2.10';
const TCP_ECHO_IP = '127.0.2.11';
const ECHO_HOST = 'echo.demo.svc.cluster.local';
const TCP_ECHO_HOST = 'tcp-echo.demo.svc.cluster.local';
// Workload certificates live 80 s; the rotation agent renews them a few seconds after they are issued,
// so the demo sees a renewal happen live. (Real meshes use 24 h.)
const CERT_TTL = '80s';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
let stepNo = 0;
const step = (title: string) => console.log(`\n${bold(`── ${++stepNo}. ${title}`)}`);
const say = (who: string, what: string) => console.log(`  ${who.padEnd(12)} ${what}`);

let dir = '';
const procs: Proc[] = [];
const servers: Server[] = [];

async function main(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'ambient-mesh-demo-'));
  console.log(bold('ambient-ts mesh demo') + dim(`  (working directory ${dir})`));

  step('The mesh configuration: Kubernetes-style YAML in a directory the control plane watches');
  const configDir = join(dir, 'config');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'mesh.yaml'), MESH_YAML);
  writeFileSync(join(dir, 'tokens.yaml'), TOKENS_YAML, { mode: 0o600 });
  for (const n of ['node-1', 'node-2']) writeFileSync(join(dir, `${n}.token`), token(n), { mode: 0o600 });
  say(
    'config',
    'namespace demo: Pod client on node-1, Pods echo and tcp-echo on node-2, Services echo:80 and tcp-echo:9000',
  );

  step('The workloads: plain apps, knowing nothing about the mesh');
  const echo = createHttpServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ service: 'echo', method: req.method, path: req.url, host: req.headers.host })}\n`);
  });
  echo.listen(8080, ECHO_IP);
  await once(echo, 'listening');
  servers.push(echo as unknown as Server);
  const tcpEcho = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  tcpEcho.listen(9000, TCP_ECHO_IP);
  await once(tcpEcho, 'listening');
  servers.push(tcpEcho);
  say('echo', `HTTP echo on ${ECHO_IP}:8080 (node-2)`);
  say('tcp-echo', `TCP echo on ${TCP_ECHO_IP}:9000 (node-2)`);
  say('client', `will connect from ${CLIENT_IP} (node-1)`);

  step('The control plane: CA + xDS over TLS');
  const cp = runTs(
    'control-plane',
    CONTROL_PLANE_BIN,
    [
      '--config-dir',
      configDir,
      '--state-dir',
      stateDir,
      '--tokens',
      join(dir, 'tokens.yaml'),
      '--listen',
      '127.0.0.1:0',
      '--monitoring-listen',
      '127.0.0.1:0',
      '--debounce-ms',
      '50',
    ],
    ROOT,
  );
  procs.push(cp);
  const serving = await cp.waitFor((l) => l.msg === 'control plane serving');
  const cpAddress = String(serving.grpc);
  say('control', `serving xDS + CA on ${cpAddress}; trust bundle written to state/root-cert.pem`);

  step('Two ztunnels, one per node');
  const zt = (node: string, ip: string) =>
    runTs(
      `ztunnel ${node}`,
      ZTUNNEL_BIN,
      [
        '--control-plane',
        cpAddress,
        '--trust-bundle',
        join(stateDir, 'root-cert.pem'),
        '--token-file',
        join(dir, `${node}.token`),
        '--node',
        node,
        '--node-ip',
        ip,
        '--cert-ttl',
        CERT_TTL,
        '--log-format',
        'json',
      ],
      ROOT,
    );
  const z1 = zt('node-1', NODE1);
  const z2 = zt('node-2', NODE2);
  procs.push(z1, z2);
  for (const [z, ip] of [
    [z1, NODE1],
    [z2, NODE2],
  ] as const) {
    const ready = await z.waitFor((l) => l.msg === 'ready');
    const certs = z.logs.filter((l) => l.msg === 'certificate issued').map((l) => l.identity);
    say(
      z.name.replace('ztunnel ', ''),
      `ready on ${ip}: SOCKS5 :15080, HBONE on each local workload :15008, certificates for ${certs.join(', ') || ready.local_workloads}`,
    );
  }

  step(`A request through the mesh: client → SOCKS5 → ${ECHO_HOST}`);
  const proxy = { host: NODE1, port: 15080 };
  const r1 = await request(z1, z2, proxy);
  say('client', `got ${r1.status}: ${r1.body.trim()}`);
  const inbound = await z2.waitFor(
    (l) => l.scope === 'access' && l.direction === 'inbound' && l['dst.workload'] === 'echo',
  );
  say(
    'node-2',
    `inbound  ${inbound['src.identity']} → ${inbound['dst.identity']} (${inbound['dst.addr']}, ${inbound.bytes_recv} bytes in, ${inbound.bytes_sent} out)`,
  );
  const outbound = await z1.waitFor(
    (l) => l.scope === 'access' && l.direction === 'outbound' && l['dst.service'] === ECHO_HOST,
  );
  say(
    'node-1',
    `outbound ${outbound['src.identity']} → ${outbound['dst.service']} via HBONE ${outbound['dst.hbone_addr']}`,
  );

  step('An AuthorizationPolicy that denies the client, written into the config directory');
  writeFileSync(join(configDir, 'deny-client.yaml'), DENY_YAML);
  console.log(dim(DENY_YAML.replace(/^/gm, '    ')));
  await z2.next(
    (l) =>
      l.msg === 'configuration updated' &&
      l.type === 'Authorization' &&
      String(l.updated ?? '').includes('deny-client'),
  );
  say('node-2', 'received the policy over xDS');
  try {
    await request(z1, z2, proxy);
    throw new Error('the request was allowed although the policy denies it');
  } catch (err) {
    if (!(err instanceof SocksRefused)) throw err;
    say('client', `refused: ${err.message}`);
  }
  const denied = await z2.waitFor((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
  say('node-2', `${denied.error}`);

  step('The policy removed: traffic flows again');
  rmSync(join(configDir, 'deny-client.yaml'));
  await z2.next(
    (l) =>
      l.msg === 'configuration updated' &&
      l.type === 'Authorization' &&
      String(l.removed ?? '').includes('deny-client'),
  );
  const r3 = await request(z1, z2, proxy);
  say('client', `got ${r3.status}`);

  step('Telemetry: Istio metrics on :15020 and the admin /config_dump on :15000');
  const metrics = await fetchText(`http://${NODE2}:15020/metrics`);
  for (const line of metrics
    .split('\n')
    .filter((l) => /^istio_tcp_(connections_opened|connections_failed|received_bytes)_total\{/.test(l))) {
    say('node-2', shortMetric(line));
  }
  const dump = JSON.parse(await fetchText(`http://${NODE2}:15000/config_dump`)) as {
    certificates: Array<{ identity: string; serial: string; notAfter: string; issuer?: string }>;
    workloads: Array<{ name: string; node: string; addresses: string[]; identity: string }>;
  };
  for (const w of dump.workloads)
    say('config_dump', `workload ${w.name} on ${w.node} at ${w.addresses.join(',')} as ${w.identity}`);
  for (const c of dump.certificates)
    say(
      'config_dump',
      `certificate ${c.identity} serial ${c.serial.slice(0, 12)}… until ${c.notAfter} (issuer ${c.issuer ?? '?'}) — no keys`,
    );

  step(`Certificate renewal, live (TTL ${CERT_TTL}), while a TCP connection keeps flowing`);
  const live = await socksConnect(proxy, CLIENT_IP, TCP_ECHO_HOST, 9000);
  let echoed = 0;
  const ping = async () => {
    const msg = `ping ${echoed}\n`;
    live.write(msg);
    const back = await readExactly(live, msg.length);
    if (back.toString() !== msg) throw new Error(`the live connection returned ${JSON.stringify(back.toString())}`);
    echoed++;
  };
  await ping();
  const renewed = Promise.all([
    z1.next((l) => l.msg === 'certificate renewed'),
    z2.next((l) => l.msg === 'certificate renewed' && l.identity === 'spiffe://cluster.local/ns/demo/sa/echo'),
  ]);
  let done = false;
  const pinger = (async () => {
    while (!done) {
      await ping();
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const [n1, n2] = await renewed;
  done = true;
  await pinger;
  for (const [who, l] of [
    ['node-1', n1],
    ['node-2', n2],
  ] as const)
    say(
      who,
      `renewed ${l.identity}: serial ${String(l.previous_serial).slice(0, 12)}… → ${String(l.serial).slice(0, 12)}…`,
    );
  await ping();
  say('client', `the open connection never stopped: ${echoed} round trips echoed across the renewal`);
  live.end();
  const r4 = await request(z1, z2, proxy);
  say('client', `a new connection uses the new certificates: ${r4.status}`);

  if (keep) {
    step('Keeping the mesh running (Ctrl-C to stop)');
    say('try', `curl --interface ${CLIENT_IP} --socks5-hostname ${NODE1}:15080 http://${ECHO_HOST}/`);
    for (const [n, ip] of [
      ['node-1', NODE1],
      ['node-2', NODE2],
    ] as const) {
      say(
        n,
        `admin http://${ip}:15000/config_dump   metrics http://${ip}:15020/metrics   ready http://${ip}:15021/healthz/ready`,
      );
    }
    say('config', `edit YAML in ${configDir} and watch the ztunnels follow`);
    keeping = true;
    await interrupted;
  }
  console.log(
    `\n${bold('done')}: the mesh carried, denied, allowed again, counted and re-keyed traffic with no root and no sidecars.`,
  );
}

/** GET / on the echo service by hostname through node-1's SOCKS5, from the client's address. */
async function request(_z1: Proc, _z2: Proc, proxy: { host: string; port: number }) {
  const s = await socksConnect(proxy, CLIENT_IP, ECHO_HOST, 80);
  return httpGet(s, ECHO_HOST, '/hello');
}

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Keep the labels a reader cares about. */
function shortMetric(line: string): string {
  const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
  if (!m) return line;
  const keep = ['reporter', 'source_principal', 'destination_workload', 'response_flags', 'connection_security_policy'];
  const labels = [...(m[2] as string).matchAll(/(\w+)="([^"]*)"/g)]
    .filter((x) => keep.includes(x[1] as string))
    .map((x) => `${x[1]}="${x[2]}"`);
  return `${m[1]}{${labels.join(',')}} ${m[3]}`;
}

function token(node: string): string {
  return `demo-bootstrap-token-${node}-0123456789`;
}

const TOKENS_YAML = `tokens:
- {token: ${token('node-1')}, identity: "spiffe://cluster.local/ns/istio-system/sa/ztunnel", kind: ztunnel, node: node-1}
- {token: ${token('node-2')}, identity: "spiffe://cluster.local/ns/istio-system/sa/ztunnel", kind: ztunnel, node: node-2}
`;

const MESH_YAML = `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {nodeName: node-1, serviceAccountName: client}
status: {podIP: ${CLIENT_IP}}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: demo, labels: {app: echo, version: v1}}
spec: {nodeName: node-2, serviceAccountName: echo}
status: {podIP: ${ECHO_IP}}
---
apiVersion: v1
kind: Pod
metadata: {name: tcp-echo, namespace: demo, labels: {app: tcp-echo}}
spec: {nodeName: node-2, serviceAccountName: tcp-echo}
status: {podIP: ${TCP_ECHO_IP}}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec: {selector: {app: echo}, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: tcp-echo, namespace: demo}
spec: {selector: {app: tcp-echo}, clusterIP: 10.96.0.11, ports: [{name: tcp, port: 9000, targetPort: 9000}]}
`;

async function shutdown(): Promise<void> {
  await Promise.allSettled(procs.map((p) => p.stop()));
  for (const s of servers) s.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Last resort when the demo leaves by a path that skips shutdown() (an uncaught error): no child outlives it. */
function killAllSync(): void {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Whether the walk-through is over and the mesh is kept running until a signal (`--keep`). */
let keeping = false;
let stopKeeping: () => void = () => {};
const interrupted = new Promise<void>((r) => {
  stopKeeping = r;
});
let stopping = false;

/**
 * Ctrl-C, SIGTERM or SIGHUP: with `--keep`, after the walk-through, the normal end; during it, a graceful stop
 * (children drained, directory removed). A second signal kills everything at once. Without this, a demo stopped
 * by `kill` would leave the control plane and both ztunnels running (they are not in a terminal's process group).
 */
function onSignal(signal: NodeJS.Signals): void {
  if (keeping) {
    keeping = false;
    stopKeeping();
    return;
  }
  const code = 128 + (constants.signals[signal] ?? 0);
  if (stopping) {
    killAllSync();
    process.exit(code);
  }
  stopping = true;
  console.error(`\n${signal}: stopping the mesh`);
  shutdown().finally(() => process.exit(code));
}

/** A reader that went away (`pnpm demo | head`) is not an error of the demo: stop the mesh quietly. */
function onOutputError(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE' || stopping) return;
  stopping = true;
  shutdown().finally(() => process.exit(1));
}

if (process.argv.includes('--netns')) {
  runNetnsDemo({ root: ROOT, prefix: process.env.MESH_DEMO_NETNS_PREFIX || 'ambd', keep }).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`mesh-demo --netns failed: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    },
  );
} else {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);
  process.on('exit', killAllSync);
  main().then(
    async () => {
      await shutdown();
      process.exit(0);
    },
    async (err: unknown) => {
      // Stopped by a signal or a closed output: the walk-through fails because its processes are going away;
      // that stop is already under way and exits on its own.
      if (stopping) return;
      console.error(`\nmesh-demo failed: ${(err as Error).stack ?? String(err)}`);
      for (const p of procs) {
        const tail = p.logs.slice(-8).map((l) => JSON.stringify(l));
        if (tail.length) console.error(`--- last log lines of ${p.name}:\n${tail.join('\n')}`);
      }
      await shutdown();
      process.exit(1);
    },
  );
}
