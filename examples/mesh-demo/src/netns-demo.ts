/**
 * mesh-demo --netns (root): the mesh with transparent capture across hosts that are really separate.
 *
 *   ambd-cp 10.248.0.2   control plane (xDS + CA on :15012)
 *      │ bridge 10.248.0.0/24
 *   ambd-h1 10.248.0.11  ztunnel ── veth ── ambd-h1-p1 10.248.1.11  curl http://echo.demo:8080/
 *   ambd-h2 10.248.0.12  ztunnel ── veth ── ambd-h2-p1 10.248.2.11  a plain HTTP echo on :8080
 *
 * Every name is a network namespace built by scripts/netns-mesh.sh. Each host runs a real ztunnel process with
 * the capture rules from `ztunnel iptables install`, the outbound capture listener and the DNS proxy. The apps
 * know nothing of the mesh. Everything is torn down at the end, after a failure, and on Ctrl-C / SIGTERM.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsPreflight, preflightReport } from './netns-preflight.js';
import { DENY_YAML } from './policies.js';
import { Proc, runTs, tsCommand } from './processes.js';

export interface NetnsDemoOptions {
  /** The repository root (scripts/, packages/). */
  root: string;
  /** Names every namespace: <prefix>-cp, <prefix>-h1, … (lowercase letters and digits). */
  prefix: string;
  /** Keep the mesh running after the walk-through until Ctrl-C. */
  keep: boolean;
}

const CP = '10.248.0.2';
const HOSTS = [
  { name: 'h1', ip: '10.248.0.11', podCidr: '10.248.1.0/24' },
  { name: 'h2', ip: '10.248.0.12', podCidr: '10.248.2.0/24' },
] as const;
const CLIENT_IP = '10.248.1.11';
const ECHO_IP = '10.248.2.11';
const VIP = '10.96.8.1';
const URL = 'http://echo.demo:8080/';
const ZT_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
const STEP_TIMEOUT_MS = 20_000;
// `netns-mesh.sh down` deletes a handful of namespaces; far longer than that means it hangs, and teardown must end.
const MESH_DOWN_TIMEOUT_MS = 30_000;

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (who: string, what: string) => console.log(`  ${who.padEnd(12)} ${what}`);

/** Runs the walk-through; resolves with the process exit code (0 ok, 1 failed, 2 cannot run here, 128 + signal number when interrupted). */
export async function runNetnsDemo(options: NetnsDemoOptions): Promise<number> {
  const missing = netnsPreflight();
  if (missing.length > 0) {
    console.error(preflightReport(missing));
    return 2;
  }
  if (!/^[a-z0-9]+$/.test(options.prefix)) {
    console.error(
      `mesh-demo --netns: the namespace prefix ${JSON.stringify(options.prefix)} must be lowercase letters and digits`,
    );
    return 2;
  }
  return new NetnsDemo(options).run();
}

class Interrupted extends Error {}

class NetnsDemo {
  private readonly script: string;
  private readonly dir = mkdtempSync(join(tmpdir(), 'ambient-mesh-demo-netns-'));
  private readonly procs: Proc[] = [];
  private readonly others: ChildProcess[] = [];
  private readonly abort = new AbortController();
  private stepNo = 0;
  private meshCreated = false;
  private tornDown = false;
  private teardownDone?: Promise<string[]>;
  private interrupted?: NodeJS.Signals;
  private keeping = false;

  constructor(private readonly options: NetnsDemoOptions) {
    this.script = join(options.root, 'scripts', 'netns-mesh.sh');
  }

