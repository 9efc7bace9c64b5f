import { parseArgs } from 'node:util';
import { keyOf } from './config-object.js';
import { type ConfigProblem, formatProblem } from './config-problem.js';
import { ControlPlane, type ControlPlaneOptions, parseHostPort } from './control-plane.js';
import { DirectorySource } from './directory-source.js';
import { ControlPlaneError } from './errors.js';
import { jsonLogger, type LogLevel } from './logger.js';
import { authzConverter, authzValidator } from './policy-adapter.js';
import { Translator } from './translator.js';

export const HELP = `ambient-control-plane — the ambient-ts control plane (istiod's role): reads Kubernetes-style YAML,
owns the mesh CA, and serves every ztunnel and waypoint its configuration (xDS) and certificates.

Usage:
  ambient-control-plane --config-dir <dir> --state-dir <dir> [options]
  ambient-control-plane validate <dir> [--root-namespace <ns>] [--trust-domain <td>] ...
  ambient-control-plane --help

Every option can also be set through the environment variable shown (flags win).

Options:
  --config-dir <dir>        AMBIENT_CONFIG_DIR. Directory of YAML (*.yaml, *.yml, subdirectories too, many
                            objects per file separated by ---), watched for changes. Required.
                            Example: --config-dir ./mesh
  --state-dir <dir>         AMBIENT_STATE_DIR. Keeps the CA (created on first start, reused after; keys mode
                            0600) and writes root-cert.pem, the trust bundle proxies verify us with. Required.
                            Example: --state-dir /var/lib/ambient
  --tokens <file>           AMBIENT_TOKENS. Bootstrap tokens (YAML or JSON), each naming a proxy:
                              tokens:
                              - {token: <secret, 16+ chars>, identity: spiffe://cluster.local/ns/istio-system/sa/ztunnel,
                                 kind: ztunnel, node: node-1}
                              - {sha256: <hex of the secret>, identity: spiffe://cluster.local/ns/shop/sa/waypoint,
                                 kind: waypoint}
                            A ztunnel may obtain certificates only for workloads on its node; a waypoint only
                            for its own identity. Without this file only proxies holding a mesh certificate
                            can connect. Example: --tokens ./tokens.yaml
  --listen <host:port>      AMBIENT_LISTEN. xDS (Delta and SotW) + Istio CA, gRPC over TLS. Default 127.0.0.1:15012.
                            Example: --listen 0.0.0.0:15012
  --monitoring-listen <host:port>
                            AMBIENT_MONITORING_LISTEN. /metrics, /ready, /debug/config_dump, /debug/connections,
                            /debug/config-errors. Default 127.0.0.1:15014.
  --trust-domain <td>       AMBIENT_TRUST_DOMAIN. Default cluster.local. Example: --trust-domain example.org
  --cluster-id <id>         AMBIENT_CLUSTER_ID. Cluster name in workload uids and CA requests. Default Kubernetes.
  --domain-suffix <suffix>  AMBIENT_DOMAIN_SUFFIX. Service hostnames are <name>.<ns>.svc.<suffix>. Default cluster.local.
  --root-namespace <ns>     AMBIENT_ROOT_NAMESPACE. Policies here are mesh-wide. Default istio-system.
  --default-dataplane-mode <ambient|none>
                            AMBIENT_DEFAULT_DATAPLANE_MODE. Whether workloads whose Pod and Namespace carry no
                            istio.io/dataplane-mode label are in the mesh (tunnel HBONE). Default ambient.
  --ztunnel-view <node|all> AMBIENT_ZTUNNEL_VIEW. node: a ztunnel (token with a node) receives only the
                            Authorizations its node's workloads need; all: every ztunnel receives all. Default node.
  --serving-dns <names>     AMBIENT_SERVING_DNS. Comma-separated DNS names in our TLS certificate.
                            Default localhost,istiod.<root-ns>.svc,istiod.<root-ns>.svc.<suffix>.
  --serving-ip <ips>        AMBIENT_SERVING_IP. Comma-separated IPs in our TLS certificate. Default 127.0.0.1,::1.
                            Example: --serving-ip 127.0.0.1,10.0.0.5
  --debounce-ms <ms>        AMBIENT_DEBOUNCE_MS. Quiet time after a file event before re-reading. Default 100.
  --log-level <level>       AMBIENT_LOG_LEVEL. debug, info, warn, error or silent. Default info. Logs are JSON
                            lines on stderr; keys and tokens are never logged.
  -h, --help                This text.

validate <dir> reads the directory once, translates it, prints every problem (file:line: object: reason)
and exits 1 if any is an error, 0 otherwise. It starts nothing and writes nothing.

Signals: SIGTERM/SIGINT shut down gracefully (a second one forces); SIGHUP re-reads the config directory.
`;

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

