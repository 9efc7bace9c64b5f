import { AuthzError, compilePolicies, formatProblem, parsePolicy, validatePolicy } from '../src/index.js';
import { ap } from './helpers.js';

/** Each bad policy and the exact `path: message` problems it must produce (substring of message). */
const bad: [string, unknown, [string, string][]][] = [
  ['not an object', 'hello', [['', 'must be an object']]],
  [
    'bad CIDR (the issue example)',
    ap('p', { rules: [{}, {}, { from: [{ source: { ipBlocks: ['10.0.0.1', '10.0.0.0/33'] } }] }] }),
    [['spec.rules[2].from[0].source.ipBlocks[1]', '"10.0.0.0/33" is not a CIDR']],
  ],
  [
    'bad IP',
    ap('p', { rules: [{ from: [{ source: { notIpBlocks: ['10.0.0.256'] } }] }] }),
    [['spec.rules[0].from[0].source.notIpBlocks[0]', 'is not an IP address or CIDR']],
  ],
  [
    'IPv4 octal-looking octet',
    ap('p', { rules: [{ from: [{ source: { ipBlocks: ['010.0.0.1'] } }] }] }),
    [['spec.rules[0].from[0].source.ipBlocks[0]', 'is not an IP address']],
  ],
  [
    'bad IPv6 CIDR',
    ap('p', { rules: [{ from: [{ source: { remoteIpBlocks: ['fd00::/129'] } }] }] }),
    [['spec.rules[0].from[0].source.remoteIpBlocks[0]', 'is not a CIDR']],
  ],
  [
    'bad port',
    ap('p', { rules: [{ to: [{ operation: { ports: ['80', '65536', 'http'] } }] }] }),
    [
      ['spec.rules[0].to[0].operation.ports[1]', '"65536" is not a port'],
      ['spec.rules[0].to[0].operation.ports[2]', '"http" is not a port'],
    ],
  ],
  [
    'port range is not supported',
    ap('p', { rules: [{ to: [{ operation: { notPorts: ['8000-9000'] } }] }] }),
    [['spec.rules[0].to[0].operation.notPorts[0]', 'ranges are not supported']],
  ],
  [
    'numeric port',
    { metadata: { name: 'p' }, spec: { rules: [{ to: [{ operation: { ports: [8080] } }] }] } },
    [['spec.rules[0].to[0].operation.ports[0]', 'quote it: "8080"']],
  ],
  [
    'unknown condition key',
    ap('p', { rules: [{ when: [{ key: 'request.method', values: ['GET'] }] }] }),
    [['spec.rules[0].when[0].key', 'unknown condition key "request.method"']],
  ],
  [
    'retired condition key',
    ap('p', { rules: [{ when: [{ key: 'destination.labels[app]', values: ['x'] }] }] }),
    [['spec.rules[0].when[0].key', 'use spec.selector']],
  ],
  [
    'malformed header key',
    ap('p', { rules: [{ when: [{ key: 'request.headers[]', values: ['x'] }] }] }),
    [['spec.rules[0].when[0].key', 'malformed']],
  ],
  [
    'condition without values',
    ap('p', { rules: [{ when: [{ key: 'source.ip' }] }] }),
    [['spec.rules[0].when[0]', 'at least one of values or notValues']],
  ],
  [
    'condition with bad IP value',
    ap('p', { rules: [{ when: [{ key: 'destination.ip', notValues: ['x'] }] }] }),
    [['spec.rules[0].when[0].notValues[0]', 'is not an IP address']],
  ],
  [
    'condition with bad port value',
    ap('p', { rules: [{ when: [{ key: 'destination.port', values: ['-1'] }] }] }),
    [['spec.rules[0].when[0].values[0]', 'is not a port']],
  ],
  [
    'condition without key',
    ap('p', { rules: [{ when: [{ values: ['x'] } as never] }] }),
    [['spec.rules[0].when[0].key', 'is required']],
  ],
  [
    'serviceAccounts mixed with principals',
    ap('p', { rules: [{ from: [{ source: { serviceAccounts: ['foo/a'], principals: ['x'] } }] }] }),
    [['spec.rules[0].from[0].source', 'cannot be combined with principals or namespaces']],
  ],
  [
    'serviceAccounts mixed with notNamespaces',
    ap('p', { rules: [{ from: [{ source: { notServiceAccounts: ['a'], notNamespaces: ['x'] } }] }] }),
    [['spec.rules[0].from[0].source', 'cannot be combined']],
  ],
  [
    'serviceAccounts wildcard',
    ap('p', { rules: [{ from: [{ source: { serviceAccounts: ['foo/*'] } }] }] }),
    [['spec.rules[0].from[0].source.serviceAccounts[0]', 'wildcards are not allowed']],
  ],
  [
    'serviceAccounts bad form',
    ap('p', { rules: [{ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }] }),
    [['spec.rules[0].from[0].source.serviceAccounts[0]', 'is not a service account']],
  ],
  [
    'serviceAccounts over 16',
    ap('p', { rules: [{ from: [{ source: { serviceAccounts: Array.from({ length: 17 }, (_, i) => `sa${i}`) } }] }] }),
    [['spec.rules[0].from[0].source.serviceAccounts', 'at most 16']],
  ],
  [
    '{**} not last',
    ap('p', { rules: [{ to: [{ operation: { paths: ['/a/{**}/b/{*}'] } }] }] }),
    [['spec.rules[0].to[0].operation.paths[0]', '{**} must be the last operator']],
  ],
  [
    'stray brace',
    ap('p', { rules: [{ to: [{ operation: { notPaths: ['/a/{id}'] } }] }] }),
    [['spec.rules[0].to[0].operation.notPaths[0]', 'only allowed as the whole segments']],
  ],
  [
    'bare * inside a template',
    ap('p', { rules: [{ to: [{ operation: { paths: ['/a/{*}/b*'] } }] }] }),
    [['spec.rules[0].to[0].operation.paths[0]', 'RFC 3986 path characters']],
  ],
  [
    'empty string value',
    ap('p', { rules: [{ from: [{ source: { principals: ['a', ''] } }], to: [{ operation: { methods: [''] } }] }] }),
    [
      ['spec.rules[0].from[0].source.principals[1]', 'must not be empty'],
      ['spec.rules[0].to[0].operation.methods[0]', 'must not be empty'],
    ],
  ],
  [
    'empty source',
    ap('p', { rules: [{ from: [{ source: {} }] }] }),
    [['spec.rules[0].from[0].source', 'must not be empty']],
  ],
  [
    'empty operation',
    ap('p', { rules: [{ to: [{ operation: {} }] }] }),
    [['spec.rules[0].to[0].operation', 'must not be empty']],
  ],
  ['empty from list', ap('p', { rules: [{ from: [] }] }), [['spec.rules[0].from', 'non-empty list']]],
  ['from without source', ap('p', { rules: [{ from: [{}] }] }), [['spec.rules[0].from[0].source', 'is required']]],
  [
    'string where a list belongs',
    { metadata: { name: 'p' }, spec: { rules: [{ from: [{ source: { principals: 'a' } }] }] } },
    [['spec.rules[0].from[0].source.principals', 'must be a list of strings']],
  ],
  [
    'misspelt field',
    { metadata: { name: 'p' }, spec: { rules: [{ from: [{ source: { principal: ['a'] } }] }] } },
    [
      ['spec.rules[0].from[0].source.principal', 'unknown field "principal"'],
      ['spec.rules[0].from[0].source', 'must not be empty'],
    ],
  ],
  [
    'CUSTOM without provider',
    ap('p', { action: 'CUSTOM', rules: [{}] }),
    [['spec.provider.name', 'is required with action CUSTOM']],
  ],
  [
    'CUSTOM without rules',
    ap('p', { action: 'CUSTOM', provider: { name: 'x' } }),
    [['spec.rules', 'CUSTOM without rules never matches']],
  ],
  [
    'CUSTOM with principals',
    ap('p', { action: 'CUSTOM', provider: { name: 'x' }, rules: [{ from: [{ source: { principals: ['a'] } }] }] }),
    [['spec.rules[0].from[0].source.principals', 'not supported with action CUSTOM']],
  ],
  [
    'provider without CUSTOM',
    ap('p', { action: 'ALLOW', provider: { name: 'x' }, rules: [{}] }),
    [['spec.provider', 'only allowed with action CUSTOM']],
  ],
  ['DENY without rules', ap('p', { action: 'DENY' }), [['spec.rules', 'DENY without rules never matches']]],
  ['bad action', { metadata: { name: 'p' }, spec: { action: 'REJECT' } }, [['spec.action', 'is not an action']]],
  [
    'selector and targetRefs',
    ap('p', {
      selector: { matchLabels: { a: 'b' } },
      targetRefs: [{ kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'w' }],
    }),
    [['spec', 'set at most one of selector, targetRef and targetRefs']],
  ],
  [
    'unsupported targetRef kind',
    ap('p', { targetRefs: [{ kind: 'Deployment', group: 'apps', name: 'x' }] }),
    [['spec.targetRefs[0]', 'supported: gateway.networking.k8s.io Gateway']],
  ],
  [
    'GatewayClass outside root',
    ap('p', { targetRefs: [{ kind: 'GatewayClass', group: 'gateway.networking.k8s.io', name: 'istio-waypoint' }] }),
    [['spec.targetRefs[0]', 'only allowed in the root namespace']],
  ],
  [
    'cross-namespace targetRef',
    ap('p', { targetRef: { kind: 'Service', name: 'x', namespace: 'bar' } }),
    [['spec.targetRef.namespace', "must be the policy's own namespace"]],
  ],
  [
    'targetRef without name',
    ap('p', { targetRefs: [{ kind: 'Service' } as never] }),
    [['spec.targetRefs[0].name', 'is required']],
  ],
  [
    'bad dry-run annotation',
    { metadata: { name: 'p', annotations: { 'istio.io/dry-run': 'yes' } }, spec: {} },
    [['metadata.annotations["istio.io/dry-run"]', 'is not a boolean']],
  ],
  ['missing name', { metadata: {}, spec: {} }, [['metadata.name', 'is required']]],
  [
    'bad apiVersion',
    { apiVersion: 'security.istio.io/v2', metadata: { name: 'p' }, spec: {} },
    [['apiVersion', 'is not supported']],
  ],
  [
    'bad kind',
    { kind: 'PeerAuthentication', metadata: { name: 'p' }, spec: {} },
    [['kind', 'is not AuthorizationPolicy']],
  ],
  ['unknown top-level field', { metadata: { name: 'p' }, spec: {}, extra: 1 }, [['extra', 'unknown field']]],
  ['null rule', { metadata: { name: 'p' }, spec: { rules: [null] } }, [['spec.rules[0]', 'must be an object']]],
];