  async run(): Promise<number> {
    const onSignal = (signal: NodeJS.Signals) => {
      if (this.interrupted) {
        // A second signal: the user will not wait for the graceful teardown. Kill and remove everything now.
        console.error(`\n${signal} again: killing every process and removing the namespaces now`);
        this.teardownSync();
        process.exit(128 + (constants.signals[signal] ?? 0));
      }
      this.interrupted = signal;
      if (!this.keeping) console.error(`\n${signal}: stopping; tearing everything down`);
      this.abort.abort(new Interrupted(`interrupted by ${signal}`));
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, onSignal);
    // Last resort when the process leaves by any other path: nothing may stay behind.
    const onExit = () => this.teardownSync();
    process.on('exit', onExit);
    let code: number;
    try {
      await this.walk();
      code = 0;
    } catch (err) {
      if (this.interrupted) {
        code = this.keeping ? 0 : 128 + (constants.signals[this.interrupted] ?? 0);
      } else {
        code = 1;
        console.error(`\nmesh-demo --netns failed: ${(err as Error).stack ?? String(err)}`);
        for (const p of this.procs) {
          const tail = p.logs.slice(-8).map((l) => JSON.stringify(l));
          if (tail.length) console.error(`--- last log lines of ${p.name}:\n${tail.join('\n')}`);
        }
      }
    }
    this.step('Teardown: stop every process, remove every namespace (their iptables rules go with them)');
    const left = await this.teardown();
    if (left.length > 0) {
      console.error(`  teardown left namespaces behind: ${left.join(' ')}`);
      code = code || 1;
    } else {
      say('teardown', `processes stopped; no namespace named ${this.options.prefix}-* is left; ${this.dir} removed`);
    }
    process.off('exit', onExit);
    for (const s of signals) process.off(s, onSignal);
    if (code === 0) {
      console.log(
        `\n${bold('done')}: an unmodified curl reached a service on another host by name, captured transparently, carried over mTLS HBONE, denied and allowed again by L4 policy.`,
      );
    }
    return code;
  }