const OPTIONS = {
  'config-dir': { type: 'string' },
  'state-dir': { type: 'string' },
  tokens: { type: 'string' },
  listen: { type: 'string' },
  'monitoring-listen': { type: 'string' },
  'trust-domain': { type: 'string' },
  'cluster-id': { type: 'string' },
  'domain-suffix': { type: 'string' },
  'root-namespace': { type: 'string' },
  'default-dataplane-mode': { type: 'string' },
  'ztunnel-view': { type: 'string' },
  'serving-dns': { type: 'string' },
  'serving-ip': { type: 'string' },
  'debounce-ms': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Flag = Exclude<keyof typeof OPTIONS, 'help'>;

export interface ParsedCli {
  readonly command: 'run' | 'validate' | 'help';
  readonly validateDir?: string;
  readonly options: ControlPlaneOptions & { readonly logLevel: LogLevel };
}

function envName(flag: string): string {
  return `AMBIENT_${flag.toUpperCase().replace(/-/g, '_')}`;
}

function bad(message: string): ControlPlaneError {
  return new ControlPlaneError('ERR_CP_BAD_SETTING', message);
}

/** Flags and environment -> settings, with a clear error for each bad value. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedCli {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = (err as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(msg);
    throw bad(unknown ? `unknown option ${unknown[1]} (see --help)` : `${msg.split('\n')[0]} (see --help)`);
  }
  const v = parsed.values as Partial<Record<Flag, string>> & { help?: boolean };
  const get = (flag: Flag): string | undefined => {
    const value = v[flag] ?? env[envName(flag)];
    return value === '' ? undefined : value;
  };
  if (v.help) return { command: 'help', options: { logLevel: 'info' } as ParsedCli['options'] };
  const [cmd, ...rest] = parsed.positionals;
  let command: ParsedCli['command'] = 'run';
  let validateDir: string | undefined;
  if (cmd === 'validate') {
    command = 'validate';
    validateDir = rest[0] ?? get('config-dir');
    if (!validateDir) throw bad('validate needs a directory: ambient-control-plane validate <dir>');
    if (rest.length > 1) throw bad(`validate takes one directory, got ${rest.length}`);
  } else if (cmd !== undefined) {
    throw bad(`unknown command ${JSON.stringify(cmd)}: the commands are validate, or none to run (see --help)`);
  }
  const logLevel = (get('log-level') ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw bad(`--log-level ${JSON.stringify(logLevel)} must be debug, info, warn, error or silent`);
  }
  const mode = get('default-dataplane-mode') ?? 'ambient';
  if (mode !== 'ambient' && mode !== 'none')
    throw bad(`--default-dataplane-mode ${JSON.stringify(mode)} must be ambient or none`);
  const view = get('ztunnel-view') ?? 'node';
  if (view !== 'node' && view !== 'all') throw bad(`--ztunnel-view ${JSON.stringify(view)} must be node or all`);
  const debounceText = get('debounce-ms');
  const debounceMs = debounceText === undefined ? undefined : Number(debounceText);
  if (debounceMs !== undefined && (!Number.isInteger(debounceMs) || debounceMs < 0 || debounceMs > 60_000)) {
    throw bad(`--debounce-ms ${JSON.stringify(debounceText)} must be a whole number of milliseconds, 0 to 60000`);
  }
  const configDir = command === 'validate' ? validateDir : get('config-dir');
  const stateDir = get('state-dir');
  if (command === 'run') {
    if (!configDir)
      throw bad('--config-dir is required (a directory of Kubernetes-style YAML), e.g. --config-dir ./mesh');
    if (!stateDir)
      throw bad(
        '--state-dir is required (where the CA is kept and root-cert.pem is written), e.g. --state-dir ./state',
      );
  }
  const listen = get('listen');
  const monitoringListen = get('monitoring-listen');
  if (listen) parseHostPort(listen, '--listen');
  if (monitoringListen) parseHostPort(monitoringListen, '--monitoring-listen');
  const list = (s: string | undefined) =>
    s
      ?.split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const dns = list(get('serving-dns'));
  const ips = list(get('serving-ip'));
  const tokens = get('tokens');
  const opt = (key: string, value: unknown) => (value === undefined ? {} : { [key]: value });
  const options: ParsedCli['options'] = {
    logLevel,
    defaultDataplaneMode: mode,
    ztunnelPolicyView: view === 'node',
    ...opt('configDir', configDir),
    ...opt('stateDir', stateDir),
    ...opt('tokens', tokens),
    ...opt('listen', listen),
    ...opt('monitoringListen', monitoringListen),
    ...opt('trustDomain', get('trust-domain')),
    ...opt('clusterId', get('cluster-id')),
    ...opt('domainSuffix', get('domain-suffix')),
    ...opt('rootNamespace', get('root-namespace')),
    ...opt('debounceMs', debounceMs),
    ...(dns || ips ? { servingNames: { ...opt('dnsNames', dns), ...opt('ipAddresses', ips) } } : {}),
  };
  return { command, ...(validateDir ? { validateDir } : {}), options };
}

/** `validate <dir>`: every problem of reading and translating the directory; nothing is started. */
export async function validate(
  dir: string,
  options: ControlPlaneOptions,
): Promise<{ problems: ConfigProblem[]; objects: number }> {
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  const source = new DirectorySource({ dir, watch: false, validatePolicy: authzValidator(rootNamespace) });
  await source.start();
  const translator = new Translator({
    rootNamespace,
    convertPolicy: authzConverter,
    ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}),
    ...(options.clusterId ? { clusterId: options.clusterId } : {}),
    ...(options.domainSuffix ? { domainSuffix: options.domainSuffix } : {}),
    ...(options.defaultDataplaneMode ? { defaultDataplaneMode: options.defaultDataplaneMode } : {}),
  });
  const objects = source.list();
  translator.apply(objects.map((o) => ({ type: 'added', key: keyOf(o), object: o })));
  await source.close();
  return { problems: [...source.problems(), ...translator.problems()], objects: objects.length };
}

