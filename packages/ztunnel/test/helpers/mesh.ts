/**
 * A real mesh on loopback for end-to-end tests: the control plane in this process (so a test can stop
 * and restart it), ztunnels as real child processes running the `ztunnel` bin, and apps as sockets here.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ControlPlane, silentLogger } from '@ambient-ts/control-plane';
import { parseConfig, type ZtunnelConfig } from '../../src/config.js';

const CLI = resolve(__dirname, '../../src/cli.ts');
const ROOT = resolve(__dirname, '../../../..');
const ZT_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';

export interface LogLine {
  time: string;
  level: string;
  scope: string;
  msg: string;
  [k: string]: unknown;
}

export class ZtunnelProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  socks5 = '';
  admin = '';
  metrics = '';
  readiness = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly node: string,
    readonly child: ChildProcess,
  ) {
    let buf = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (c: string) => {
      buf += c;
      let i = buf.indexOf('\n');
      while (i !== -1) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          continue;
        }
        this.logs.push(parsed);
        if (parsed.msg === 'started') {
          this.socks5 = String(parsed.socks5);
          this.admin = String(parsed.admin);
          this.metrics = String(parsed.metrics);
          this.readiness = String(parsed.readiness);
        }
        for (const w of [...this.waiters]) {
          if (w.match(parsed)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(parsed);
          }
        }
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => this.stderr.push(c));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** Resolves with the first log line (already seen or future) that matches. */
  waitFor(match: (l: LogLine) => boolean, what = 'log line'): Promise<LogLine> {
    const seen = this.logs.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      this.exited.then((code) =>
        reject(new Error(`ztunnel ${this.node} exited (${code}) before ${what}; stderr: ${this.stderr.join('')}`)),
      );
    });
  }

  /** Waits for a matching line logged after this call. */
  next(match: (l: LogLine) => boolean): Promise<LogLine> {
    const from = this.logs.length;
    return this.waitFor((l) => this.logs.indexOf(l) >= from && match(l));
  }

  access(): LogLine[] {
    return this.logs.filter((l) => l.scope === 'access');
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export class Mesh {
  readonly dir: string;
  readonly configDir: string;
  readonly stateDir: string;
  cp?: ControlPlane;
  cpPort = 0;
  readonly ztunnels: ZtunnelProcess[] = [];

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `zt-${prefix}-`));
    this.configDir = join(this.dir, 'config');
    this.stateDir = join(this.dir, 'state');
    mkdirSync(this.configDir);
  }

  write(name: string, yaml: string): void {
    writeFileSync(join(this.configDir, name), yaml);
  }

  remove(name: string): void {
    rmSync(join(this.configDir, name), { force: true });
  }

  /** `extraTokens`: more entries for tokens.yaml, e.g. a waypoint's. */
  async startControlPlane(nodes: string[], port = 0, extraTokens: string[] = []): Promise<ControlPlane> {
    const entries = nodes.map((n) => `- {token: ${this.token(n)}, identity: "${ZT_ID}", kind: ztunnel, node: ${n}}`);
    const tokens = [...entries, ...extraTokens].join('\n');
    writeFileSync(join(this.dir, 'tokens.yaml'), `tokens:\n${tokens}\n`);
    for (const n of nodes) writeFileSync(join(this.dir, `token-${n}`), this.token(n), { mode: 0o600 });
    this.cp = await ControlPlane.start({
      configDir: this.configDir,
      stateDir: this.stateDir,
      tokens: join(this.dir, 'tokens.yaml'),
      listen: `127.0.0.1:${port}`,
      monitoringListen: '127.0.0.1:0',
      debounceMs: 20,
      logger: silentLogger,
    });
    this.cpPort = this.cp.grpcPort;
    return this.cp;
  }

  token(node: string): string {
    return `bootstrap-token-for-${node}-0123456789`;
  }

  /** ztunnel command-line arguments for `node` on `nodeIp`: this mesh's control plane, ephemeral node-level ports. */
  ztunnelArgs(node: string, nodeIp: string, extra: string[] = []): string[] {
    return [
      '--control-plane',
      `127.0.0.1:${this.cpPort}`,
      '--trust-bundle',
      join(this.stateDir, 'root-cert.pem'),
      '--token-file',
      join(this.dir, `token-${node}`),
      '--node',
      node,
      '--node-ip',
      nodeIp,
      '--socks5-port',
      '0',
      '--admin-port',
      '0',
      '--metrics-port',
      '0',
      '--readiness-port',
      '0',
      ...extra,
    ];
  }

  /** The parsed config of {@link ztunnelArgs}, for a ztunnel started in this process. */
  ztunnelConfig(node: string, nodeIp: string, extra: string[] = []): ZtunnelConfig {
    const parsed = parseConfig(this.ztunnelArgs(node, nodeIp, extra));
    if (parsed.help) throw new Error('unexpected help');
    return parsed.config;
  }

  /** Spawn the ztunnel bin for `node` on `nodeIp`, with ephemeral node-level ports; resolves once it logged 'started'. */
  async startZtunnel(
    node: string,
    nodeIp: string,
    extra: string[] = [],
    env: Record<string, string> = {},
  ): Promise<ZtunnelProcess> {
    const args = [
      '--conditions=@ambient-ts/source',
      '--import',
      'tsx',
      CLI,
      ...this.ztunnelArgs(node, nodeIp, ['--log-format', 'json', ...extra]),
    ];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const z = new ZtunnelProcess(node, child);
    this.ztunnels.push(z);
    await z.waitFor((l) => l.msg === 'started', "'started'");
    return z;
  }

  async close(): Promise<void> {
    await Promise.all(this.ztunnels.map((z) => z.kill('SIGKILL')));
    await this.cp?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function httpGet(hostPort: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  const [host, port] = splitHostPort(hostPort);
  return new Promise((resolve, reject) => {
    request({ host, port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

export function splitHostPort(hp: string): [string, number] {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i).replace(/^\[|\]$/g, ''), Number(hp.slice(i + 1))];
}

/** Kubernetes-style YAML for a pod with an IP on a node. */
export function pod(
  name: string,
  opts: { ns?: string; node: string; ip: string; sa?: string; labels?: Record<string, string> },
): string {
  const labels = { app: name, ...(opts.labels ?? {}) };
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${opts.ns ?? 'default'}, labels: ${JSON.stringify(labels)}}
spec: {nodeName: ${opts.node}, serviceAccountName: ${opts.sa ?? name}}
status: {podIP: ${opts.ip}}
`;
}

export function svc(
  name: string,
  opts: {
    ns?: string;
    vip: string;
    selector?: Record<string, string>;
    ports: Array<{ port: number; targetPort: number; name?: string }>;
    labels?: Record<string, string>;
  },
): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${opts.ns ?? 'default'}${opts.labels ? `, labels: ${JSON.stringify(opts.labels)}` : ''}}
spec:
  clusterIP: ${opts.vip}
  selector: ${JSON.stringify(opts.selector ?? { app: name })}
  ports: ${JSON.stringify(opts.ports.map((p, i) => ({ name: p.name ?? `p${i}`, port: p.port, targetPort: p.targetPort })))}
`;
}

export function docs(...parts: string[]): string {
  return parts.join('---\n');
}
