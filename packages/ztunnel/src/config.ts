/**
 * The ztunnel's settings: every option is a flag (`--node n1`, `--node=n1`) and an environment variable
 * (`ZTUNNEL_NODE`); flags win. Parsing reports every problem at once, each naming the flag, the variable
 * and what to do, so an operator fixes a broken manifest in one pass.
 */
import { isIP } from 'node:net';
import { parseDuration } from './duration.js';
import { ZtunnelError } from './errors.js';
import { isLogLevel, type LogFormat, type LogLevel } from './logger.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface LocalListenerConfig {
  /** Address the listener binds (defaults to the node address). */
  bindAddress: string;
  /** Port it listens on (0 = ephemeral). */
  port: number;
  /** Mesh destination every connection is sent to: a service hostname, VIP or workload IP, and port. */
  target: HostPort;
}

export interface ZtunnelConfig {
  /** Control plane xDS address (gRPC over TLS). */
  controlPlane: HostPort;
  /** CA address; the control plane address unless set. */
  caAddress: HostPort;
  /** PEM file with the mesh root certificate(s): verifies the control plane and every peer. */
  trustBundleFile: string;
  /** File holding this ztunnel's bootstrap token; re-read on every request so it can be rotated. */
  tokenFile: string;
  /** Node name, as in Pod spec.nodeName: workloads on this node are the ones served. */
  node: string;
  /** This node's address: node-level listeners (SOCKS5, plaintext, metrics, readiness) bind here. */
  nodeIp: string;
  podName: string;
  podNamespace: string;
  trustDomain: string;
  clusterId: string;
  ports: {
    hbone: number;
    plaintext: number;
    socks5: number;
    admin: number;
    metrics: number;
    readiness: number;
  };
  /** `per-workload`: inbound listeners on each local workload's address (Istio's in-pod mode); or one address. */
  inboundBind: 'per-workload' | string;
  /** Admin listener address; must be loopback. */
  adminAddress: string;
  /** Lifetime requested for workload certificates. */
  certTtlMs: number;
  /** Upstream TCP connect timeout. */
  connectTimeoutMs: number;
  /** How long SIGTERM lets open tunnels finish before they are cut. */
  drainTimeoutMs: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  accessLog: boolean;
  localListeners: LocalListenerConfig[];
  /** Outbound capture listener (iptables REDIRECT target, original destination by SO_ORIGINAL_DST); off when unset. */
  captureOutbound?: HostPort;
  /** Mesh DNS proxy (UDP and TCP); off when unset. */
  dnsProxy?: HostPort;
  /** Resolver for names that are not the mesh's (default: the first nameserver of /etc/resolv.conf, port 53). */
  dnsUpstream?: HostPort;
}

type Kind = 'string' | 'hostport' | 'ip' | 'port' | 'duration' | 'level' | 'format' | 'bool' | 'listener';

interface OptionSpec {
  flag: string;
  kind: Kind;
  help: string;
  default?: string;
  required?: boolean;
  repeated?: boolean;
  example?: string;
}

