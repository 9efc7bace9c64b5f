import type { AuthorizationInfo, ServiceInfo, WorkloadInfo } from '../../src/model.js';

export function workload(overrides: Partial<WorkloadInfo> & Pick<WorkloadInfo, 'uid' | 'addresses'>): WorkloadInfo {
  return {
    name: overrides.uid,
    namespace: 'default',
    hostname: '',
    network: '',
    tunnelProtocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'default',
    node: 'node-1',
    canonicalName: overrides.uid,
    canonicalRevision: 'v1',
    workloadType: 'POD',
    workloadName: overrides.uid,
    authorizationPolicies: [],
    status: 'HEALTHY',
    clusterId: 'Kubernetes',
    services: {},
    ...overrides,
  };
}

export function service(overrides: Partial<ServiceInfo> & Pick<ServiceInfo, 'name' | 'addresses'>): ServiceInfo {
  return {
    namespace: 'default',
    hostname: `${overrides.name}.${overrides.namespace ?? 'default'}.svc.cluster.local`,
    ports: [{ servicePort: 80, targetPort: 8080 }],
    subjectAltNames: [],
    ...overrides,
  };
}

export function policy(overrides: Partial<AuthorizationInfo> & Pick<AuthorizationInfo, 'name'>): AuthorizationInfo {
  return { namespace: 'default', scope: 'NAMESPACE', action: 'ALLOW', rules: [], dryRun: false, ...overrides };
}
