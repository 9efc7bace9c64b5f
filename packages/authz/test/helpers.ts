import type { AuthorizationPolicy, AuthorizationPolicySpec, RequestAttributes } from '../src/index.js';

export const TD = 'cluster.local';
export const id = (ns: string, sa: string) => `spiffe://${TD}/ns/${ns}/sa/${sa}`;

/** An AuthorizationPolicy in namespace `foo` unless told otherwise. */
export function ap(
  name: string,
  spec: AuthorizationPolicySpec,
  opts: { ns?: string; dryRun?: boolean } = {},
): AuthorizationPolicy {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name,
      namespace: opts.ns ?? 'foo',
      ...(opts.dryRun ? { annotations: { 'istio.io/dry-run': 'true' } } : {}),
    },
    spec,
  };
}

/** The default caller: foo/sleep at 10.0.0.5 calling 10.0.1.10:8080. */
export const CONN = {
  sourceIdentity: id('foo', 'sleep'),
  sourceIp: '10.0.0.5',
  destinationIp: '10.0.1.10',
  destinationPort: 8080,
};

export function req(over: Partial<RequestAttributes> = {}): RequestAttributes {
  return { ...CONN, method: 'GET', path: '/', host: 'httpbin.foo.svc.cluster.local', headers: {}, ...over };
}

export const HTTPBIN = { workload: { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } } };
