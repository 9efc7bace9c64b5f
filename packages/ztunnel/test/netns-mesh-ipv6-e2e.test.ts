/**
 * Root-only: IPv6 mesh traffic through ztunnel, end to end, in a dual-stack mesh of network namespaces
 * (scripts/netns-mesh.sh with NETNS_MESH_IPV6=1). The control plane listens on its IPv6 address; each host's
 * ztunnel talks to it over IPv6, binds its listeners on `::`, and has the capture rules for both families
 * (`ztunnel iptables install` with an IPv4 and an IPv6 pod CIDR). Pods and the service are dual-stack in the
 * control plane's config. Skipped with the reason printed where root, ip, iptables, ip6tables, curl, dig,
 * tcpdump or tshark are missing, or where the native addon did not build.
 *
 *   h1: p1 client, p2 blocked (an app on 8080; denied by echo's policy while deny.yaml exists)
 *   h2: p1 echo (service echo on 8080, VIPs 10.96.9.1 and fd00:96::9:1; the app echoes a POST body back)
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { originalDstSupport } from '@ambient-ts/original-dst';
import { ZtunnelProcess } from './helpers/mesh.js';
import { REPO_ROOT, rootTestUnavailable, ZTUNNEL_CLI } from './helpers/root-tools.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'netns-mesh.sh');
const CONTROL_PLANE = join(REPO_ROOT, 'packages', 'control-plane', 'src', 'cli.ts');
const PREFIX = `ambv${process.pid % 100000}`;
const CP = 'fd00:248::2';
const VIP4 = '10.96.9.1';
const VIP6 = 'fd00:96::9:1';
const CLIENT6 = 'fd00:248:1::11';
const BLOCKED6 = 'fd00:248:1::12';
const ECHO6 = 'fd00:248:2::11';
const HOSTS = [
  ['h1', 'fd00:248::11'],
  ['h2', 'fd00:248::12'],
] as const;
const ZT_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
const CLIENT_ID = 'spiffe://cluster.local/ns/demo/sa/client';
const BLOCKED_ID = 'spiffe://cluster.local/ns/demo/sa/blocked';

function unavailable(): string | undefined {
  const missing = rootTestUnavailable(
    ['ip', 'iptables', 'ip6tables', 'bash', 'curl', 'dig', 'tcpdump', 'tshark'],
    'iproute2, iptables, curl, dnsutils, tcpdump, tshark',
  );
  if (missing) return missing;
  const s = originalDstSupport();
  return s.available ? undefined : `needs the original-dst addon: ${s.reason}`;
}
const reason = unavailable();
if (reason) console.warn(`netns mesh IPv6 e2e tests skipped: ${reason}`);
const d = reason ? describe.skip : describe;

jest.setTimeout(120_000);

function mesh(...args: string[]): string {
  return execFileSync(SCRIPT, args, {
    encoding: 'utf8',
    env: { ...process.env, NETNS_MESH_PREFIX: PREFIX, NETNS_MESH_IPV6: '1' },
  });
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
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

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

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

d('a dual-stack mesh in network namespaces: IPv6 through ztunnel', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zt-netns6-'));
  const config = join(dir, 'config');
  const state = join(dir, 'state');
  const children: ChildProcess[] = [];
  const ztunnels = new Map<string, ZtunnelProcess>();

  function zt(n: string): ZtunnelProcess {
    const z = ztunnels.get(n);
    if (!z) throw new Error(`no ztunnel on ${n}`);
    return z;
  }

  const curl = (from: string, ...args: string[]) => inNs(from, 'curl', '-sS', '-g', '--max-time', '20', ...args);

  /** Runs tcpdump on a host's eth0 around `fn`; returns fn's result and the capture's file. */
  async function captured<T>(host: string, fn: () => Promise<T>): Promise<{ result: T; pcap: string }> {
    const pcap = join(dir, `${host}-eth0-${Date.now()}.pcap`);
    const dump = spawnIn(host, [
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
    try {
      return { result: await fn(), pcap };
    } finally {
      dump.kill('SIGINT');
      await once(dump, 'exit');
    }
  }

  /**
   * Every frame of a capture as [ipv4 src, ipv6 src, ipv6 dst, tcp src port, tcp dst port, TLS content types,
   * TLS 1.3 opaque types, ALPN offered, TLS versions offered] (lists comma-separated).
   */
  function frames(pcap: string): string[][] {
    return execFileSync(
      'tshark',
      [
        '-2',
        '-r',
        pcap,
        '-d',
        'tcp.port==15008,tls',
        '-T',
        'fields',
        '-e',
        'ip.src',
        '-e',
        'ipv6.src',
        '-e',
        'ipv6.dst',
        '-e',
        'tcp.srcport',
        '-e',
        'tcp.dstport',
        '-e',
        'tls.record.content_type',
        '-e',
        'tls.record.opaque_type',
        '-e',
        'tls.handshake.extensions_alpn_str',
        '-e',
        'tls.handshake.extensions.supported_version',
      ],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t'));
  }

  beforeAll(async () => {
    mesh('up', '2', '2');
    mkdirSync(config);
    const pod = (name: string, node: string, ip4: string, ip6: string, sa: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: demo, labels: {app: ${name}}}\nspec: {nodeName: ${node}, serviceAccountName: ${sa}}\nstatus:\n  podIP: ${ip4}\n  podIPs: [{ip: ${ip4}}, {ip: "${ip6}"}]\n`;
    writeFileSync(
      join(config, 'mesh.yaml'),
      [
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n',
        pod('client', 'h1', '10.248.1.11', CLIENT6, 'client'),
        pod('blocked', 'h1', '10.248.1.12', BLOCKED6, 'blocked'),
        pod('echo', 'h2', '10.248.2.11', ECHO6, 'echo'),
        `apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: demo}\nspec:\n  clusterIP: ${VIP4}\n  clusterIPs: [${VIP4}, "${VIP6}"]\n  ipFamilies: [IPv4, IPv6]\n  selector: {app: echo}\n  ports: [{name: http, port: 8080, targetPort: 8080}]\n`,
      ].join('---\n'),
    );
    writeFileSync(
      join(config, 'deny.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-blocked, namespace: demo}\nspec:\n  selector: {matchLabels: {app: echo}}\n  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/demo/sa/blocked"]}}]}]\n',
    );
    const token = (n: string) => `bootstrap-token-for-${n}-0123456789`;
    writeFileSync(
      join(dir, 'tokens.yaml'),
      `tokens:\n${HOSTS.map(([n]) => `- {token: ${token(n)}, identity: "${ZT_ID}", kind: ztunnel, node: ${n}}`).join('\n')}\n`,
    );
    for (const [n] of HOSTS) writeFileSync(join(dir, `token-${n}`), token(n), { mode: 0o600 });

    const cp = spawnIn('cp', [
      ...ZTUNNEL_CLI.slice(0, -1),
      CONTROL_PLANE,
      '--config-dir',
      config,
      '--state-dir',
      state,
      '--tokens',
      join(dir, 'tokens.yaml'),
      '--listen',
      `[${CP}]:15012`,
      '--monitoring-listen',
      '127.0.0.1:15014',
      '--serving-ip',
      CP,
    ]);
    children.push(cp);
    await lineMatching(cp.stderr as NodeJS.ReadableStream, /control plane serving/, 'the control plane serving');

    await Promise.all(
      HOSTS.map(async ([n, ip]) => {
        const i = n.slice(1);
        const r = await inNs(
          n,
          ...ZTUNNEL_CLI,
          'iptables',
          'install',
          '--pod-interfaces',
          'p+',
          '--pod-cidr',
          `10.248.${i}.0/24`,
          '--pod-cidr',
          `fd00:248:${i}::/64`,
        );
        expect(r).toEqual({ code: 0, out: 'ztunnel iptables install: done\n' });
        const child = spawnIn(n, [
          ...ZTUNNEL_CLI,
          '--control-plane',
          `[${CP}]:15012`,
          '--trust-bundle',
          join(state, 'root-cert.pem'),
          '--token-file',
          join(dir, `token-${n}`),
          '--node',
          n,
          '--node-ip',
          ip,
          '--inbound-bind',
          '::',
          '--capture-outbound',
          '[::]:15001',
          '--dns-proxy',
          '[::]:15053',
          '--dns-upstream',
          '127.0.0.1:53',
          '--log-format',
          'json',
        ]);
        children.push(child);
        const z = new ZtunnelProcess(n, child);
        ztunnels.set(n, z);
        await z.waitFor((l) => l.msg === 'ready', "'ready'");
      }),
    );

    // The app answers GET with what it saw, and echoes a POST body back unchanged.
    const echo = spawnIn('h2-p1', [
      process.execPath,
      '-e',
      `require('node:http').createServer((q,s)=>{if(q.method==='POST'){q.pipe(s);return}s.end('echo saw '+q.headers.host+'\\n')}).listen(8080,'::',()=>console.log('READY'))`,
    ]);
    children.push(echo);
    const local = spawnIn('h1-p2', [
      process.execPath,
      '-e',
      `require('node:http').createServer((q,s)=>s.end('local saw '+q.headers.host+'\\n')).listen(8080,'::',()=>console.log('READY'))`,
    ]);
    children.push(local);
    await Promise.all([
      lineMatching(echo.stdout as NodeJS.ReadableStream, /READY/, 'the echo app'),
      lineMatching(local.stdout as NodeJS.ReadableStream, /READY/, 'the local app'),
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

  it("the DNS proxy gives a pod the service's AAAA record, also when asked over IPv6 by a short name", async () => {
    expect((await inNs('h1-p1', 'dig', '+short', '+time=5', '+tries=1', 'AAAA', 'echo.demo')).out.trim()).toBe(VIP6);
    expect((await inNs('h1-p1', 'dig', '+short', '+time=5', '+tries=1', 'A', 'echo.demo')).out.trim()).toBe(VIP4);
    // Over IPv6 to the host's address: captured by ip6tables, and the pod found by its IPv6 source address
    // (the short name `echo` means echo.<the pod's namespace>).
    const r = await inNs('h1-p1', 'dig', '+short', '+time=5', '+tries=1', '@fd00:248:1::1', 'AAAA', 'echo');
    expect(r.out.trim()).toBe(VIP6);
  });

  it('a pod reaches the IPv6 service VIP on another host through capture, bytes intact both ways, only TLS to 15008 over IPv6 between hosts', async () => {
    const body = randomBytes(1 << 20);
    const input = join(dir, 'body.bin');
    const output = join(dir, 'echoed.bin');
    writeFileSync(input, body);
    const outbound = zt('h1').next((l) => l.scope === 'access' && l.direction === 'outbound');
    const inbound = zt('h2').next((l) => l.scope === 'access' && l.direction === 'inbound');
    const { result, pcap } = await captured('h1', () =>
      curl('h1-p1', '--data-binary', `@${input}`, '-o', output, `http://[${VIP6}]:8080/`),
    );
    expect(result).toEqual({ code: 0, out: '' });
    expect(sha256(readFileSync(output))).toBe(sha256(body));

    // h1 took it on its capture listener from the pod's IPv6 address and tunnelled it to the pod's IPv6 address.
    await expect(outbound).resolves.toMatchObject({
      'src.addr': expect.stringMatching(/^\[fd00:248:1::11\]:\d+$/),
      'src.identity': CLIENT_ID,
      'dst.addr': `[${ECHO6}]:8080`,
      'dst.hbone_addr': `[${ECHO6}]:15008`,
      'dst.service': 'echo.demo.svc.cluster.local',
    });
    // h2 verified the client's identity and reached the app at its IPv6 address. The tunnel arrived REDIRECTed to
    // h2's own address; the address it was dialled to (the pod's) comes from the original destination.
    await expect(inbound).resolves.toMatchObject({
      'src.identity': CLIENT_ID,
      'dst.addr': `[${ECHO6}]:8080`,
      'dst.hbone_addr': `[${ECHO6}]:15008`,
      'dst.workload': 'echo',
    });
    expect((await inbound).error).toBeUndefined();

    const seen = frames(pcap);
    expect(seen.length).toBeGreaterThan(0);
    // Every frame on h1's link: IPv6 (no IPv4 source), between h1's address and the echo pod's (h2 takes the
    // pod's 15008 with its PREROUTING redirect), TCP with 15008 on the pod's side.
    const ends = ['fd00:248::11', ECHO6];
    const other = seen.filter(
      ([v4, src, dst, sp, dp]) =>
        v4 !== '' ||
        !ends.includes(src ?? '') ||
        !ends.includes(dst ?? '') ||
        src === dst ||
        (src === ECHO6 ? sp : dp) !== '15008',
    );
    expect(other).toEqual([]);
    // A TLS 1.3 handshake offering ALPN h2, then only encrypted records (TLS 1.3 shows them as opaque type 23),
    // and neither the HTTP nor the body in clear.
    const column = (i: number) => seen.flatMap((f) => (f[i] ?? '').split(',')).filter(Boolean);
    expect(column(5)).toContain('22');
    expect(column(6)).toContain('23');
    expect(column(7)).toEqual(['h2']);
    expect(column(8)).toContain('0x0304');
    const raw = readFileSync(pcap);
    expect(raw.includes('POST /')).toBe(false);
    expect(raw.includes(body.subarray(0, 64))).toBe(false);
  });

  it('an unaware app asking for IPv6 by service name gets the AAAA VIP and reaches the app over IPv6', async () => {
    const outbound = zt('h1').next((l) => l.scope === 'access' && l.direction === 'outbound');
    expect(await curl('h1-p1', '-6', 'http://echo.demo:8080/')).toEqual({ code: 0, out: 'echo saw echo.demo:8080\n' });
    await expect(outbound).resolves.toMatchObject({
      'src.addr': expect.stringMatching(/^\[fd00:248:1::11\]:\d+$/),
      'dst.addr': `[${ECHO6}]:8080`,
      'dst.service': 'echo.demo.svc.cluster.local',
    });
  });

  it("a pod reaches another host's pod by its IPv6 address", async () => {
    const inbound = zt('h2').next((l) => l.scope === 'access' && l.direction === 'inbound');
    expect(await curl('h1-p1', `http://[${ECHO6}]:8080/`)).toEqual({
      code: 0,
      out: `echo saw [${ECHO6}]:8080\n`,
    });
    await expect(inbound).resolves.toMatchObject({ 'src.identity': CLIENT_ID, 'dst.addr': `[${ECHO6}]:8080` });
    expect((await inbound).error).toBeUndefined();
  });

  it("the destination ztunnel enforces L4 policy on the source pod's identity over IPv6: denied, then allowed", async () => {
    const h2 = zt('h2');
    const denied = h2.next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
    const r = await curl('h1-p2', `http://[${VIP6}]:8080/`);
    expect(r.code).not.toBe(0);
    expect(r.out).toBe('');
    await expect(denied).resolves.toMatchObject({ 'src.identity': BLOCKED_ID, 'dst.addr': `[${ECHO6}]:8080` });

    const updated = h2.next((l) => l.msg === 'configuration updated' && l.type === 'Authorization');
    rmSync(join(config, 'deny.yaml'));
    await updated;
    const allowed = h2.next((l) => l.scope === 'access' && l.direction === 'inbound');
    expect(await curl('h1-p2', `http://[${VIP6}]:8080/`)).toEqual({ code: 0, out: `echo saw [${VIP6}]:8080\n` });
    await expect(allowed).resolves.toMatchObject({ 'src.identity': BLOCKED_ID });
    expect((await allowed).error).toBeUndefined();
  });

  it("two pods on one host over IPv6: through the host's own 15008 (the ip6tables OUTPUT redirect), with identity", async () => {
    const inbound = zt('h1').next((l) => l.scope === 'access' && l.direction === 'inbound');
    expect(await curl('h1-p1', `http://[${BLOCKED6}]:8080/`)).toEqual({
      code: 0,
      out: `local saw [${BLOCKED6}]:8080\n`,
    });
    await expect(inbound).resolves.toMatchObject({
      'src.identity': CLIENT_ID,
      'dst.addr': `[${BLOCKED6}]:8080`,
      'dst.identity': BLOCKED_ID,
    });
    expect((await inbound).error).toBeUndefined();
  });

  it("plaintext over IPv6 from outside the mesh is captured on the pod's host (15006) by its original destination", async () => {
    // h1's own namespace is no pod: its curl is not captured on h1, and h2 redirects it to 15006.
    const logged = zt('h2').next((l) => l.scope === 'access' && l.direction === 'inbound');
    expect(await curl('h1', `http://[${ECHO6}]:8080/`)).toEqual({ code: 0, out: `echo saw [${ECHO6}]:8080\n` });
    const line = await logged;
    expect(line).toMatchObject({
      'src.addr': expect.stringMatching(/^\[fd00:248::11\]:\d+$/),
      'dst.addr': `[${ECHO6}]:8080`,
      'dst.workload': 'echo',
    });
    expect(line['src.identity']).toBeUndefined();
    expect(line.error).toBeUndefined();
  });

  it('IPv4 still goes through the same dual-stack ztunnels', async () => {
    expect(await curl('h1-p1', `http://${VIP4}:8080/`)).toEqual({ code: 0, out: `echo saw ${VIP4}:8080\n` });
  });
});
