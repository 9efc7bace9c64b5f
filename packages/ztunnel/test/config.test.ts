import { envName, helpText, OPTIONS, parseConfig, xdsNodeId } from '../src/config.js';
import { parseDuration } from '../src/duration.js';
import { ZtunnelError } from '../src/errors.js';

const required = [
  '--control-plane',
  '127.0.0.1:15012',
  '--trust-bundle',
  '/tmp/root.pem',
  '--token-file',
  '/tmp/token',
  '--node',
  'node-1',
  '--node-ip',
  '127.0.1.1',
];

function parse(argv: string[], env: Record<string, string> = {}) {
  const r = parseConfig(argv, env);
  if (r.help) throw new Error('unexpected help');
  return r.config;
}

function problemsOf(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ZtunnelError);
    expect((err as ZtunnelError).code).toBe('ERR_ZTUNNEL_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

describe('config', () => {
  it('applies defaults', () => {
    const c = parse(required);
    expect(c.controlPlane).toEqual({ host: '127.0.0.1', port: 15012 });
    expect(c.caAddress).toEqual(c.controlPlane);
    expect(c.ports).toEqual({
      hbone: 15008,
      plaintext: 15006,
      socks5: 15080,
      admin: 15000,
      metrics: 15020,
      readiness: 15021,
    });
    expect(c.trustDomain).toBe('cluster.local');
    expect(c.adminAddress).toBe('127.0.1.1');
    expect(c.podName).toBe('ztunnel-node-1');
    expect(c.connectTimeoutMs).toBe(10_000);
    expect(c.certTtlMs).toBe(24 * 3600_000);
    expect(c.inboundBind).toBe('per-workload');
    expect(c.accessLog).toBe(true);
    expect(xdsNodeId(c)).toBe('ztunnel~127.0.1.1~ztunnel-node-1.istio-system~istio-system.svc.cluster.local');
  });

  it('reads the environment, and flags win over it', () => {
    const env = {
      ZTUNNEL_CONTROL_PLANE: '10.0.0.1:15012',
      ZTUNNEL_TRUST_BUNDLE: '/etc/root.pem',
      ZTUNNEL_TOKEN_FILE: '/etc/token',
      ZTUNNEL_NODE: 'env-node',
      ZTUNNEL_NODE_IP: '10.0.0.5',
      ZTUNNEL_LOG_FORMAT: 'json',
      ZTUNNEL_LOCAL_LISTENER: '9080=echo.default.svc.cluster.local:80, 127.0.0.9:9081=10.96.0.1:81',
    };
    const c = parse(['--node=flag-node'], env);
    expect(c.node).toBe('flag-node');
    expect(c.nodeIp).toBe('10.0.0.5');
    expect(c.logFormat).toBe('json');
    expect(c.adminAddress).toBe('127.0.0.1');
    expect(c.localListeners).toEqual([
      { bindAddress: '10.0.0.5', port: 9080, target: { host: 'echo.default.svc.cluster.local', port: 80 } },
      { bindAddress: '127.0.0.9', port: 9081, target: { host: '10.96.0.1', port: 81 } },
    ]);
  });

  it('reports every missing required setting at once, naming flag and variable', () => {
    const msg = problemsOf([]);
    for (const flag of ['control-plane', 'trust-bundle', 'token-file', 'node', 'node-ip']) {
      expect(msg).toContain(`--${flag} is required`);
      expect(msg).toContain(envName(flag));
    }
  });

  it('rejects wrong values with a reason', () => {
    const cases: Array<[string[], string]> = [
      [['--control-plane', 'nohost'], 'is not host:port'],
      [['--node-ip', 'not-an-ip'], 'is not an IP address'],
      [['--socks5-port', '70000'], 'is not a port number'],
      [['--cert-ttl', 'soon'], 'is not a positive duration'],
      [['--log-level', 'loud'], 'is not a log level'],
      [['--log-format', 'xml'], 'is not a log format'],
      [['--access-log', 'maybe'], 'is not true or false'],
      [['--local-listener', '9080'], 'is not [bind-ip:]port=destination:port'],
      [['--inbound-bind', 'everywhere'], "neither 'per-workload' nor an IP"],
      [['--admin-address', '10.1.1.1'], 'is not a loopback address'],
      [['--hbone-port', '0'], '--hbone-port cannot be 0'],
      [['--trust-domain', 'Bad Domain'], 'not a valid trust domain'],
      [['--bogus', 'x'], 'unknown option --bogus'],
      [['positional'], 'unexpected argument'],
      [['--node', 'a', '--node', 'b'], 'given more than once'],
    ];
    for (const [extra, fragment] of cases) {
      const argv = [
        ...required.filter(
          (_, i) => !(extra[0] === '--node' && (required[i] === '--node' || required[i - 1] === '--node')),
        ),
        ...extra,
      ];
      expect(problemsOf(argv)).toContain(fragment);
    }
  });

  it('rejects a bad environment value naming the variable', () => {
    expect(problemsOf(required, { ZTUNNEL_METRICS_PORT: 'x' })).toContain(
      'ZTUNNEL_METRICS_PORT: "x" is not a port number',
    );
  });

  it('answers --help with every option and examples', () => {
    expect(parseConfig(['--help'])).toEqual({ help: true });
    expect(parseConfig(['-h', '--bogus'])).toEqual({ help: true });
    const text = helpText();
    for (const o of OPTIONS) {
      expect(text).toContain(`--${o.flag}`);
      expect(text).toContain(envName(o.flag));
    }
    expect(text).toContain('Examples:');
    expect(text).toContain('--socks5-hostname');
  });

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('2')).toBe(2000);
    expect(parseDuration('10x')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});
