import { spiffeId } from '@ambient-ts/identity';
import { type CustomAuthorizationCall, compilePolicies, explainDecision, normalizePath } from '../src/index.js';
import { ap, CONN, HTTPBIN, id, req } from './helpers.js';

describe('PolicyEngine', () => {
  it('marks AUDIT matches at L7 without changing the decision', () => {
    const e = compilePolicies([
      ap('audit-admin', { action: 'AUDIT', rules: [{ to: [{ operation: { paths: ['/admin*'] } }] }] }),
    ]);
    const d = e.checkRequest(req({ path: '/admin/x' }), HTTPBIN);
    expect(d).toMatchObject({
      decision: 'allow',
      audit: { policy: { name: 'audit-admin', action: 'AUDIT' }, rule: 0 },
    });
    expect(e.checkRequest(req({ path: '/x' }), HTTPBIN).audit).toBeUndefined();
    expect(explainDecision(d)).toContain('audited by AUDIT policy foo/audit-admin rule 0');
  });

  it('hands the CUSTOM provider the request, policy, rule and provider name', () => {
    const calls: CustomAuthorizationCall[] = [];
    const e = compilePolicies(
      [
        ap('ext', {
          action: 'CUSTOM',
          provider: { name: 'opa' },
          rules: [{ to: [{ operation: { ports: ['1'] } }] }, {}],
        }),
      ],
      {
        customProvider: (call) => {
          calls.push(call);
          return call.request.headers?.['x-ok'] === 'yes';
        },
      },
    );
    expect(e.checkRequest(req({ headers: { 'x-ok': 'yes' } }), HTTPBIN).decision).toBe('allow');
    const denied = e.checkRequest(req(), HTTPBIN);
    expect(denied).toMatchObject({ decision: 'deny', reason: 'custom-deny', rule: 1, policy: { provider: 'opa' } });
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatchObject({
      provider: 'opa',
      rule: 1,
      policy: { namespace: 'foo', name: 'ext', action: 'CUSTOM' },
    });
  });

  it('awaits an asynchronous CUSTOM provider in checkRequestAsync and refuses it in checkRequest', async () => {
    const e = compilePolicies(
      [
        ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] }),
        ap('deny-post', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['POST'] } }] }] }),
      ],
      {
        customProvider: async (call) => (call.request.path === '/ok' ? 'allow' : 'deny'),
      },
    );
    expect(await e.checkRequestAsync(req({ path: '/ok' }), HTTPBIN)).toMatchObject({ decision: 'allow' });
    expect(await e.checkRequestAsync(req({ path: '/ok', method: 'POST' }), HTTPBIN)).toMatchObject({
      decision: 'deny',
      reason: 'deny-policy',
    });
    expect(await e.checkRequestAsync(req({ path: '/no' }), HTTPBIN)).toMatchObject({
      decision: 'deny',
      reason: 'custom-deny',
    });
    const sync = e.checkRequest(req({ path: '/ok' }), HTTPBIN);
    expect(sync).toMatchObject({ decision: 'deny', reason: 'custom-error' });
    expect(sync.message).toContain('use checkRequestAsync');
  });

  it('a rejected provider promise fails closed', async () => {
    const e = compilePolicies([ap('ext', { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] })], {
      customProvider: () => Promise.reject(new Error('ext-authz unreachable')),
    });
    const d = await e.checkRequestAsync(req(), HTTPBIN);
    expect(d).toMatchObject({ decision: 'deny', reason: 'custom-error' });
    expect(d.message).toContain('ext-authz unreachable');
  });

  it('accepts a SpiffeId object as the source identity', () => {
    const e = compilePolicies([
      ap('allow', {
        rules: [{ from: [{ source: { principals: ['cluster.local/ns/foo/sa/sleep'], namespaces: ['foo'] } }] }],
      }),
    ]);
    expect(
      e.checkConnection({ ...CONN, sourceIdentity: spiffeId('cluster.local', 'foo', 'sleep') }, HTTPBIN).decision,
    ).toBe('allow');
    expect(
      e.checkConnection({ ...CONN, sourceIdentity: spiffeId('cluster.local', 'foo', 'other') }, HTTPBIN).decision,
    ).toBe('deny');
  });

  it('policiesFor lists only the applicable policies, in canonical order, and checks the same', () => {
    const policies = [
      ap('z-deny', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['1'] } }] }] }),
      ap('a-allow', { selector: { matchLabels: { app: 'httpbin' } }, rules: [{}] }),
      ap('other-app', { selector: { matchLabels: { app: 'other' } }, rules: [{}] }),
      ap('mesh', { action: 'DENY', rules: [{ to: [{ operation: { ports: ['2'] } }] }] }, { ns: 'istio-system' }),
      ap('elsewhere', { rules: [{}] }, { ns: 'bar' }),
      ap('waypoint-only', { targetRefs: [{ kind: 'Service', name: 'httpbin' }], rules: [{}] }),
    ];
    const e = compilePolicies(policies);
    expect(e.size).toBe(6);
    const set = e.policiesFor(HTTPBIN);
    expect(set.policies).toEqual(['foo/z-deny', 'istio-system/mesh', 'foo/a-allow']);
    for (const port of [1, 2, 3]) {
      expect(set.checkConnection({ ...CONN, destinationPort: port })).toEqual(
        e.checkConnection({ ...CONN, destinationPort: port }, HTTPBIN),
      );
    }
    expect(
      e.policiesFor({
        waypoint: { gateway: { namespace: 'foo', name: 'wp' }, service: { namespace: 'foo', name: 'httpbin' } },
      }).policies,
    ).toEqual(['foo/waypoint-only']);
  });

  it('rejects a malformed target', () => {
    const e = compilePolicies([]);
    expect(() => e.checkConnection(CONN, {} as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
    expect(() => e.checkConnection(CONN, { workload: {} } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    );
  });

  it('decisions are frozen and shared objects carry no per-request data', () => {
    const e = compilePolicies([ap('allow', { rules: [{}] })]);
    const a = e.checkConnection(CONN, HTTPBIN);
    const b = e.checkConnection({ ...CONN, sourceIdentity: id('bar', 'x') }, HTTPBIN);
    expect(Object.isFrozen(a)).toBe(true);
    expect(a).toBe(b);
    expect(JSON.stringify(a)).not.toContain('sleep');
  });

  it('dry-run shadow decision covers each combination', () => {
    const dryDeny = ap(
      'dry-deny',
      { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] },
      { dryRun: true },
    );
    const dryAllow = ap('dry-allow', { rules: [{ to: [{ operation: { paths: ['/public'] } }] }] }, { dryRun: true });
    const e = compilePolicies([dryDeny, dryAllow]);
    expect(e.checkRequest(req({ path: '/admin' }), HTTPBIN)).toMatchObject({
      decision: 'allow',
      shadowDecision: 'deny',
    });
    expect(e.checkRequest(req({ path: '/public' }), HTTPBIN)).toMatchObject({
      decision: 'allow',
      shadowDecision: 'allow',
    });
    expect(e.checkRequest(req({ path: '/other' }), HTTPBIN)).toMatchObject({
      decision: 'allow',
      shadowDecision: 'deny',
      dryRun: [],
    });
    const onlyDeny = compilePolicies([dryDeny]);
    expect(onlyDeny.checkRequest(req({ path: '/other' }), HTTPBIN)).toMatchObject({
      decision: 'allow',
      shadowDecision: 'allow',
    });
  });
});

