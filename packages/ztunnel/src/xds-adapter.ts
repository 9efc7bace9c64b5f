/**
 * From @ambient-ts/xds's decoded workload-API resources to the ztunnel's normalized model: IP bytes become
 * strings, absent sub-messages become undefined. Policies keep the decoded shape (what @ambient-ts/authz
 * evaluates).
 */
import {
  type Address,
  type Authorization,
  formatIp,
  type Service,
  type Workload,
  type GatewayAddress as XdsGatewayAddress,
} from '@ambient-ts/xds';
import type { AuthorizationInfo, GatewayAddress, LoadBalancing, ServiceInfo, WorkloadInfo } from './model.js';

export function toWorkloadInfo(w: Workload): WorkloadInfo {
  const services: WorkloadInfo['services'] = {};
  for (const [key, list] of Object.entries(w.services))
    services[key] = list.ports.map((p) => ({ servicePort: p.servicePort, targetPort: p.targetPort }));
  const waypoint = toGateway(w.waypoint);
  return {
    uid: w.uid,
    name: w.name,
    namespace: w.namespace,
    addresses: w.addresses.map((a) => formatIp(a)),
    hostname: w.hostname,
    network: w.network,
    tunnelProtocol: w.tunnelProtocol,
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    ...(waypoint ? { waypoint } : {}),
    node: w.node,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    workloadType: w.workloadType,
    workloadName: w.workloadName,
    authorizationPolicies: [...w.authorizationPolicies],
    status: w.status,
    clusterId: w.clusterId,
    services,
    ...(w.locality ? { locality: { ...w.locality } } : {}),
  };
}

export function toServiceInfo(s: Service): ServiceInfo {
  const waypoint = toGateway(s.waypoint);
  const lb = s.loadBalancing;
  let loadBalancing: LoadBalancing | undefined;
  if (lb) {
    loadBalancing = {
      routingPreference: lb.routingPreference.filter(
        (x) => x !== 'UNSPECIFIED_SCOPE',
      ) as LoadBalancing['routingPreference'],
      // PASSTHROUGH (hand the choice to the network) has no meaning for a proxy that picks endpoints: like unspecified.
      mode: lb.mode === 'STRICT' || lb.mode === 'FAILOVER' ? lb.mode : 'UNSPECIFIED',
      healthPolicy: lb.healthPolicy,
    };
  }
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    addresses: s.addresses.map((a) => ({ network: a.network, address: formatIp(a.address) })),
    ports: s.ports.map((p) => ({ servicePort: p.servicePort, targetPort: p.targetPort })),
    subjectAltNames: [...s.subjectAltNames],
    ...(waypoint ? { waypoint } : {}),
    ...(loadBalancing ? { loadBalancing } : {}),
  };
}

export function toAuthorizationInfo(a: Authorization): AuthorizationInfo {
  return a as AuthorizationInfo;
}

function toGateway(g: XdsGatewayAddress | null): GatewayAddress | undefined {
  if (!g) return undefined;
  if (g.hostname && (g.destination === 'hostname' || !g.address))
    return { hostname: { ...g.hostname }, hbonePort: g.hboneMtlsPort };
  if (g.address)
    return {
      address: { network: g.address.network, address: formatIp(g.address.address) },
      hbonePort: g.hboneMtlsPort,
    };
  return undefined;
}

export type { Address };