  private async walk(): Promise<void> {
    const P = this.options.prefix;
    console.log(bold('ambient-ts mesh demo --netns') + dim(`  (namespaces ${P}-*, working directory ${this.dir})`));

    this.step('Preflight');
    say('ok', 'root, bash, ip, iptables, iptables-restore, curl, tcpdump and the SO_ORIGINAL_DST addon are all here');
    const existing = this.namespaces();
    if (existing.length > 0) {
      throw new Error(
        `namespaces ${existing.join(' ')} already exist (another demo running, or one that was killed with SIGKILL); ` +
          `remove them with: NETNS_MESH_PREFIX=${P} ${this.script} down`,
      );
    }

    this.step('A network of hosts, built from network namespaces: scripts/netns-mesh.sh up 2 1');
    this.meshCreated = true;
    const status = await this.mesh('up', '2', '1');
    for (const line of status.trim().split('\n')) console.log(dim(`    ${line}`));
    say('network', `${P}-cp (control plane) and hosts ${P}-h1, ${P}-h2 on one bridge; each host has one pod`);
    say('network', "nothing is attached to the machine's own namespace: no packet leaves the machine");

    this.step('The mesh configuration: Kubernetes-style YAML the control plane watches');
    const configDir = join(this.dir, 'config');
    const stateDir = join(this.dir, 'state');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'mesh.yaml'), MESH_YAML);
    writeFileSync(
      join(this.dir, 'tokens.yaml'),
      `tokens:\n${HOSTS.map((h) => `- {token: ${token(h.name)}, identity: "${ZT_ID}", kind: ztunnel, node: ${h.name}}`).join('\n')}\n`,
      { mode: 0o600 },
    );
    for (const h of HOSTS) writeFileSync(join(this.dir, `token-${h.name}`), token(h.name), { mode: 0o600 });
    say(
      'config',
      `namespace demo: Pod client on h1 (${CLIENT_IP}), Pod echo on h2 (${ECHO_IP}), Service echo ${VIP}:8080`,
    );

    this.step(`The control plane on its own host: xDS + CA on ${CP}:15012`);
    const cp = this.runTsIn('cp', 'control-plane', 'packages/control-plane/src/cli.ts', [
      '--config-dir',
      configDir,
      '--state-dir',
      stateDir,
      '--tokens',
      join(this.dir, 'tokens.yaml'),
      '--listen',
      `${CP}:15012`,
      '--monitoring-listen',
      '127.0.0.1:15014',
      '--serving-ip',
      CP,
      '--debounce-ms',
      '50',
    ]);
    await this.within(
      cp.waitFor((l) => l.msg === 'control plane serving'),
      'the control plane to serve',
    );
    say('control', `serving on ${CP}:15012; trust bundle in state/root-cert.pem`);

    this.step('Capture rules on each host: ztunnel iptables install');
    const installed = await Promise.all(
      HOSTS.map(async (h) => {
        const argv = ['iptables', 'install', '--pod-interfaces', 'p+', '--pod-cidr', h.podCidr];
        const r = await this.inNs(h.name, tsCommand(this.bin('ztunnel'), argv));
        if (r.code !== 0) throw new Error(`ztunnel iptables install on ${h.name} failed (${r.code}): ${r.out}${r.err}`);
        return [h.name, `ztunnel ${argv.join(' ')} → ${r.out.trim().replace(/^ztunnel iptables install: /, '')}`];
      }),
    );
    for (const [host, line] of installed) say(host as string, line as string);
    const rules = await this.inNs('h1', ['iptables', '-t', 'nat', '-S', 'AMBIENT_PREROUTING']);
    for (const line of rules.out.trim().split('\n')) console.log(dim(`    h1: ${line}`));

    this.step('One ztunnel per host: HBONE :15008, outbound capture :15001, DNS proxy :15053');
    const zt = new Map<string, Proc>();
    for (const h of HOSTS) {
      const z = this.runTsIn(h.name, `ztunnel ${h.name}`, 'packages/ztunnel/src/cli.ts', [
        '--control-plane',
        `${CP}:15012`,
        '--trust-bundle',
        join(stateDir, 'root-cert.pem'),
        '--token-file',
        join(this.dir, `token-${h.name}`),
        '--node',
        h.name,
        '--node-ip',
        h.ip,
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
      zt.set(h.name, z);
    }
    const z1 = zt.get('h1') as Proc;
    const z2 = zt.get('h2') as Proc;
    for (const h of HOSTS) {
      const z = zt.get(h.name) as Proc;
      const ready = await this.within(
        z.waitFor((l) => l.msg === 'ready'),
        `ztunnel ${h.name} to be ready`,
      );
      const certs = z.logs.filter((l) => l.msg === 'certificate issued').map((l) => String(l.identity));
      say(
        h.name,
        `ready at ${h.ip}; certificates for ${certs.join(', ') || `${ready.local_workloads} local workload(s)`}`,
      );
    }
    const metricsAddr = String((await z2.waitFor((l) => l.msg === 'started')).metrics);

    this.step(`A plain app on h2: an HTTP echo in pod h2-p1 (${ECHO_IP}:8080), knowing nothing about the mesh`);
    const echo = new Proc(
      'echo app',
      spawn('ip', ['netns', 'exec', `${P}-h2-p1`, process.execPath, '-e', ECHO_APP], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    this.procs.push(echo);
    await this.within(
      echo.waitFor((l) => l.msg === 'listening'),
      'the echo app to listen',
    );
    say('echo', 'listening; it answers with the Host header and the address the request came from');

    this.step(`An unmodified client: curl ${URL} in pod h1-p1 on the other host`);
    const pcap = join(this.dir, 'h1-eth0.pcap');
    const dump = await this.startTcpdump(pcap);
    const first = await this.curl();
    dump.kill('SIGINT');
    await this.within(
      new Promise((r) => (dump.exitCode === null ? dump.once('exit', r) : r(undefined))),
      'tcpdump to stop',
    );
    if (first.code !== 0) throw new Error(`curl failed (${first.code}): ${first.err.trim()}`);
    say('curl', `${first.body.trim()}`);
    say(
      'dns',
      `curl connected to ${first.remote}: h1's ztunnel DNS proxy answered echo.demo with the service VIP (the pod's resolver is its host)`,
    );
    const outbound = await this.within(
      z1.waitFor((l) => l.scope === 'access' && l.direction === 'outbound'),
      "h1's outbound access log",
    );
    say(
      'h1 ztunnel',
      `captured ${outbound['src.addr']} → ${outbound['dst.addr']} (${outbound['dst.service']}), sent as ${outbound['src.identity']} over HBONE to ${outbound['dst.hbone_addr']}`,
    );

    this.step('What the server side saw');
    const inbound = await this.within(
      z2.waitFor((l) => l.scope === 'access' && l.direction === 'inbound'),
      "h2's inbound access log",
    );
    say('h2 ztunnel', `peer identity ${inbound['src.identity']} (verified mTLS client certificate)`);
    say('h2 ztunnel', `→ ${inbound['dst.identity']} at ${inbound['dst.addr']}`);
    const seen = await this.within(
      echo.waitFor((l) => l.msg === 'request'),
      'the echo app to log the request',
    );
    say('echo', `plain HTTP ${seen.method} ${seen.path} Host: ${seen.host} from ${seen.from} (its own host's ztunnel)`);
    const metrics = await this.inNs('h2', ['curl', '-sS', '--max-time', '5', `http://${metricsAddr}/metrics`]);
    const opened = metrics.out
      .split('\n')
      .find((l) => l.startsWith('istio_tcp_connections_opened_total{') && l.includes('reporter="destination"'));
    if (opened) say('h2 metrics', shortMetric(opened));

    this.step("On the wire between hosts: tcpdump on h1's eth0 during that curl (control plane :15012 left out)");
    this.showCapture(pcap);

    this.step("An L4 DENY AuthorizationPolicy for the client's identity, through the control plane's config");
    const policyFile = join(configDir, 'deny-client.yaml');
    const applied = z2.next(
      (l) =>
        l.msg === 'configuration updated' &&
        l.type === 'Authorization' &&
        String(l.updated ?? '').includes('deny-client'),
    );
    writeFileSync(policyFile, DENY_YAML);
    console.log(dim(DENY_YAML.trimEnd().replace(/^/gm, '    ')));
    await this.within(applied, 'h2 to receive the policy');
    say('h2 ztunnel', 'received the policy over xDS');
    const deniedLog = z2.next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
    const denied = await this.curl();
    if (denied.code === 0) throw new Error(`curl succeeded although the policy denies it: ${denied.body}`);
    say('curl', `failed as expected (exit ${denied.code}): ${denied.err.trim() || 'no reply'}`);
    const why = await this.within(deniedLog, "h2's access log of the denied connection");
    say('h2 ztunnel', `${why['src.identity']}: ${why.error}`);

    this.step('The policy removed: the same curl succeeds again');
    const removed = z2.next(
      (l) =>
        l.msg === 'configuration updated' &&
        l.type === 'Authorization' &&
        String(l.removed ?? '').includes('deny-client'),
    );
    rmSync(policyFile);
    await this.within(removed, 'h2 to drop the policy');
    const again = await this.curl();
    if (again.code !== 0) throw new Error(`curl failed after the policy was removed (${again.code}): ${again.err}`);
    say('curl', again.body.trim());

    if (this.options.keep) {
      this.step('Keeping the mesh running (Ctrl-C to stop and tear down)');
      say('try', `ip netns exec ${P}-h1-p1 curl ${URL}`);
      say('try', `ip netns exec ${P}-h1 tcpdump -ni eth0 'not port 15012'`);
      say('config', `edit YAML in ${configDir} and watch the ztunnels follow`);
      this.keeping = true;
      await new Promise<void>((r) => this.abort.signal.addEventListener('abort', () => r(), { once: true }));
      return;
    }

    this.step('Capture rules removed: ztunnel iptables remove');
    const removedRules = await Promise.all(
      HOSTS.map(async (h) => {
        const argv = ['iptables', 'remove', '--pod-interfaces', 'p+', '--pod-cidr', h.podCidr];
        const r = await this.inNs(h.name, tsCommand(this.bin('ztunnel'), argv));
        if (r.code !== 0) throw new Error(`ztunnel iptables remove on ${h.name} failed (${r.code}): ${r.out}${r.err}`);
        const nat = await this.inNs(h.name, ['iptables', '-t', 'nat', '-S']);
        const left = nat.out.split('\n').filter((l) => l.includes('AMBIENT'));
        if (left.length > 0) throw new Error(`rules left on ${h.name} after remove:\n${left.join('\n')}`);
        return [h.name, `ztunnel ${argv.join(' ')} → done; iptables -t nat -S shows no AMBIENT chain`];
      }),
    );
    for (const [host, line] of removedRules) say(host as string, line as string);
  }

  private step(title: string): void {
    console.log(`\n${bold(`── ${++this.stepNo}. ${title}`)}`);
  }

  private bin(name: 'ztunnel' | 'control-plane'): string {
    return join(this.options.root, 'packages', name, 'src', 'cli.ts');
  }

  private runTsIn(ns: string, name: string, script: string, args: string[]): Proc {
    const p = runTs(name, join(this.options.root, script), args, this.options.root, [
      'ip',
      'netns',
      'exec',
      `${this.options.prefix}-${ns}`,
    ]);
    this.procs.push(p);
    return p;
  }

  /** Runs a command in one of the mesh's namespaces (cp, h1, h1-p1, …) and collects its output. */
  private inNs(ns: string, argv: string[], timeout = 30_000): Promise<{ code: number; out: string; err: string }> {
    return new Promise((resolve, reject) =>
      execFile(
        'ip',
        ['netns', 'exec', `${this.options.prefix}-${ns}`, ...argv],
        { cwd: this.options.root, timeout, signal: this.abort.signal },
        (err, out, errOut) => {
          if (this.abort.signal.aborted) return reject(this.abort.signal.reason);
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, out: String(out), err: String(errOut) });
        },
      ),
    );
  }

  private mesh(...args: string[]): Promise<string> {
    return new Promise((resolve, reject) =>
      execFile(
        'bash',
        [this.script, ...args],
        { env: { ...process.env, NETNS_MESH_PREFIX: this.options.prefix }, signal: this.abort.signal },
        (err, out, errOut) =>
          err
            ? reject(new Error(`scripts/netns-mesh.sh ${args.join(' ')} failed: ${errOut || err.message}`))
            : resolve(out),
      ),
    );
  }

  /** curl in the client pod, as any app would: by name, no proxy settings. */
  private async curl(): Promise<{ code: number; body: string; remote: string; err: string }> {
    const r = await this.inNs('h1-p1', ['curl', '-sS', '--max-time', '10', '-w', '\n%{remote_ip}:%{remote_port}', URL]);
    const cut = r.out.lastIndexOf('\n');
    return { code: r.code, body: r.out.slice(0, cut), remote: r.out.slice(cut + 1), err: r.err };
  }

  private async startTcpdump(pcap: string): Promise<ChildProcess> {
    const dump = spawn(
      'ip',
      [
        'netns',
        'exec',
        `${this.options.prefix}-h1`,
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
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.others.push(dump);
    let text = '';
    await this.within(
      new Promise<void>((resolve, reject) => {
        dump.stderr?.setEncoding('utf8').on('data', (c: string) => {
          text += c;
          if (text.includes('listening on')) resolve();
        });
        dump.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${text}`)));
      }),
      'tcpdump to listen',
    );
    return dump;
  }

  /** Prints the capture and fails the demo unless it holds only TLS on port 15008. */
  private showCapture(pcap: string): void {
    const lines = execFileSync('tcpdump', ['-nn', '-q', '-r', pcap], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n')
      .filter(Boolean);
    for (const l of lines.slice(0, 6)) console.log(dim(`    ${l.replace(/^\S+ /, '')}`));
    if (lines.length > 6) console.log(dim(`    … ${lines.length - 6} more`));
    const ports = new Set<string>();
    for (const l of lines) {
      const m = / IP6? \S+\.(\d+) > \S+\.(\d+): (\w+)/.exec(l);
      if (!m) throw new Error(`unexpected packet between hosts: ${l}`);
      if (m[3] !== 'tcp') throw new Error(`a non-TCP packet crossed between hosts: ${l}`);
      ports.add(m[1] === '15008' || m[2] === '15008' ? '15008' : `${m[1]}/${m[2]}`);
    }
    if (lines.length === 0) throw new Error('tcpdump saw nothing between the hosts');
    if (ports.size !== 1 || !ports.has('15008')) throw new Error(`ports other than 15008 crossed: ${[...ports]}`);
    const raw = readFileSync(pcap);
    const hello = raw.includes(Buffer.from([0x16, 0x03, 0x01]));
    const clear = ['GET /', 'echo.demo', '"service":"echo"'].filter((s) => raw.includes(s));
    if (!hello) throw new Error('no TLS handshake record in the capture');
    if (clear.length > 0) throw new Error(`the capture holds plaintext: ${clear.join(', ')}`);
    say('wire', `${lines.length} packets, every one TCP to or from port 15008 (HBONE)`);
    say('wire', 'a TLS handshake (ClientHello) opens it; no HTTP, Host header or response body in clear');
    const tls = this.tlsSummary(pcap);
    if (tls) say('tshark', tls);
  }

  /** tshark's view of the handshake, when tshark is installed (optional). */
  private tlsSummary(pcap: string): string | undefined {
    try {
      const out = execFileSync(
        'tshark',
        [
          '-r',
          pcap,
          '-d',
          'tcp.port==15008,tls',
          '-Y',
          'tls.handshake.type == 1',
          '-T',
          'fields',
          '-e',
          'ip.src',
          '-e',
          'ip.dst',
          '-e',
          'tcp.dstport',
          '-e',
          'tls.handshake.extensions_alpn_str',
          '-e',
          'tls.handshake.extensions.supported_version',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const [src, dst, port, alpn, versions] = (out.trim().split('\n')[0] ?? '').split('\t');
      if (!src) return undefined;
      const v13 = (versions ?? '').split(',').includes('0x0304') ? 'TLS 1.3' : `versions ${versions}`;
      return `ClientHello ${src} → ${dst}:${port}, ALPN ${alpn || '?'}, offers ${v13}, no SNI`;
    } catch {
      return undefined;
    }
  }

  /** Waits for `p`, failing after `ms` with what was awaited, or at once when interrupted. */
  private within<T>(p: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> {
    const signal = this.abort.signal;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      const t = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
      t.unref();
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(resolve, reject).finally(() => {
        clearTimeout(t);
        signal.removeEventListener('abort', onAbort);
      });
    });
  }

  private namespaces(): string[] {
    const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    return out
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${this.options.prefix}-`));
  }

  /** Stops everything and removes the namespaces; resolves with any namespace that is still there. */
  private teardown(): Promise<string[]> {
    this.teardownDone ??= (async () => {
      await Promise.allSettled(this.procs.map((p) => p.stop(3000)));
      for (const c of this.others) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      if (this.meshCreated) {
        await new Promise<void>((resolve) =>
          execFile(
            'bash',
            [this.script, 'down'],
            {
              env: { ...process.env, NETNS_MESH_PREFIX: this.options.prefix },
              timeout: MESH_DOWN_TIMEOUT_MS,
              killSignal: 'SIGKILL',
            },
            (err, _out, errOut) => {
              if (err) console.error(`  scripts/netns-mesh.sh down failed: ${errOut || err.message}`);
              resolve();
            },
          ),
        );
      }
      rmSync(this.dir, { recursive: true, force: true });
      this.tornDown = true;
      return this.namespaces();
    })();
    return this.teardownDone;
  }

  /** The synchronous version, for a process that is exiting before teardown() finished. */
  private teardownSync(): void {
    if (this.tornDown) return;
    for (const p of this.procs) p.child.kill('SIGKILL');
    for (const c of this.others) c.kill('SIGKILL');
    if (this.meshCreated) {
      try {
        execFileSync('bash', [this.script, 'down'], {
          env: { ...process.env, NETNS_MESH_PREFIX: this.options.prefix },
          stdio: 'ignore',
          timeout: MESH_DOWN_TIMEOUT_MS,
          killSignal: 'SIGKILL',
        });
      } catch {
        // Reported by the next run's preflight, which names the leftover namespaces.
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    this.tornDown = true;
  }
}

/** Keep the labels a reader cares about. */
function shortMetric(line: string): string {
  const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
  if (!m) return line;
  const keep = ['reporter', 'source_principal', 'destination_workload', 'connection_security_policy'];
  const labels = [...(m[2] as string).matchAll(/(\w+)="([^"]*)"/g)]
    .filter((x) => keep.includes(x[1] as string))
    .map((x) => `${x[1]}="${x[2]}"`);
  return `${m[1]}{${labels.join(',')}} ${m[3]}`;
}

function token(node: string): string {
  return `demo-netns-bootstrap-token-${node}-0123456789`;
}

/** The app: plain node:http, one JSON log line per request so the demo can show what it saw. */
const ECHO_APP = `
const http = require('node:http');
http.createServer((req, res) => {
  const from = req.socket.remoteAddress + ':' + req.socket.remotePort;
  console.log(JSON.stringify({ msg: 'request', method: req.method, path: req.url, host: req.headers.host, from }));
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ service: 'echo', pod: 'h2-p1', host: req.headers.host, from }) + '\\n');
}).listen(8080, '${ECHO_IP}', () => console.log(JSON.stringify({ msg: 'listening' })));
`;

const MESH_YAML = `apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: demo, labels: {app: client}}
spec: {nodeName: h1, serviceAccountName: client}
status: {podIP: ${CLIENT_IP}}
---
apiVersion: v1
kind: Pod
metadata: {name: echo, namespace: demo, labels: {app: echo}}
spec: {nodeName: h2, serviceAccountName: echo}
status: {podIP: ${ECHO_IP}}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec: {selector: {app: echo}, clusterIP: ${VIP}, ports: [{name: http, port: 8080, targetPort: 8080}]}
`;
