import fc from 'fast-check';
import {
  type Authorization,
  type AuthorizationPolicy,
  compileAuthorizations,
  compilePolicies,
  type PolicyAction,
  type PolicyRule,
  type RequestAttributes,
  toWorkloadAuthorization,
} from '../src/index.js';
import { id } from './helpers.js';

const sub = <T>(values: T[]) => fc.subarray(values, { minLength: 1, maxLength: Math.min(2, values.length) });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const source = fc
  .record(
    {
      principals: sub(['cluster.local/ns/foo/sa/sleep', 'cluster.local/ns/bar/*', '*/sa/admin', '*']),
      notPrincipals: sub(['cluster.local/ns/foo/sa/sleep', '*']),
      namespaces: sub(['foo', 'bar', 'b*']),
      notNamespaces: sub(['foo', 'bar']),
      ipBlocks: sub(['10.0.0.0/24', '10.0.0.5', '192.168.0.0/16', 'fd00::/8']),
      notIpBlocks: sub(['10.0.0.0/30', '::ffff:10.0.0.0/120']),
      requestPrincipals: sub(['iss/alice', '*']),
      remoteIpBlocks: sub(['203.0.113.0/24']),
    },
    { requiredKeys: [] },
  )
  .filter((s) => Object.keys(s).length > 0);

const operation = fc
  .record(
    {
      ports: sub(['80', '8080', '9090']),
      notPorts: sub(['9090']),
      methods: sub(['GET', 'POST']),
      notMethods: sub(['DELETE']),
      paths: sub(['/admin*', '/public/{*}', '/api/{**}', '*.html', '/']),
      notPaths: sub(['/admin*']),
      hosts: sub(['*.example.com', 'httpbin*']),
    },
    { requiredKeys: [] },
  )
  .filter((o) => Object.keys(o).length > 0);

const condition = fc.oneof(
  fc.record({ key: fc.constant('destination.port'), values: sub(['8080', '80']) }),
  fc.record({ key: fc.constant('source.namespace'), notValues: sub(['bar']) }),
  fc.record({ key: fc.constant('source.ip'), values: sub(['10.0.0.0/8']) }),
  fc.record({ key: fc.constant('request.headers[x-user]'), values: sub(['admin', 'dev*', '*']) }),
  fc.record({ key: fc.constant('request.auth.claims[groups]'), values: sub(['admins']) }),
  fc.record({ key: fc.constant('connection.sni'), values: sub(['*.example.com']) }),
);

const rule: fc.Arbitrary<PolicyRule> = fc.record(
  {
    from: fc.array(
      source.map((s) => ({ source: s })),
      { minLength: 1, maxLength: 2 },
    ),
    to: fc.array(
      operation.map((o) => ({ operation: o })),
      { minLength: 1, maxLength: 2 },
    ),
    when: fc.array(condition, { minLength: 1, maxLength: 2 }),
  },
  { requiredKeys: [] },
);

interface Shape {
  ns: string;
  action: PolicyAction;
  selector?: string;
  rules?: PolicyRule[];
  dryRun: boolean;
}

const shape: fc.Arbitrary<Shape> = fc.record({
  ns: fc.constantFrom('foo', 'bar', 'istio-system'),
  action: fc.constantFrom<PolicyAction>('ALLOW', 'ALLOW', 'DENY', 'AUDIT'),
  selector: opt(fc.constantFrom('httpbin', 'other')),
  rules: opt(fc.array(rule, { minLength: 1, maxLength: 3 })),
  dryRun: fc.boolean(),
});

function toPolicy(s: Shape, name: string): AuthorizationPolicy {
  const rules = s.action === 'DENY' && !s.rules ? [{}] : s.rules;
  return {
    metadata: { name, namespace: s.ns, ...(s.dryRun ? { annotations: { 'istio.io/dry-run': 'true' } } : {}) },
    spec: {
      action: s.action,
      ...(s.selector ? { selector: { matchLabels: { app: s.selector } } } : {}),
      ...(rules ? { rules } : {}),
    },
  };
}

const policies = fc.array(shape, { maxLength: 6 }).map((shapes) => shapes.map((s, i) => toPolicy(s, `p${i}`)));

const request: fc.Arbitrary<RequestAttributes> = fc.record({
  sourceIdentity: fc.constantFrom(id('foo', 'sleep'), id('bar', 'admin'), id('baz', 'x'), null),
  sourceIp: fc.constantFrom('10.0.0.5', '10.0.0.1', '::ffff:10.0.0.2', '192.168.1.1', 'fd00::1'),
  destinationIp: fc.constant('10.0.1.10'),
  destinationPort: fc.constantFrom(80, 8080, 9090),
  method: fc.constantFrom('GET', 'POST', 'DELETE'),
  path: fc.constantFrom(
    '/',
    '/admin',
    '/public/x',
    '/public/../admin',
    '/api/a/b',
    '/index.html',
    '//admin',
    '/%61dmin',
  ),
  host: fc.constantFrom('httpbin.foo', 'www.example.com'),
  headers: fc.constantFrom({}, { 'x-user': 'admin' }, { 'X-User': 'developer' }),
  remoteIp: fc.constantFrom(undefined, '203.0.113.9'),
  sni: fc.constantFrom(undefined, 'api.example.com'),
  auth: fc.constantFrom(undefined, { principal: 'iss/alice', claims: { groups: ['admins'] } }),
});

const target = fc.constantFrom(
  { workload: { namespace: 'foo', labels: { app: 'httpbin' } } },
  { workload: { namespace: 'bar', labels: { app: 'other' } } },
  { workload: { namespace: 'istio-system' } },
);

const RUNS = { numRuns: 300 };

describe('properties', () => {
  it('adding a DENY policy can only turn allows into denies', () => {
    fc.assert(
      fc.property(
        policies,
        rule,
        fc.constantFrom('foo', 'istio-system'),
        request,
        target,
        (ps, denyRule, denyNs, r, t) => {
          const before = compilePolicies(ps);
          const after = compilePolicies([
            ...ps,
            toPolicy({ ns: denyNs, action: 'DENY', rules: [denyRule], dryRun: false }, 'added-deny'),
          ]);
          for (const check of ['L4', 'L7'] as const) {
            const b = check === 'L4' ? before.checkConnection(r, t) : before.checkRequest(r, t);
            const a = check === 'L4' ? after.checkConnection(r, t) : after.checkRequest(r, t);
            if (a.allowed && !b.allowed) return false;
          }
          return true;
        },
      ),
      RUNS,
    );
  });

  it('policy order does not change any decision', () => {
    fc.assert(
      fc.property(
        policies.chain((ps) =>
          fc.tuple(fc.constant(ps), fc.shuffledSubarray(ps, { minLength: ps.length, maxLength: ps.length })),
        ),
        request,
        target,
        ([ps, shuffled], r, t) => {
          const a = compilePolicies(ps);
          const b = compilePolicies(shuffled);
          expect(b.checkConnection(r, t)).toEqual(a.checkConnection(r, t));
          expect(b.checkRequest(r, t)).toEqual(a.checkRequest(r, t));
        },
      ),
      RUNS,
    );
  });

  it('L4 decisions equal those of the converted workload-API Authorizations (what ztunnel receives)', () => {
    fc.assert(
      fc.property(policies, request, (ps, r) => {
        const t = { workload: { namespace: 'foo', labels: { app: 'httpbin' } } };
        const l4 = ps.filter((p) => p.spec.action === 'ALLOW' || p.spec.action === 'DENY');
        const direct = compilePolicies(l4).checkConnection(r, t);
        // istiod lists, on each Workload, the selector policies that select it (same or root namespace).
        const listed = l4.filter(
          (p) =>
            !p.spec.selector ||
            (p.spec.selector.matchLabels?.app === 'httpbin' &&
              ['foo', 'istio-system'].includes(p.metadata.namespace ?? '')),
        );
        const convs = new Map(listed.map((p) => [p.metadata.name, toWorkloadAuthorization(p)]));
        const auths = [...convs.values()].map((c) => c.authorization as Authorization);
        const viaXds = compileAuthorizations(auths).checkConnection(r, {
          workload: { ...t.workload, policies: auths.map((a) => `${a.namespace}/${a.name}`) },
        });
        // Authorization rule i came from spec.rules[ruleIndex[i]] (ALLOW rules with HTTP fields are left out).
        const rule =
          viaXds.rule === undefined ? undefined : convs.get(viaXds.policy?.name ?? '')?.ruleIndex[viaXds.rule];
        expect({ decision: viaXds.decision, reason: viaXds.reason, policy: viaXds.policy?.name, rule }).toEqual({
          decision: direct.decision,
          reason: direct.reason,
          policy: direct.policy?.name,
          rule: direct.rule,
        });
      }),
      RUNS,
    );
  });

  it('never throws on generated traffic, and only invalid requests lack a policy-based reason', () => {
    fc.assert(
      fc.property(policies, request, target, fc.string({ maxLength: 40 }), (ps, r, t, junkPath) => {
        const e = compilePolicies(ps);
        const d = e.checkRequest({ ...r, path: `/${junkPath}` }, t);
        expect(['allow', 'deny']).toContain(d.decision);
        if (d.reason === 'invalid-request') expect(d.decision).toBe('deny');
      }),
      RUNS,
    );
  });
});
