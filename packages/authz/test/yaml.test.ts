import { parseAllDocuments } from 'yaml';
import { compilePolicies, explainDecision, parsePolicy, validatePolicy } from '../src/index.js';
import { id } from './helpers.js';

const MESH = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: require-mtls
  namespace: istio-system
spec:
  action: DENY
  rules:
  - from:
    - source:
        notPrincipals: ["*"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: httpbin
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
      version: v1
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
  - to:
    - operation:
        ports: ["9090"]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: deny-admin
  namespace: foo
  annotations:
    istio.io/dry-run: "true"
spec:
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
`;

function load(text: string): unknown[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS();
  });
}

const HTTPBIN = { workload: { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } } };
const GOOGLE = { claims: { iss: 'https://accounts.google.com', sub: 'u1' } };

describe('policies written in YAML', () => {
  const docs = load(MESH);

  it('validate', () => {
    for (const d of docs) expect(validatePolicy(d).problems).toEqual([]);
    expect(parsePolicy(docs[1]).spec.rules).toHaveLength(2);
  });

  const engine = compilePolicies(docs);

  it('evaluate requests (Istio reference example)', () => {
    const base = { sourceIp: '10.0.0.1', destinationIp: '10.0.0.2', destinationPort: 8000 };
    const ok = engine.checkRequest(
      { ...base, sourceIdentity: id('default', 'sleep'), method: 'GET', path: '/info/x', auth: GOOGLE },
      HTTPBIN,
    );
    expect(ok).toMatchObject({ decision: 'allow', policy: { namespace: 'foo', name: 'httpbin' }, rule: 0 });

    const wrongMethod = engine.checkRequest(
      { ...base, sourceIdentity: id('test', 'x'), method: 'PUT', path: '/data', auth: GOOGLE },
      HTTPBIN,
    );
    expect(wrongMethod).toMatchObject({ decision: 'deny', reason: 'no-allow-match' });

    const noJwt = engine.checkRequest(
      { ...base, sourceIdentity: id('test', 'x'), method: 'POST', path: '/data' },
      HTTPBIN,
    );
    expect(noJwt.decision).toBe('deny');

    const plaintext = engine.checkRequest({ ...base, method: 'GET', path: '/info', auth: GOOGLE }, HTTPBIN);
    expect(plaintext).toMatchObject({
      decision: 'deny',
      reason: 'deny-policy',
      policy: { namespace: 'istio-system', name: 'require-mtls' },
    });
  });

  it('evaluate connections with L4 degradation', () => {
    const c = { sourceIdentity: id('default', 'sleep'), sourceIp: '10.0.0.1', destinationIp: '10.0.0.2' };
    // Rule 0 uses HTTP fields and is dropped at L4; rule 1 (port 9090) remains.
    expect(engine.checkConnection({ ...c, destinationPort: 8000 }, HTTPBIN).decision).toBe('deny');
    expect(engine.checkConnection({ ...c, destinationPort: 9090 }, HTTPBIN)).toMatchObject({
      decision: 'allow',
      rule: 1,
    });
  });

  it('report dry-run matches without enforcing them, and explain', () => {
    const d = engine.checkRequest(
      { sourceIdentity: id('default', 'sleep'), destinationPort: 9090, method: 'GET', path: '/admin/users' },
      HTTPBIN,
    );
    expect(d.decision).toBe('allow');
    expect(d.dryRun).toEqual([{ policy: { namespace: 'foo', name: 'deny-admin', action: 'DENY' }, rule: 0 }]);
    expect(d.shadowDecision).toBe('deny');
    expect(explainDecision(d)).toBe(
      'allow: ALLOW policy foo/httpbin rule 1 matched; dry-run matches: DENY policy foo/deny-admin rule 0; with dry-run policies enforced it would deny',
    );
  });

  it('a bad policy in YAML is reported with its path', () => {
    const [bad] = load(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: foo}
spec:
  rules:
  - from:
    - source: {ipBlocks: ["10.0.0.0/8"]}
  - {}
  - from:
    - source:
        ipBlocks: ["10.0.0.1", "10.0.0.0/33"]
    to:
    - operation: {ports: [8080]}
`);
    const r = validatePolicy(bad);
    expect(r.problems).toEqual([
      { path: 'spec.rules[2].from[0].source.ipBlocks[1]', message: '"10.0.0.0/33" is not a CIDR' },
      { path: 'spec.rules[2].to[0].operation.ports[0]', message: 'must be a string, got 8080 (quote it: "8080")' },
    ]);
  });
});
