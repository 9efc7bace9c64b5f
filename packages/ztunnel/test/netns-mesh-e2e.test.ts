/**
 * Root-only: a real three-host mesh in network namespaces (scripts/netns-mesh.sh). Each host runs a ztunnel
 * process with the outbound capture listener, the DNS proxy and the iptables rules (installed by the
 * `ztunnel iptables` sub-command); the control plane runs on its own host. Apps in pods know nothing of the
 * mesh: curl by service name. Skipped with the reason printed where root, ip, iptables, curl, dig, tcpdump or
 * tshark are missing, or where the native addon did not build.
 *
 *   h1: p1 client, p2 local (service local, only `client` may call it)
 *   h2: p1 echo (service echo on 8080; the app also answers on 9090, which no service names)
 *   h3: p1 web (service web), p2 blocked (denied by echo's policy)
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
const LOCAL_VIP = '10.96.8.2';
const WEB_VIP = '10.96.8.3';
const HOSTS = [
  ['h1', '10.248.0.11'],
  ['h2', '10.248.0.12'],
  ['h3', '10.248.0.13'],
] as const;
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

d('a three-host mesh in network namespaces, transparent capture', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zt-netns-'));
  const config = join(dir, 'config');
  const state = join(dir, 'state');
  const children: ChildProcess[] = [];
  const ztunnels = new Map<string, ZtunnelProcess>();

  /** Starts host `n`'s ztunnel (rules stay installed across restarts) and resolves once it is ready. */
  async function startZtunnel(n: string, ip: string): Promise<ZtunnelProcess> {
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
    return z;
  }

  /** An HTTP app in a pod answering `<tag> saw <Host>` on each port; resolves once it listens on all. */
  async function app(podNs: string, ip: string, tag: string, ports: number[]): Promise<void> {
    const child = spawnIn(podNs, [
      process.execPath,
      '-e',
      `const h=require('node:http');let n=0;for(const p of ${JSON.stringify(ports)})h.createServer((q,s)=>s.end(${JSON.stringify(tag)}+(p===${ports[0]}?'':':'+p)+' saw '+q.headers.host+'\\n')).listen(p,${JSON.stringify(ip)},()=>{if(++n===${ports.length})console.log('READY')})`,
    ]);
    children.push(child);
    await lineMatching(child.stdout as NodeJS.ReadableStream, /READY/, `the ${tag} app`);
  }

  function zt(n: string): ZtunnelProcess {
    const z = ztunnels.get(n);
    if (!z) throw new Error(`no ztunnel on ${n}`);
    return z;
  }

  const curl = (from: string, url: string) => inNs(from, 'curl', '-sS', '--max-time', '20', url);

  beforeAll(async () => {
    mesh('up', '3', '2');
    mkdirSync(config);
    const pod = (name: string, node: string, ip: string, sa: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: demo, labels: {app: ${name}}}\nspec: {nodeName: ${node}, serviceAccountName: ${sa}}\nstatus: {podIP: ${ip}}\n`;
    const service = (name: string, vip: string) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: demo}\nspec:\n  clusterIP: ${vip}\n  selector: {app: ${name}}\n  ports: [{name: http, port: 8080, targetPort: 8080}]\n`;
    writeFileSync(
      join(config, 'mesh.yaml'),
      [
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n',
        pod('client', 'h1', '10.248.1.11', 'client'),
        pod('local', 'h1', '10.248.1.12', 'local'),
        pod('echo', 'h2', '10.248.2.11', 'echo'),
        pod('web', 'h3', '10.248.3.11', 'web'),
        pod('blocked', 'h3', '10.248.3.12', 'blocked'),
        service('echo', VIP),
        service('local', LOCAL_VIP),
        service('web', WEB_VIP),
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-blocked, namespace: demo}\nspec:\n  selector: {matchLabels: {app: echo}}\n  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/blocked"]}}]}]\n',
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: only-client, namespace: demo}\nspec:\n  selector: {matchLabels: {app: local}}\n  action: ALLOW\n  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/client"]}}]}]\n',
      ].join('---\n'),
    );
    const token = (n: string) => `bootstrap-token-for-${n}-0123456789`;
    writeFileSync(
      join(dir, 'tokens.yaml'),
      `tokens:\n${HOSTS.map(([n]) => `- {token: ${token(n)}, identity: "${ZT_ID}", kind: ztunnel, node: ${n}}`).join('\n')}\n`,
    );
    for (const [n] of HOSTS) writeFileSync(join(dir, `token-${n}`), token(n), { mode: 0o600 });

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

    await Promise.all(
      HOSTS.map(async ([n, ip]) => {
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
        await startZtunnel(n, ip);
      }),
    );
    await Promise.all([
      app('h2-p1', '10.248.2.11', 'echo', [8080, 9090]),
      app('h1-p2', '10.248.1.12', 'local', [8080]),
      app('h3-p1', '10.248.3.11', 'web', [8080]),
    ]);
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

  it('curl in a pod reaches a service on another host; only port 15008 crosses between hosts', async () => {
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
    const r = await curl('h1-p1', 'http://echo.demo:8080/');
    dump.kill('SIGINT');
    await once(dump, 'exit');
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
    const denied = zt('h2').next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
    const r = await curl('h3-p2', `http://${VIP}:8080/`);
    expect(r.code).not.toBe(0);
    expect(r.out).toBe('');
    await expect(denied).resolves.toMatchObject({ 'src.addr': expect.stringMatching(/^10\.248\.0\.13:/) });
  });

  it('two pods on the same host: by service name, through capture and HBONE, with identity and policy', async () => {
    const inbound = zt('h1').next((l) => l.scope === 'access' && l.direction === 'inbound');
    const r = await curl('h1-p1', 'http://local.demo:8080/');
    expect(r).toEqual({ code: 0, out: 'local saw local.demo:8080\n' });
    // h1's own inbound listener terminated the tunnel (the OUTPUT 15008 redirect) and checked the caller's identity.
    await expect(inbound).resolves.toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/demo/sa/client',
      'dst.addr': '10.248.1.12:8080',
      // Dialled to the pod's address, REDIRECTed to h1's own: the original destination is reported.
      'dst.hbone_addr': '10.248.1.12:15008',
      'dst.workload': 'local',
      'dst.identity': 'spiffe://cluster.local/ns/demo/sa/local',
    });
    expect((await inbound).error).toBeUndefined();
    // The ALLOW policy names only `client`: another identity is refused by the same host.
    const denied = zt('h1').next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
    const other = await curl('h3-p2', `http://${LOCAL_VIP}:8080/`);
    expect(other.code).not.toBe(0);
    await expect(denied).resolves.toMatchObject({ 'src.identity': 'spiffe://cluster.local/ns/demo/sa/blocked' });
  });

  it('plaintext from outside the mesh to a pod port is captured on 15006 and routed by its original destination', async () => {
    // h1's own namespace is no pod: its curl is not captured on h1, travels in clear, and h2 redirects it to 15006.
    const logged = zt('h2').next(
      (l) => l.scope === 'access' && l.direction === 'inbound' && l['dst.addr'] === '10.248.2.11:9090',
    );
    const r = await curl('h1', 'http://10.248.2.11:9090/');
    expect(r).toEqual({ code: 0, out: 'echo:9090 saw 10.248.2.11:9090\n' });
    const line = await logged;
    expect(line).toMatchObject({ 'src.addr': expect.stringMatching(/^10\.248\.0\.11:/), 'dst.workload': 'echo' });
    expect(line['src.identity']).toBeUndefined();
    expect(line.error).toBeUndefined();
    expect(await curl('h1', 'http://10.248.2.11:8080/')).toEqual({ code: 0, out: 'echo saw 10.248.2.11:8080\n' });
  });

  it('STRICT PeerAuthentication refuses that plaintext, and mTLS from a pod still works', async () => {
    const h2 = zt('h2');
    const applied = () =>
      Promise.all([
        h2.next((l) => l.msg === 'configuration updated' && l.type === 'Authorization'),
        h2.next(
          (l) => l.msg === 'configuration updated' && l.type === 'Address' && String(l.updated ?? '').includes('echo'),
        ),
      ]);
    const strict = applied();
    writeFileSync(
      join(config, 'strict.yaml'),
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n',
    );
    await strict;
    try {
      const refused = h2.next(
        (l) => l.scope === 'access' && l.direction === 'inbound' && String(l['src.addr']).startsWith('10.248.0.11:'),
      );
      const r = await curl('h1', 'http://10.248.2.11:8080/');
      expect(r.code).not.toBe(0);
      await expect(refused).resolves.toMatchObject({
        'dst.addr': '10.248.2.11:8080',
        error: expect.stringMatching(/^denied by policy/),
      });
      expect(await curl('h1-p1', 'http://echo.demo:8080/')).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });
    } finally {
      const permissive = applied();
      rmSync(join(config, 'strict.yaml'));
      await permissive;
    }
    expect((await curl('h1', 'http://10.248.2.11:8080/')).code).toBe(0);
  });

  it("a host's ztunnel restarted: the other hosts keep working during the outage, and it serves again after", async () => {
    expect(await curl('h1-p1', 'http://web.demo:8080/')).toEqual({ code: 0, out: 'web saw web.demo:8080\n' });
    expect(await zt('h3').kill('SIGTERM')).toBe(0);

    // Outage on h3: its pods' traffic is still captured (the rules stay) and goes nowhere; h1 and h2 carry on.
    expect(await curl('h1-p1', 'http://echo.demo:8080/')).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });
    expect((await curl('h1-p1', 'http://web.demo:8080/')).code).not.toBe(0);
    expect((await curl('h3-p1', `http://${VIP}:8080/`)).code).not.toBe(0);
    expect(await curl('h1-p1', 'http://echo.demo:8080/')).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });

    await startZtunnel('h3', '10.248.0.13');
    expect(await curl('h1-p1', 'http://web.demo:8080/')).toEqual({ code: 0, out: 'web saw web.demo:8080\n' });
    expect(await curl('h3-p1', 'http://echo.demo:8080/')).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });
  });
});