describe('normalizePath', () => {
  it.each([
    ['/a/b/../c', 'BASE', '/a/c'],
    ['/a/./b/.', 'BASE', '/a/b/'],
    ['/../../x', 'BASE', '/x'],
    ['/%41%7e%2D%5f%2e', 'BASE', '/A~-_.'],
    ['/a%2Fb', 'BASE', '/a%2Fb'],
    ['/a%20b', 'BASE', '/a%20b'],
    ['/a%2', 'BASE', '/a%2'],
    ['/a\\b', 'BASE', '/a/b'],
    ['/a//b', 'BASE', '/a//b'],
    ['/a//b', 'MERGE_SLASHES', '/a/b'],
    ['/a%2F%2Fb', 'DECODE_AND_MERGE_SLASHES', '/a/b'],
    ['/a%5Cb', 'DECODE_AND_MERGE_SLASHES', '/a/b'],
    ['/a/../b', 'NONE', '/a/../b'],
    ['', 'BASE', '/'],
    ['*', 'BASE', '*'],
    ['/q?x=1#f', 'BASE', '/q'],
  ] as const)('%s with %s -> %s', (input, option, want) => {
    expect(normalizePath(input, option)).toBe(want);
  });

  it.each(['/a%00', '/a%00b', '/a\u0001', 'relative', '/a\u007f'])('rejects %j', (input) => {
    expect(normalizePath(input)).toBeUndefined();
  });
});
