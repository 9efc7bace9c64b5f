/**
 * Root-only: the multi-host harness (scripts/netns-mesh.sh) and the capture rules (iptables-rules.ts) in
 * real network namespaces. Skipped with the reason printed where root, ip or iptables are missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { captureRules, installCaptureRules, type Runner, removeCaptureRules } from '../src/iptables-rules.js';
import { hasCommand, REPO_ROOT, rootTestUnavailable, ZTUNNEL_CLI } from './helpers/root-tools.js';

const SCRIPT = join(REPO_ROOT, 'scripts', 'netns-mesh.sh');
const PREFIX = `ambj${process.pid % 100000}`;

const reason = rootTestUnavailable(['ip', 'iptables', 'bash'], 'iproute2 / iptables');
if (reason) console.warn(`netns harness tests skipped: ${reason}`);
const d = reason ? describe.skip : describe;
const ip6Reason = hasCommand('ip6tables') ? undefined : 'needs ip6tables (Debian: iptables)';
if (!reason && ip6Reason) console.warn(`netns harness IPv6 rules test skipped: ${ip6Reason}`);

function mesh(...args: string[]): string {
  return execFileSync(SCRIPT, args, { encoding: 'utf8', env: { ...process.env, NETNS_MESH_PREFIX: PREFIX } });
}

function inNs(name: string, ...argv: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('ip', ['netns', 'exec', `${PREFIX}-${name}`, ...argv], { timeout: 20_000 }, (err, out, stderr) =>
      err ? reject(new Error(`${argv.join(' ')} in ${name}: ${err.message} ${stderr}`)) : resolve(out),
    ),
  );
}

/** A one-shot TCP server in a namespace: prints READY, answers `<tag> <peer address>` to one client. */
function serveOnce(
  name: string,
  host: string,
  port: number,
  tag: string,
): { ready: Promise<void>; done: Promise<string> } {
  const script = `const s=require('node:net').createServer((c)=>{c.end('${tag} '+c.remoteAddress);s.close()});s.listen(${port},'${host}',()=>console.log('READY'));`;
  const child = require('node:child_process').spawn('ip', [
    'netns',
    'exec',
    `${PREFIX}-${name}`,
    process.execPath,
    '-e',
    script,
  ]);
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code: number) => reject(new Error(`server in ${name} exited ${code}`)));
  });
  const done = new Promise<string>((resolve) => child.once('exit', () => resolve('')));
  return { ready, done };
}