/** The option table: parsing, `--help` and docs/ztunnel.md all follow it. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'control-plane',
    kind: 'hostport',
    required: true,
    example: '127.0.0.1:15012',
    help: 'control plane xDS address (gRPC over TLS)',
  },
  {
    flag: 'ca-address',
    kind: 'hostport',
    example: '127.0.0.1:15012',
    help: 'CA address (default: the control plane address)',
  },
  {
    flag: 'trust-bundle',
    kind: 'string',
    required: true,
    example: '/var/run/ambient/root-cert.pem',
    help: 'PEM file with the mesh root certificate(s); ztunnel refuses to start without one',
  },
  {
    flag: 'token-file',
    kind: 'string',
    required: true,
    example: '/var/run/ambient/token',
    help: 'bootstrap token file proving this ztunnel to the control plane (re-read per request)',
  },
  {
    flag: 'node',
    kind: 'string',
    required: true,
    example: 'node-1',
    help: 'name of this node, as in Pod spec.nodeName',
  },
  {
    flag: 'node-ip',
    kind: 'ip',
    required: true,
    example: '127.0.1.1',
    help: "this node's address; SOCKS5, plaintext, metrics and readiness listeners bind here",
  },
  { flag: 'pod-name', kind: 'string', help: 'name of the ztunnel pod, for the xDS node id (default: ztunnel-<node>)' },
  {
    flag: 'pod-namespace',
    kind: 'string',
    default: 'istio-system',
    help: 'namespace of the ztunnel pod, for the xDS node id',
  },
  { flag: 'trust-domain', kind: 'string', default: 'cluster.local', help: 'SPIFFE trust domain of the mesh' },
  { flag: 'cluster-id', kind: 'string', default: 'Kubernetes', help: 'cluster id sent to the CA and used in metrics' },
  { flag: 'hbone-port', kind: 'port', default: '15008', help: 'HBONE inbound port (must be the same on every node)' },
  { flag: 'plaintext-port', kind: 'port', default: '15006', help: 'plaintext inbound port (0 = ephemeral)' },
  {
    flag: 'socks5-port',
    kind: 'port',
    default: '15080',
    help: 'SOCKS5 outbound port on the node address (0 = ephemeral)',
  },
  {
    flag: 'admin-port',
    kind: 'port',
    default: '15000',
    help: 'admin port: /config_dump, /logging, /quitquitquit (0 = ephemeral)',
  },
  {
    flag: 'metrics-port',
    kind: 'port',
    default: '15020',
    help: 'Prometheus port: /metrics, /stats/prometheus (0 = ephemeral)',
  },
  { flag: 'readiness-port', kind: 'port', default: '15021', help: 'readiness port: /healthz/ready (0 = ephemeral)' },
  {
    flag: 'inbound-bind',
    kind: 'string',
    default: 'per-workload',
    example: '0.0.0.0',
    help: "'per-workload' (listen on each local workload's address, in-pod style) or one address for all",
  },
  {
    flag: 'admin-address',
    kind: 'ip',
    help: 'admin listener address, loopback only (default: the node address if loopback, else 127.0.0.1)',
  },
  {
    flag: 'cert-ttl',
    kind: 'duration',
    default: '24h',
    example: '1h',
    help: 'lifetime requested for workload certificates (renewed at half)',
  },
  { flag: 'connect-timeout', kind: 'duration', default: '10s', help: 'upstream TCP connect timeout' },
  {
    flag: 'drain-timeout',
    kind: 'duration',
    default: '5s',
    help: 'on SIGTERM, how long open tunnels may finish before they are cut',
  },
  {
    flag: 'log-level',
    kind: 'level',
    default: 'info',
    help: 'error, warn, info, debug or trace (changeable at runtime via /logging)',
  },
  { flag: 'log-format', kind: 'format', default: 'kv', help: "'kv' (key=value) or 'json', for logs and access logs" },
  { flag: 'access-log', kind: 'bool', default: 'true', help: 'one access log line per connection (true/false)' },
  {
    flag: 'local-listener',
    kind: 'listener',
    repeated: true,
    example: '127.0.1.1:9080=echo.default.svc.cluster.local:80',
    help: '[bind-ip:]port=destination:port, a local TCP listener sending every connection to one mesh destination (repeatable)',
  },
  {
    flag: 'capture-outbound',
    kind: 'hostport',
    example: '0.0.0.0:15001',
    help: 'outbound capture listener: connections redirected here by iptables are sent to their original destination (Linux, native addon; off unless set)',
  },
  {
    flag: 'dns-proxy',
    kind: 'hostport',
    example: '0.0.0.0:15053',
    help: 'mesh DNS proxy (UDP and TCP): answers mesh service names with their VIPs, forwards the rest (off unless set)',
  },
  {
    flag: 'dns-upstream',
    kind: 'hostport',
    example: '10.0.0.2:53',
    help: 'resolver the DNS proxy forwards other names to (default: the first nameserver of /etc/resolv.conf, port 53)',
  },
];

export function envName(flag: string): string {
  return `ZTUNNEL_${flag.toUpperCase().replaceAll('-', '_')}`;
}

export function helpText(): string {
  const lines = [
    'ztunnel — the ambient-ts per-node zero-trust tunnel',
    '',
    'Usage: ztunnel [options]',
    '',
    'Every option can also be set through the environment variable shown; flags win.',
    '',
    'Options:',
  ];
  for (const o of OPTIONS) {
    const value = o.kind === 'bool' ? '<true|false>' : `<${o.example ?? o.kind}>`;
    const tags = [
      o.required ? 'required' : undefined,
      o.default !== undefined ? `default ${o.default}` : undefined,
      o.repeated ? 'repeatable' : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(`  --${o.flag} ${value}`);
    lines.push(`      ${o.help}${tags ? ` [${tags}]` : ''}  (env ${envName(o.flag)})`);
  }
  lines.push('  -h, --help', '      print this help');
  lines.push(
    '',
    'Examples:',
    '  # node 1 of a one-machine mesh, control plane on 127.0.0.1:15012',
    '  ztunnel --control-plane 127.0.0.1:15012 --trust-bundle state/root-cert.pem \\',
    '          --token-file tokens/node-1 --node node-1 --node-ip 127.0.1.1',
    '',
    '  # the same through the environment, with JSON logs',
    '  ZTUNNEL_CONTROL_PLANE=127.0.0.1:15012 ZTUNNEL_TRUST_BUNDLE=state/root-cert.pem \\',
    '  ZTUNNEL_TOKEN_FILE=tokens/node-1 ZTUNNEL_NODE=node-1 ZTUNNEL_NODE_IP=127.0.1.1 \\',
    '  ZTUNNEL_LOG_FORMAT=json ztunnel',
    '',
    '  # then, from a workload on node 1 (source address 127.0.1.10):',
    '  curl --interface 127.0.1.10 --socks5-hostname 127.0.1.1:15080 http://echo.default.svc.cluster.local/',
  );
  return `${lines.join('\n')}\n`;
}

export type ParseResult = { help: true } | { help: false; config: ZtunnelConfig };

/** Parse flags and environment. Throws ERR_ZTUNNEL_CONFIG listing every problem found. */
export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): ParseResult {
  const problems: string[] = [];
  const raw = new Map<string, string[]>();
  const byFlag = new Map(OPTIONS.map((o) => [o.flag, o]));

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h' || arg === '--help') return { help: true };
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument ${JSON.stringify(arg)} (options look like --name value; see --help)`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const spec = byFlag.get(name);
    if (!spec) {
      problems.push(`unknown option --${name} (see --help for the list)`);
      if (eq === -1 && argv[i + 1] !== undefined && !argv[i + 1]?.startsWith('--')) i++;
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool' && (argv[i + 1] === undefined || argv[i + 1]?.startsWith('--'))) value = 'true';
    else value = argv[++i];
    if (value === undefined) {
      problems.push(`--${name} needs a value (${spec.help})`);
      continue;
    }
    const list = raw.get(name) ?? [];
    if (list.length > 0 && !spec.repeated) problems.push(`--${name} was given more than once`);
    list.push(value);
    raw.set(name, list);
  }

  const values = new Map<string, unknown[]>();
  for (const spec of OPTIONS) {
    let texts = raw.get(spec.flag);
    let source = `--${spec.flag}`;
    if (!texts) {
      const fromEnv = env[envName(spec.flag)];
      if (fromEnv !== undefined && fromEnv !== '') {
        texts = spec.repeated ? fromEnv.split(',').map((s) => s.trim()) : [fromEnv];
        source = envName(spec.flag);
      }
    }
    if (!texts && spec.default !== undefined) texts = [spec.default];
    if (!texts) {
      if (spec.required) {
        problems.push(
          `--${spec.flag} is required (${spec.help}; e.g. --${spec.flag} ${spec.example ?? ''} or ${envName(spec.flag)})`,
        );
      }
      continue;
    }
    const parsed: unknown[] = [];
    for (const text of texts) {
      const r = convert(spec, text);
      if (typeof r === 'object' && r !== null && 'problem' in r) problems.push(`${source}: ${r.problem}`);
      else parsed.push(r);
    }
    values.set(spec.flag, parsed);
  }

  const one = <T>(flag: string): T => values.get(flag)?.[0] as T;
  const nodeIp = one<string>('node-ip');
  const node = one<string>('node');
  let adminAddress = one<string | undefined>('admin-address');
  if (adminAddress === undefined && nodeIp !== undefined) adminAddress = isLoopback(nodeIp) ? nodeIp : '127.0.0.1';
  if (adminAddress !== undefined && !isLoopback(adminAddress)) {
    problems.push(
      `--admin-address ${adminAddress} is not a loopback address: the admin endpoint (/quitquitquit) must stay local`,
    );
  }
  const inboundBind = one<string>('inbound-bind');
  if (inboundBind !== undefined && inboundBind !== 'per-workload' && isIP(inboundBind) === 0) {
    problems.push(`--inbound-bind: ${JSON.stringify(inboundBind)} is neither 'per-workload' nor an IP address`);
  }
  const trustDomain = one<string>('trust-domain');
  if (trustDomain !== undefined && !/^[a-z0-9._-]+$/.test(trustDomain)) {
    problems.push(
      `--trust-domain: ${JSON.stringify(trustDomain)} is not a valid trust domain (lowercase letters, digits, '.', '-', '_')`,
    );
  }
  const hbonePort = one<number>('hbone-port');
  if (hbonePort === 0)
    problems.push('--hbone-port cannot be 0: peers dial this port on every workload address, so it must be fixed');

  if (problems.length > 0) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG',
      `ztunnel: invalid configuration:\n  - ${problems.join('\n  - ')}\nRun ztunnel --help for every option.`,
    );
  }
  const controlPlane = one<HostPort>('control-plane');
  const localListeners = (
    (values.get('local-listener') ?? []) as Array<Omit<LocalListenerConfig, 'bindAddress'> & { bindAddress?: string }>
  ).map((l) => ({ ...l, bindAddress: l.bindAddress ?? nodeIp }));
  return {
    help: false,
    config: {
      controlPlane,
      caAddress: one<HostPort | undefined>('ca-address') ?? controlPlane,
      trustBundleFile: one('trust-bundle'),
      tokenFile: one('token-file'),
      node,
      nodeIp,
      podName: one<string | undefined>('pod-name') ?? `ztunnel-${node}`,
      podNamespace: one('pod-namespace'),
      trustDomain,
      clusterId: one('cluster-id'),
      ports: {
        hbone: hbonePort,
        plaintext: one('plaintext-port'),
        socks5: one('socks5-port'),
        admin: one('admin-port'),
        metrics: one('metrics-port'),
        readiness: one('readiness-port'),
      },
      inboundBind,
      adminAddress: adminAddress as string,
      certTtlMs: one('cert-ttl'),
      connectTimeoutMs: one('connect-timeout'),
      drainTimeoutMs: one('drain-timeout'),
      logLevel: one('log-level'),
      logFormat: one('log-format'),
      accessLog: one('access-log'),
      localListeners,
      ...optional('captureOutbound', one<HostPort | undefined>('capture-outbound')),
      ...optional('dnsProxy', one<HostPort | undefined>('dns-proxy')),
      ...optional('dnsUpstream', one<HostPort | undefined>('dns-upstream')),
    },
  };
}

/** `{ [key]: value }` when value is set, so optional fields stay absent (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** The xDS node id Istio's control plane expects from a ztunnel. */
export function xdsNodeId(config: Pick<ZtunnelConfig, 'nodeIp' | 'podName' | 'podNamespace'>): string {
  return `ztunnel~${config.nodeIp}~${config.podName}.${config.podNamespace}~${config.podNamespace}.svc.cluster.local`;
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

function convert(spec: OptionSpec, text: string): unknown {
  switch (spec.kind) {
    case 'string':
      return text.trim() === '' ? { problem: 'must not be empty' } : text;
    case 'ip':
      return isIP(text)
        ? text
        : { problem: `${JSON.stringify(text)} is not an IP address (e.g. ${spec.example ?? '127.0.1.1'})` };
    case 'port': {
      const n = Number(text);
      return /^\d+$/.test(text) && n <= 65535
        ? n
        : { problem: `${JSON.stringify(text)} is not a port number (0-65535)` };
    }
    case 'hostport': {
      const hp = parseHostPort(text);
      return hp ?? { problem: `${JSON.stringify(text)} is not host:port (e.g. ${spec.example})` };
    }
    case 'duration': {
      const ms = parseDuration(text);
      return ms !== undefined && ms > 0
        ? ms
        : { problem: `${JSON.stringify(text)} is not a positive duration (e.g. 500ms, 10s, 5m, 24h)` };
    }
    case 'level':
      return isLogLevel(text)
        ? text
        : { problem: `${JSON.stringify(text)} is not a log level (error, warn, info, debug, trace)` };
    case 'format':
      return text === 'json' || text === 'kv'
        ? text
        : { problem: `${JSON.stringify(text)} is not a log format ('kv' or 'json')` };
    case 'bool':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return { problem: `${JSON.stringify(text)} is not true or false` };
    case 'listener': {
      const eq = text.indexOf('=');
      const bad = { problem: `${JSON.stringify(text)} is not [bind-ip:]port=destination:port (e.g. ${spec.example})` };
      if (eq === -1) return bad;
      const left = text.slice(0, eq);
      const target = parseHostPort(text.slice(eq + 1));
      if (!target || target.port === 0) return bad;
      if (/^\d+$/.test(left)) return Number(left) <= 65535 ? { port: Number(left), target } : bad;
      const bind = parseHostPort(left);
      if (!bind || isIP(bind.host) === 0) return bad;
      return { bindAddress: bind.host, port: bind.port, target };
    }
  }
}

/** `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535 || (m[1] as string).trim() === '') return undefined;
  return { host: m[1] as string, port };
}
