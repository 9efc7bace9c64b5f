/**
 * Root-only: a real two-host mesh in network namespaces (scripts/netns-mesh.sh). Each host runs a ztunnel
 * process with the outbound capture listener, the DNS proxy and the iptables rules (installed by the
 * `ztunnel iptables` sub-command); the control plane runs on its own host. Apps in pods know nothing of the
 * mesh: curl by service name. Skipped with the reason printed where root, ip, iptables, curl, dig, tcpdump or
 * tshark are missing, or where the native addon did not build.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { originalDstSupport } from '@ambient-ts/original-dst';
import { ZtunnelProcess } from './helpers/mesh.js';

const ROOT = resolve(__dirname, '..', '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'netns-mesh.sh');
const ZTUNNEL = join(ROOT, 'packages', 'ztunnel', 'src', 'cli.ts');
const CONTROL_PLANE = join(ROOT, 'packages', 'control-plane', 'src', 'cli.ts');
const PREFIX = `ambe${process.pid % 100000}`;
const CP = '10.248.0.2';
const VIP = '10.96.8.1';
const ZT_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';

function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, iptables)';
  for (const cmd of ['ip', 'iptables', 'bash', 'curl', 'dig', 'tcpdump', 'tshark']) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `needs ${cmd} (Debian: iproute2, iptables, curl, dnsutils, tcpdump, tshark)`;
    }
  }
  const s = originalDstSupport();
  return s.available ? undefined : `needs the original-dst addon: ${s.reason}`;
}
const reason = unavailable();
if (reason) console.warn(`netns mesh e2e tests skipped: ${reason}`);
const d = reason ? describe.skip : describe;

jest.setTimeout(120_000);

function mesh(...args: string[]): string {
  return execFileSync(SCRIPT, args, { encoding: 'utf8', env: { ...process.env, NETNS_MESH_PREFIX: PREFIX } });
}

function inNs(name: string, ...argv: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) =>
    execFile('ip', ['netns', 'exec', `${PREFIX}-${name}`, ...argv], { timeout: 30_000 }, (err, out) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: String(out) }),
    ),
  );
}

function spawnIn(name: string, argv: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', `${PREFIX}-${name}`, ...argv], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

const tsNode = (file: string) => [process.execPath, '--conditions=@ambient-ts/source', '--import', 'tsx', file];

/** Resolves once a line of the stream matches. */
function lineMatching(stream: NodeJS.ReadableStream, re: RegExp, what: string): Promise<string> {
  return new Promise((res, rej) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString();
      const m = buf.split('\n').find((l) => re.test(l));
      if (m !== undefined) {
        stream.off('data', onData);
        res(m);
      }
    };
    stream.on('data', onData);
    stream.once('end', () => rej(new Error(`stream ended before ${what}: ${buf.slice(-2000)}`)));
  });
}

