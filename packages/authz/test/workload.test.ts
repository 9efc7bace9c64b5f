import {
  type Authorization,
  AuthorizationScope,
  compileAuthorizations,
  compilePolicies,
  fromWorkloadAuthorization,
  toWorkloadAuthorization,
  validatePolicy,
} from '../src/index.js';
import { ap, CONN, HTTPBIN, id } from './helpers.js';

const bytes = (...b: number[]) => new Uint8Array(b);

describe('toWorkloadAuthorization (AuthorizationPolicy -> istio.security.Authorization)', () => {
  it('converts sources, operations and L4 conditions into rules/clauses/matches', () => {
    const { authorization, warnings, ruleIndex } = toWorkloadAuthorization(
      ap('p', {
        rules: [
          {
            from: [
              {
                source: {
                  principals: ['cluster.local/ns/a/sa/b', 'cluster.local/ns/x/*', '*/sa/y', '*'],
                  notNamespaces: ['bad'],
                },
              },
              { source: { serviceAccounts: ['a/b', 'c'], ipBlocks: ['10.1.0.0/16', 'fd00::1'] } },
            ],
            to: [{ operation: { ports: ['80', '443'], notPorts: ['8443'] } }],
            when: [
              { key: 'destination.ip', values: ['10.0.0.1'], notValues: ['10.0.0.2/31'] },
              { key: 'source.serviceAccount', values: ['z'] },
            ],
          },
        ],
      }),
    );
    expect(warnings).toEqual([]);
    expect(ruleIndex).toEqual([0]);
    expect(authorization).toEqual({
      name: 'p',
      namespace: 'foo',
      scope: AuthorizationScope.NAMESPACE,
      action: 0,
      dryRun: false,
      rules: [
        {
          clauses: [
            { matches: [{ destinationPorts: [80, 443], notDestinationPorts: [8443] }] },
            {
              matches: [
                {
                  principals: [
                    { exact: 'cluster.local/ns/a/sa/b' },
                    { prefix: 'cluster.local/ns/x/' },
                    { suffix: '/sa/y' },
                    { presence: {} },
                  ],
                  notNamespaces: [{ exact: 'bad' }],
                },
                {
                  serviceAccounts: [
                    { namespace: 'a', serviceAccount: 'b' },
                    { namespace: 'foo', serviceAccount: 'c' },
                  ],
                  sourceIps: [
                    { address: bytes(10, 1, 0, 0), length: 16 },
                    { address: bytes(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1), length: 128 },
                  ],
                },
              ],
            },
            {
              matches: [
                {
                  destinationIps: [{ address: bytes(10, 0, 0, 1), length: 32 }],
                  notDestinationIps: [{ address: bytes(10, 0, 0, 2), length: 31 }],
                },
              ],
            },
            { matches: [{ serviceAccounts: [{ namespace: 'foo', serviceAccount: 'z' }] }] },
          ],
        },
      ],
    });
  });

  it('scopes: selector -> WORKLOAD_SELECTOR, root namespace -> GLOBAL, else NAMESPACE', () => {
    expect(toWorkloadAuthorization(ap('p', { selector: { matchLabels: { app: 'a' } } })).authorization?.scope).toBe(
      AuthorizationScope.WORKLOAD_SELECTOR,
    );
    expect(toWorkloadAuthorization(ap('p', {}, { ns: 'istio-system' })).authorization?.scope).toBe(
      AuthorizationScope.GLOBAL,
    );
    expect(toWorkloadAuthorization(ap('p', {}, { ns: 'root' }), { rootNamespace: 'root' }).authorization?.scope).toBe(
      AuthorizationScope.GLOBAL,
    );
    expect(toWorkloadAuthorization(ap('p', {})).authorization).toMatchObject({
      scope: AuthorizationScope.NAMESPACE,
      rules: [],
    });
  });

  it('ALLOW rules with HTTP fields are left out (an ALLOW of only such rules matches nothing)', () => {
    const conv = toWorkloadAuthorization(
      ap('p', {
        rules: [{ to: [{ operation: { methods: ['GET'] } }] }, { from: [{ source: { namespaces: ['a'] } }] }],
      }),
    );
    expect(conv.ruleIndex).toEqual([1]);
    expect(conv.authorization?.rules).toEqual([{ clauses: [{ matches: [{ namespaces: [{ exact: 'a' }] }] }] }]);
    expect(conv.warnings).toEqual([
      expect.stringContaining('spec.rules[0]: ALLOW rule uses HTTP attributes (methods)'),
    ]);
  });

  it('DENY rules lose only their HTTP fields; a clause that became "anything" is left out', () => {
    const conv = toWorkloadAuthorization(
      ap('p', {
        action: 'DENY',
        rules: [
          {
            from: [{ source: { namespaces: ['a'], requestPrincipals: ['*'] } }],
            to: [{ operation: { paths: ['/x'] } }],
            when: [{ key: 'request.headers[x]', values: ['y'] }],
          },
        ],
      }),
    );
    expect(conv.authorization).toMatchObject({
      action: 1,
      rules: [{ clauses: [{ matches: [{ namespaces: [{ exact: 'a' }] }] }] }],
    });
    expect(conv.warnings).toEqual([expect.stringContaining('paths, request.headers[x], requestPrincipals')]);
  });

  it('skips targetRefs, CUSTOM and AUDIT policies', () => {
    expect(toWorkloadAuthorization(ap('p', { targetRefs: [{ kind: 'Service', name: 's' }] })).skipped).toContain(
      'waypoints',
    );
    expect(
      toWorkloadAuthorization(ap('p', { action: 'CUSTOM', provider: { name: 'x' }, rules: [{}] })).skipped,
    ).toContain('CUSTOM');
    expect(toWorkloadAuthorization(ap('p', { action: 'AUDIT', rules: [{}] })).authorization).toBeUndefined();
  });

  it('carries the dry-run annotation', () => {
    expect(toWorkloadAuthorization(ap('p', { rules: [{}] }, { dryRun: true })).authorization?.dryRun).toBe(true);
  });
});