function fetchFrom(name: string, host: string, port: number): Promise<string> {
  const script = `const c=require('node:net').connect(${port},'${host}');let t='';c.setEncoding('utf8');c.on('data',(d)=>t+=d);c.on('end',()=>{process.stdout.write(t)});c.on('error',(e)=>{console.error(e.message);process.exit(1)});`;
  return inNs(name, process.execPath, '-e', script);
}

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}-`));
}

d('netns-mesh.sh harness', () => {
  beforeAll(() => {
    mesh('up', '2', '2');
  });
  afterAll(() => {
    mesh('down');
  });

  it('builds hosts, pods and a control-plane host', () => {
    expect(namespaces().sort()).toEqual(
      ['cp', 'h1', 'h1-p1', 'h1-p2', 'h2', 'h2-p1', 'h2-p2', 'net'].map((n) => `${PREFIX}-${n}`).sort(),
    );
  });

  it('routes pod to pod across hosts, and on the same host, with pod addresses preserved', async () => {
    const remote = serveOnce('h2-p1', '0.0.0.0', 8080, 'h2-p1');
    await remote.ready;
    expect(await fetchFrom('h1-p1', '10.248.2.11', 8080)).toBe('h2-p1 10.248.1.11');
    const local = serveOnce('h1-p2', '0.0.0.0', 8080, 'h1-p2');
    await local.ready;
    expect(await fetchFrom('h1-p1', '10.248.1.12', 8080)).toBe('h1-p2 10.248.1.11');
  });

  it('reaches the control plane from every host', async () => {
    for (const h of ['h1', 'h2']) {
      const cp = serveOnce('cp', '10.248.0.2', 15012, 'cp');
      await cp.ready;
      expect(await fetchFrom(h, '10.248.0.2', 15012)).toMatch(/^cp 10\.248\.0\.1[12]$/);
    }
  });

  it('gives pods a resolv.conf naming their host', async () => {
    expect(await inNs('h2-p1', 'cat', '/etc/resolv.conf')).toMatch(/^nameserver 10\.248\.2\.1$/m);
  });

  it('capture rules: install is idempotent, redirects pod traffic to 15001, remove leaves nothing', async () => {
    const rules = captureRules({ podInterfaces: 'p+', localPodCidrs: ['10.248.1.0/24'] });
    const ipt = (...args: string[]) => inNs('h1', 'iptables', ...args);
    // iptables and iptables-restore (which reads its rules on stdin) in h1.
    const run: Runner = (cmd, args, input) =>
      new Promise((resolve) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', `${PREFIX}-h1`, cmd, ...args],
          { timeout: 20_000 },
          (err, o, e) => resolve({ ok: !err, stdout: String(o), stderr: String(e) || (err?.message ?? '') }),
        );
        // A command that exits without reading its input (iptables -C) fails or succeeds on its own.
        child.stdin?.on('error', () => {});
        child.stdin?.end(input ?? '');
      });
    await installCaptureRules(rules, 'iptables', run);
    const first = await ipt('-t', 'nat', '-S');
    await installCaptureRules(rules, 'iptables', run);
    expect(await ipt('-t', 'nat', '-S')).toBe(first);
    expect(first).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
    expect(first).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001');

    // An app in a pod connects to a service VIP nobody owns; the host's listener on 15001 gets it.
    const capture = serveOnce('h1', '0.0.0.0', 15001, 'captured');
    await capture.ready;
    expect(await fetchFrom('h1-p1', '10.96.0.10', 80)).toBe('captured 10.248.1.11');

    await removeCaptureRules(rules, 'iptables', run);
    expect(await ipt('-t', 'nat', '-S')).not.toContain('AMBIENT');
    await removeCaptureRules(rules, 'iptables', run);
  });

  (ip6Reason ? it.skip : it)(
    'ztunnel iptables install|remove on a dual-stack node: IPv4 and IPv6 rules, idempotent, IPv6 pod traffic captured, nothing left',
    async () => {
      // IPv6 for h1 and its pod p1 (the harness itself is IPv4): no DAD, so the addresses are usable at once.
      await inNs('h1', 'ip', '-6', 'addr', 'add', 'fd00:248:1::1/128', 'dev', 'p1', 'nodad');
      await inNs('h1', 'ip', '-6', 'route', 'add', 'fd00:248:1::11/128', 'dev', 'p1');
      await inNs('h1-p1', 'ip', '-6', 'addr', 'add', 'fd00:248:1::11/128', 'dev', 'eth0', 'nodad');
      await inNs('h1-p1', 'ip', '-6', 'route', 'add', 'fd00:248:1::1', 'dev', 'eth0');
      await inNs('h1-p1', 'ip', '-6', 'route', 'add', 'default', 'via', 'fd00:248:1::1', 'dev', 'eth0');
      const rules = async () => [
        await inNs('h1', 'iptables', '-t', 'nat', '-S'),
        await inNs('h1', 'ip6tables', '-t', 'nat', '-S'),
      ];
      const before = await rules();
      const args = ['--pod-interfaces', 'p+', '--pod-cidr', '10.248.1.0/24', '--pod-cidr', 'fd00:248:1::/64'];
      expect(await inNs('h1', ...ZTUNNEL_CLI, 'iptables', 'install', ...args)).toBe('ztunnel iptables install: done\n');
      const [v4, v6] = await rules();
      expect(v4).toContain('-A AMBIENT_PREROUTING -d 10.248.1.0/24 -p tcp -j REDIRECT --to-ports 15006');
      expect(v4).not.toContain('fd00:');
      expect(v6).toContain('-A PREROUTING -j AMBIENT_PREROUTING');
      expect(v6).toContain('-A OUTPUT -j AMBIENT_OUTPUT');
      expect(v6).toContain('-A AMBIENT_PREROUTING -m mark --mark 0x539/0x539 -j RETURN');
      expect(v6).toContain('-A AMBIENT_PREROUTING -i p+ -p tcp -j REDIRECT --to-ports 15001');
      expect(v6).toContain('-A AMBIENT_PREROUTING -d fd00:248:1::/64 -p tcp -j REDIRECT --to-ports 15006');
      expect(v6).toContain(
        '-A AMBIENT_OUTPUT -d fd00:248:1::/64 -p tcp -m tcp --dport 15008 -j REDIRECT --to-ports 15008',
      );
      expect(v6).not.toContain('10.248.');
      await inNs('h1', ...ZTUNNEL_CLI, 'iptables', 'install', ...args);
      expect(await rules()).toEqual([v4, v6]);

      // An app in the pod connects to an IPv6 service address nobody owns; the host's [::]:15001 gets it.
      const capture = serveOnce('h1', '::', 15001, 'captured');
      await capture.ready;
      expect(await fetchFrom('h1-p1', 'fd00:96::10', 80)).toBe('captured fd00:248:1::11');

      expect(await inNs('h1', ...ZTUNNEL_CLI, 'iptables', 'remove', ...args)).toBe('ztunnel iptables remove: done\n');
      expect(await rules()).toEqual(before);
      await inNs('h1', ...ZTUNNEL_CLI, 'iptables', 'remove', ...args);
      expect(await rules()).toEqual(before);
    },
  );

  it('down removes everything with the prefix, and is safe to run twice', () => {
    mesh('down');
    mesh('down');
    expect(namespaces()).toEqual([]);
    mesh('up', '2', '2');
  });
});

d('netns-mesh.sh harness, dual-stack (NETNS_MESH_IPV6=1)', () => {
  const mesh6 = (...args: string[]) =>
    execFileSync(SCRIPT, args, {
      encoding: 'utf8',
      env: { ...process.env, NETNS_MESH_PREFIX: PREFIX, NETNS_MESH_IPV6: '1' },
    });
  let status = '';
  beforeAll(() => {
    status = mesh6('up', '2', '2');
  });
  afterAll(() => {
    mesh('down');
  });

  it('adds the IPv6 plan next to the unchanged IPv4 one', () => {
    const line = (ns: string) => status.split('\n').find((l) => l.startsWith(`${PREFIX}-${ns} `)) ?? '';
    expect(line('cp')).toMatch(/eth0=10\.248\.0\.2\/24 eth0=fd00:248::2\/64/);
    expect(line('h2')).toContain('eth0=10.248.0.12/24 p1=10.248.2.1/32 p2=10.248.2.1/32 ');
    expect(line('h2')).toContain('eth0=fd00:248::12/64 p1=fd00:248:2::1/128 p2=fd00:248:2::1/128');
    expect(line('h1-p2')).toMatch(/eth0=10\.248\.1\.12\/32 eth0=fd00:248:1::12\/128/);
  });

  it('routes pod to pod over IPv6 across hosts and on one host, and hosts to the control plane, addresses preserved', async () => {
    const remote = serveOnce('h2-p1', 'fd00:248:2::11', 8080, 'h2-p1');
    await remote.ready;
    expect(await fetchFrom('h1-p1', 'fd00:248:2::11', 8080)).toBe('h2-p1 fd00:248:1::11');
    const local = serveOnce('h1-p2', 'fd00:248:1::12', 8080, 'h1-p2');
    await local.ready;
    expect(await fetchFrom('h1-p1', 'fd00:248:1::12', 8080)).toBe('h1-p2 fd00:248:1::11');
    const cp = serveOnce('cp', 'fd00:248::2', 15012, 'cp');
    await cp.ready;
    expect(await fetchFrom('h2', 'fd00:248::2', 15012)).toBe('cp fd00:248::12');
    // IPv4 is as before.
    const v4 = serveOnce('h2-p1', '10.248.2.11', 8080, 'h2-p1');
    await v4.ready;
    expect(await fetchFrom('h1-p1', '10.248.2.11', 8080)).toBe('h2-p1 10.248.1.11');
  });

  it('refuses a NETNS_MESH_IPV6 other than 0 or 1 before touching anything', () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(SCRIPT, ['up', '1', '1'], {
        encoding: 'utf8',
        stdio: 'pipe',
        env: { ...process.env, NETNS_MESH_PREFIX: PREFIX, NETNS_MESH_IPV6: 'yes' },
      });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(2);
    expect(err.stderr).toContain('NETNS_MESH_IPV6 must be 0 or 1');
    expect(namespaces()).toHaveLength(8);
  });
});