describe('validatePolicy', () => {
  it.each(bad.map(([name, input, want]) => [name, input, want] as const))('reports: %s', (_n, input, want) => {
    const r = validatePolicy(input);
    expect(r.ok).toBe(false);
    expect(r.policy).toBeUndefined();
    for (const [path, msg] of want) {
      expect(r.problems).toContainEqual(expect.objectContaining({ path, message: expect.stringContaining(msg) }));
    }
    expect(r.problems).toHaveLength(want.length);
  });

  it('reports every problem of a policy at once, each with its path', () => {
    const r = validatePolicy(
      ap('p', {
        action: 'DENY',
        rules: [
          { from: [{ source: { ipBlocks: ['1.2.3.4/40'], namespaces: [''] } }] },
          { to: [{ operation: { ports: ['x'] } }], when: [{ key: 'nope', values: ['1'] }] },
        ],
      }),
    );
    expect(r.problems.map(formatProblem)).toEqual([
      'spec.rules[0].from[0].source.namespaces[0]: must not be empty',
      'spec.rules[0].from[0].source.ipBlocks[0]: "1.2.3.4/40" is not a CIDR',
      'spec.rules[1].to[0].operation.ports[0]: "x" is not a port: use a number from 0 to 65535 (ranges are not supported)',
      expect.stringMatching(/^spec\.rules\[1\]\.when\[0\]\.key: unknown condition key "nope"/),
    ]);
  });

  it('accepts valid policies and returns a copy', () => {
    const input = ap('ok', {
      selector: { matchLabels: { app: 'x' } },
      action: 'ALLOW',
      rules: [
        {
          from: [
            { source: { principals: ['cluster.local/ns/a/sa/b'], notIpBlocks: ['fd00::/8', '::ffff:10.0.0.0/104'] } },
          ],
          to: [
            { operation: { hosts: ['*.example.com'], ports: ['0', '65535'], paths: ['/api/{*}/x', '/files/{**}'] } },
          ],
          when: [
            { key: 'request.auth.claims[realm][role]', values: ['admin'] },
            { key: 'request.headers[X-Id]', notValues: ['*'] },
            { key: 'source.serviceAccount', values: ['a/b', 'c'] },
          ],
        },
      ],
    });
    const r = validatePolicy(input);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.policy).toEqual(input);
    expect(r.policy).not.toBe(input);
  });

  it('warns that a DENY rule with only HTTP fields denies all TCP traffic at L4', () => {
    const r = validatePolicy(ap('p', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }));
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual([
      expect.objectContaining({ path: 'spec.rules[0]', message: expect.stringContaining('denies all traffic') }),
    ]);
  });

  it('parsePolicy throws ERR_POLICY_INVALID listing every problem', () => {
    let err: unknown;
    try {
      parsePolicy(ap('p', { rules: [{ from: [{ source: { ipBlocks: ['x', 'y'] } }] }] }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuthzError);
    expect((err as AuthzError).code).toBe('ERR_POLICY_INVALID');
    expect((err as AuthzError).problems).toHaveLength(2);
    expect((err as AuthzError).message).toContain('foo/p');
    expect((err as AuthzError).message).toContain('spec.rules[0].from[0].source.ipBlocks[1]');
  });

  it('compilePolicies is atomic: one bad policy fails the whole set, naming the policy', () => {
    let err: AuthzError | undefined;
    try {
      compilePolicies([
        ap('good', { rules: [{}] }),
        ap('bad', { rules: [{ to: [{ operation: { ports: ['99999'] } }] }] }),
      ]);
    } catch (e) {
      err = e as AuthzError;
    }
    expect(err?.code).toBe('ERR_POLICY_INVALID');
    expect(err?.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^foo\/bad: spec\.rules\[0\]\.to\[0\]\.operation\.ports\[0\]: "99999" is not a port/),
    ]);
  });

  it('rejects duplicate namespace/name', () => {
    expect(() => compilePolicies([ap('same', {}), ap('same', { rules: [{}] })])).toThrow(
      expect.objectContaining({ code: 'ERR_DUPLICATE_POLICY' }),
    );
  });

  it('rejects bad options', () => {
    expect(() => compilePolicies([], { pathNormalization: 'SOMETIMES' as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => compilePolicies('x' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