describe('compileAuthorizations (ztunnel semantics)', () => {
  const allow = (rules: Authorization['rules'], extra: Partial<Authorization> = {}): Authorization => ({
    name: 'a',
    namespace: 'foo',
    scope: AuthorizationScope.NAMESPACE,
    action: 0,
    rules,
    ...extra,
  });
  const check = (auth: Authorization, conn = CONN, target = { namespace: 'foo' }) =>
    compileAuthorizations([auth]).checkConnection(conn, { workload: target }).decision;

  it('no rules never matches; a rule with no clauses always matches', () => {
    expect(check(allow([]))).toBe('deny');
    expect(check(allow([{ clauses: [] }]))).toBe('allow');
    expect(check(allow([{}]))).toBe('allow');
  });

  it('a clause with no matches always matches; a Match with no fields never matches', () => {
    expect(check(allow([{ clauses: [{ matches: [] }] }]))).toBe('allow');
    expect(check(allow([{ clauses: [{ matches: [{}] }] }]))).toBe('deny');
    expect(check(allow([{ clauses: [{ matches: [{}, { destinationPorts: [8080] }] }] }]))).toBe('allow');
  });

  it('accepts protobufjs-style objects: enum names, Buffers, oneof via matchType', () => {
    const decoded = allow(
      [
        {
          clauses: [
            {
              matches: [
                {
                  sourceIps: [{ address: Buffer.from([10, 0, 0, 0]), length: 8 }],
                  principals: [{ matchType: 'suffix', suffix: '/sa/sleep', exact: '' }],
                },
              ],
            },
          ],
        },
      ],
      { scope: 'NAMESPACE', action: 'ALLOW' },
    );
    expect(check(decoded)).toBe('allow');
  });

  it('a oneof read from a prototype default does not count as set', () => {
    const proto = { exact: '', prefix: '', suffix: '' };
    const sm = Object.assign(Object.create(proto), { prefix: 'cluster.local/ns/foo/' });
    expect(check(allow([{ clauses: [{ matches: [{ principals: [sm] }] }] }]))).toBe('allow');
  });

  it('scopes: GLOBAL everywhere, NAMESPACE in its namespace, WORKLOAD_SELECTOR only when the workload lists it', () => {
    const deny = (scope: Authorization['scope'], namespace = 'foo'): Authorization => ({
      name: 'd',
      namespace,
      scope,
      action: 1,
      rules: [{}],
    });
    expect(check(deny(AuthorizationScope.GLOBAL, 'istio-system'), CONN, { namespace: 'bar' })).toBe('deny');
    expect(check(deny(AuthorizationScope.NAMESPACE), CONN, { namespace: 'bar' })).toBe('allow');
    expect(check(deny(AuthorizationScope.NAMESPACE), CONN, { namespace: 'foo' })).toBe('deny');
    expect(check(deny(AuthorizationScope.WORKLOAD_SELECTOR), CONN, { namespace: 'foo' })).toBe('allow');
    expect(
      compileAuthorizations([deny(AuthorizationScope.WORKLOAD_SELECTOR)]).checkConnection(CONN, {
        workload: { namespace: 'foo', policies: ['foo/d'] },
      }).decision,
    ).toBe('deny');
  });

  it('reports malformed Authorizations with paths, atomically', () => {
    let err: { code?: string; problems?: unknown[] } = {};
    try {
      compileAuthorizations([
        allow(
          [
            {
              clauses: [
                {
                  matches: [
                    {
                      sourceIps: [{ address: bytes(1, 2, 3), length: 8 }],
                      principals: [{}],
                      destinationPorts: [70000],
                    },
                  ],
                },
              ],
            },
          ],
          { scope: 9 as never },
        ),
      ]);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('ERR_WORKLOAD_AUTHORIZATION_INVALID');
    expect(err.problems).toEqual([
      { path: 'foo/a: scope', message: expect.stringContaining('is not a scope') },
      { path: 'foo/a: rules[0].clauses[0].matches[0].destinationPorts[0]', message: '70000 is not a port' },
      {
        path: 'foo/a: rules[0].clauses[0].matches[0].principals[0]',
        message: expect.stringContaining('no match type is set'),
      },
      { path: 'foo/a: rules[0].clauses[0].matches[0].sourceIps[0]', message: 'address has 3 bytes; 4 or 16 expected' },
    ]);
  });

  it('an AuthorizationPolicy and its conversion decide alike at L4', () => {
    const policies = [
      ap('p1', {
        rules: [
          {
            from: [{ source: { namespaces: ['foo'], notIpBlocks: ['10.0.0.0/30'] } }],
            to: [{ operation: { ports: ['8080'] } }],
          },
        ],
      }),
      ap('p2', { action: 'DENY', rules: [{ from: [{ source: { principals: ['*/sa/evil'] } }] }] }),
    ];
    const direct = compilePolicies(policies);
    const viaXds = compileAuthorizations(
      policies.map((p) => toWorkloadAuthorization(p).authorization as Authorization),
    );
    for (const conn of [
      CONN,
      { ...CONN, sourceIp: '10.0.0.2' },
      { ...CONN, sourceIdentity: id('foo', 'evil') },
      { ...CONN, destinationPort: 1 },
    ]) {
      expect(viaXds.checkConnection(conn, HTTPBIN).decision).toBe(direct.checkConnection(conn, HTTPBIN).decision);
    }
  });
});

describe('fromWorkloadAuthorization (Authorization -> AuthorizationPolicy)', () => {
  it('round-trips a converted policy into an equivalent, valid policy', () => {
    const original = ap('p', {
      selector: { matchLabels: { app: 'httpbin' } },
      rules: [
        {
          from: [{ source: { principals: ['cluster.local/ns/a/*'] } }, { source: { ipBlocks: ['10.0.0.0/8'] } }],
          to: [{ operation: { ports: ['80'] } }, { operation: { notPorts: ['81'] } }],
          when: [{ key: 'destination.ip', values: ['10.0.1.0/24'] }],
        },
      ],
    });
    const auth = toWorkloadAuthorization(original).authorization as Authorization;
    const { policy, scope } = fromWorkloadAuthorization(auth, { selector: { app: 'httpbin' } });
    expect(scope).toBe('WORKLOAD_SELECTOR');
    expect(validatePolicy(policy).problems).toEqual([]);
    expect(policy.spec).toEqual({ action: 'ALLOW', ...original.spec });
  });

  it('distributes clauses that are neither from nor to over several rules', () => {
    const auth: Authorization = {
      name: 'x',
      namespace: 'foo',
      scope: 'NAMESPACE',
      action: 'DENY',
      rules: [
        {
          clauses: [
            {
              matches: [
                { destinationIps: [{ address: bytes(10, 0, 1, 10), length: 32 }] },
                { destinationPorts: [8080], namespaces: [{ exact: 'bar' }] },
              ],
            },
            { matches: [{ namespaces: [{ exact: 'foo' }] }] },
          ],
        },
        { clauses: [{ matches: [{}] }] },
      ],
      dryRun: true,
    };
    const { policy } = fromWorkloadAuthorization(auth);
    expect(policy.metadata.annotations).toEqual({ 'istio.io/dry-run': 'true' });
    expect(policy.spec.rules).toEqual([
      {
        when: [
          { key: 'destination.ip', values: ['10.0.1.10/32'] },
          { key: 'source.namespace', values: ['foo'] },
        ],
      },
      {
        when: [
          { key: 'source.namespace', values: ['bar'] },
          { key: 'destination.port', values: ['8080'] },
          { key: 'source.namespace', values: ['foo'] },
        ],
      },
    ]);
    // Same meaning under both evaluators.
    const a = compileAuthorizations([{ ...auth, dryRun: false }]);
    const b = compilePolicies([{ ...policy, metadata: { name: 'x', namespace: 'foo' } }]);
    for (const conn of [CONN, { ...CONN, destinationIp: '10.0.1.11' }, { ...CONN, sourceIdentity: id('bar', 'x') }]) {
      expect(b.checkConnection(conn, HTTPBIN).decision).toBe(a.checkConnection(conn, HTTPBIN).decision);
    }
  });

  it('refuses what AuthorizationPolicy cannot express', () => {
    expect(() =>
      fromWorkloadAuthorization({
        name: 'x',
        namespace: 'foo',
        rules: [{ clauses: [{ matches: [{ principals: [{ exact: 'a*b' }] }] }] }],
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_NOT_REPRESENTABLE' }));
    const wide = {
      matches: [1, 2, 3, 4].map((p) => ({ destinationIps: [{ address: bytes(10, 0, 0, p), length: 32 }] })),
    };
    expect(() =>
      fromWorkloadAuthorization(
        { name: 'x', namespace: 'foo', rules: [{ clauses: [wide, wide, wide, wide, wide, wide] }] },
        { maxRules: 1000 },
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_NOT_REPRESENTABLE' }));
    expect(() => fromWorkloadAuthorization({ name: '', namespace: 'foo' })).toThrow(
      expect.objectContaining({ code: 'ERR_WORKLOAD_AUTHORIZATION_INVALID' }),
    );
  });
});