d('a two-host mesh in network namespaces, transparent capture', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zt-netns-'));
  const children: ChildProcess[] = [];
  const ztunnels = new Map<string, ZtunnelProcess>();

  beforeAll(async () => {
    mesh('up', '2', '2');
    const config = join(dir, 'config');
    const state = join(dir, 'state');
    mkdirSync(config);
    const pod = (name: string, node: string, ip: string, sa: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: demo, labels: {app: ${name}}}\nspec: {nodeName: ${node}, serviceAccountName: ${sa}}\nstatus: {podIP: ${ip}}\n`;
    writeFileSync(
      join(config, 'mesh.yaml'),
      [
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n',
        pod('client', 'h1', '10.248.1.11', 'client'),
        pod('blocked', 'h1', '10.248.1.12', 'blocked'),
        pod('echo', 'h2', '10.248.2.11', 'echo'),
        `apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: demo}\nspec:\n  clusterIP: ${VIP}\n  selector: {app: echo}\n  ports: [{name: http, port: 8080, targetPort: 8080}]\n`,
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-blocked, namespace: demo}\nspec:\n  selector: {matchLabels: {app: echo}}\n  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/blocked"]}}]}]\n',
      ].join('---\n'),
    );
    const token = (n: string) => `bootstrap-token-for-${n}-0123456789`;
    writeFileSync(
      join(dir, 'tokens.yaml'),
      `tokens:\n${['h1', 'h2'].map((n) => `- {token: ${token(n)}, identity: "${ZT_ID}", kind: ztunnel, node: ${n}}`).join('\n')}\n`,
    );
    for (const n of ['h1', 'h2']) writeFileSync(join(dir, `token-${n}`), token(n), { mode: 0o600 });

    const cp = spawnIn('cp', [
      ...tsNode(CONTROL_PLANE),
      '--config-dir',
      config,
      '--state-dir',
      state,
      '--tokens',
      join(dir, 'tokens.yaml'),
      '--listen',
      `${CP}:15012`,
      '--monitoring-listen',
      '127.0.0.1:15014',
      '--serving-ip',
      CP,
    ]);
    children.push(cp);
    await lineMatching(cp.stderr as NodeJS.ReadableStream, /control plane serving/, 'the control plane serving');

    for (const [n, ip] of [
      ['h1', '10.248.0.11'],
      ['h2', '10.248.0.12'],
    ] as const) {
      const subnet = `10.248.${n.slice(1)}.0/24`;
      const r = await inNs(
        n,
        ...tsNode(ZTUNNEL),
        'iptables',
        'install',
        '--pod-interfaces',
        'p+',
        '--pod-cidr',
        subnet,
      );
      expect(r).toEqual({ code: 0, out: 'ztunnel iptables install: done\n' });
      const child = spawnIn(n, [
        ...tsNode(ZTUNNEL),
        '--control-plane',
        `${CP}:15012`,
        '--trust-bundle',
        join(state, 'root-cert.pem'),
        '--token-file',
        join(dir, `token-${n}`),
        '--node',
        n,
        '--node-ip',
        ip,
        '--inbound-bind',
        '0.0.0.0',
        '--capture-outbound',
        '0.0.0.0:15001',
        '--dns-proxy',
        '0.0.0.0:15053',
        '--dns-upstream',
        '127.0.0.1:53',
        '--log-format',
        'json',
      ]);
      children.push(child);
      const z = new ZtunnelProcess(n, child);
      ztunnels.set(n, z);
      await z.waitFor((l) => l.msg === 'ready', "'ready'");
    }
    const echo = spawnIn('h2-p1', [
      process.execPath,
      '-e',
      "require('node:http').createServer((q,s)=>s.end('echo saw '+q.headers.host+'\\n')).listen(8080,'10.248.2.11',()=>console.log('READY'))",
    ]);
    children.push(echo);
    await lineMatching(echo.stdout as NodeJS.ReadableStream, /READY/, 'the echo server');
  });

  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    }
    try {
      mesh('down');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a pod resolves the service name through the DNS proxy', async () => {
    const r = await inNs('h1-p1', 'dig', '+short', '+time=5', '+tries=1', 'echo.demo');
    expect(r.out.trim()).toBe(VIP);
  });

  it('curl in a pod reaches a service on the other host; only port 15008 crosses between hosts', async () => {
    const pcap = join(dir, 'h1-eth0.pcap');
    const dump = spawnIn('h1', [
      'tcpdump',
      '-Z',
      'root',
      '-i',
      'eth0',
      '-nn',
      '-U',
      '--immediate-mode',
      '-w',
      pcap,
      '(tcp or udp) and not port 15012',
    ]);
    children.push(dump);
    await lineMatching(dump.stderr as NodeJS.ReadableStream, /listening on/, 'tcpdump listening');
    const r = await inNs('h1-p1', 'curl', '-sS', '--max-time', '20', 'http://echo.demo:8080/');
    dump.kill('SIGINT');
    await once(dump, 'exit');
    console.log(
      JSON.stringify(
        [...ztunnels.values()].map((z) => z.logs.filter((l) => l.level !== 'info' || l.scope === 'access')),
      ),
    );
    expect(r).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });
    const fields = execFileSync(
      'tshark',
      [
        '-r',
        pcap,
        '-d',
        'tcp.port==15008,tls',
        '-T',
        'fields',
        '-e',
        'ip.proto',
        '-e',
        'tcp.srcport',
        '-e',
        'tcp.dstport',
        '-e',
        'tls.record.content_type',
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
    expect(fields.length).toBeGreaterThan(0);
    const notHbone = fields.filter(([proto, sp, dp]) => proto !== '6' || (sp !== '15008' && dp !== '15008'));
    expect(notHbone).toEqual([]);
    // The frames carry a TLS handshake record (0x16 0x03 0x01, the ClientHello), and the HTTP never in clear.
    const frames = readFileSync(pcap);
    expect(frames.includes(Buffer.from([0x16, 0x03, 0x01]))).toBe(true);
    expect(frames.includes('echo saw')).toBe(false);
    expect(frames.includes('GET /')).toBe(false);
  });

  it('L4 DENY policy on the destination host stops a pod whose identity it names', async () => {
    const denied = ztunnels
      .get('h2')
      ?.next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
    const r = await inNs('h1-p2', 'curl', '-sS', '--max-time', '20', `http://${VIP}:8080/`);
    expect(r.code).not.toBe(0);
    expect(r.out).toBe('');
    await expect(denied).resolves.toMatchObject({ 'src.addr': expect.stringMatching(/^10\.248\.0\.11:/) });
  });
});