/** Runs the CLI; resolves with the process exit code once the work is done (run: once shut down). */
export async function main(
  argv: readonly string[],
  io: CliIo,
  signals: NodeJS.EventEmitter = process,
): Promise<number> {
  let cli: ParsedCli;
  try {
    cli = parseCli(argv, io.env);
  } catch (err) {
    io.stderr.write(`ambient-control-plane: ${(err as Error).message}\n`);
    return 2;
  }
  if (cli.command === 'help') {
    io.stdout.write(HELP);
    return 0;
  }
  if (cli.command === 'validate') {
    try {
      const { problems, objects } = await validate(cli.validateDir as string, cli.options);
      for (const p of problems) io.stdout.write(`${formatProblem(p)}\n`);
      const errors = problems.filter((p) => p.severity === 'error').length;
      io.stdout.write(`${objects} objects, ${errors} errors, ${problems.length - errors} warnings\n`);
      return errors > 0 ? 1 : 0;
    } catch (err) {
      io.stderr.write(`ambient-control-plane: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const logger = jsonLogger(cli.options.logLevel, io.stderr);
  let cp: ControlPlane;
  try {
    cp = await ControlPlane.start({ ...cli.options, logger });
  } catch (err) {
    const code = err instanceof ControlPlaneError ? err.code : 'ERR_UNEXPECTED';
    io.stderr.write(`ambient-control-plane: ${(err as Error).message} [${code}]\n`);
    return err instanceof ControlPlaneError && err.code === 'ERR_CP_BAD_SETTING' ? 2 : 1;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn('second signal: stopping now', { signal });
        cp.destroy();
        resolve(1);
        return;
      }
      stopping = true;
      logger.info('shutting down', { signal });
      cp.close().then(
        () => resolve(0),
        (err: Error) => {
          logger.error('shutdown failed', { error: err.message });
          resolve(1);
        },
      );
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    const onHup = () => {
      if (cp.source instanceof DirectorySource) void cp.source.rescan();
    };
    signals.on('SIGTERM', onTerm);
    signals.on('SIGINT', onInt);
    signals.on('SIGHUP', onHup);
  });
}
