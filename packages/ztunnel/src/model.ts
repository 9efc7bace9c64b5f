/**
 * The ztunnel's view of the mesh, normalized from Istio's workload API (istio.workload.Address and
 * istio.security.Authorization): IPs are strings, enums are names, absent fields have their proto defaults.
 * Everything downstream (lookups, resolution, policy, metrics) works on these shapes.
 */
export interface NetworkAddress {
  network: string;
  address: string;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

export interface GatewayAddress {
  /** Exactly one of hostname (a service) or address is set. */
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hbonePort: number;
}

export interface PortMapping {
  servicePort: number;
  /** 0 means "same as the service port". */
  targetPort: number;
  appProtocol?: string;
}

export type LoadBalancingScope = 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER' | 'NETWORK';

export interface LoadBalancing {
  /** Scopes in order of preference. */
  routingPreference: LoadBalancingScope[];
  /** STRICT: only endpoints matching every scope; FAILOVER: prefer the best match, fall back. */
  mode: 'UNSPECIFIED' | 'STRICT' | 'FAILOVER';
  /** ALLOW_ALL sends to unhealthy endpoints too. */
  healthPolicy: 'ONLY_HEALTHY' | 'ALLOW_ALL';
}

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface WorkloadInfo {
  uid: string;
  name: string;
  namespace: string;
  addresses: string[];
  hostname: string;
  network: string;
  tunnelProtocol: 'NONE' | 'HBONE';
  trustDomain: string;
  serviceAccount: string;
  waypoint?: GatewayAddress;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
  workloadName: string;
  /** Selector-scoped policies that apply, as "<namespace>/<name>". */
  authorizationPolicies: string[];
  status: 'HEALTHY' | 'UNHEALTHY';
  clusterId: string;
  /** Key "<namespace>/<hostname>" of each service selecting this workload, with its ports. */
  services: Record<string, PortMapping[]>;
  locality?: Locality;
}

export interface ServiceInfo {
  name: string;
  namespace: string;
  hostname: string;
  addresses: NetworkAddress[];
  ports: PortMapping[];
  subjectAltNames: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
}

/** Same shape as @ambient-ts/xds decodes it (and @ambient-ts/authz evaluates it): one field set. */
export type StringMatch =
  | { matchType: 'exact'; exact: string }
  | { matchType: 'prefix'; prefix: string }
  | { matchType: 'suffix'; suffix: string }
  | { matchType: 'presence'; presence: Record<string, never> };

/** An IP prefix: 4 or 16 address bytes and the prefix length in bits. */
export interface CidrMatch {
  address: Uint8Array;
  length: number;
}

export interface PolicyMatch {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: CidrMatch[];
  notSourceIps: CidrMatch[];
  destinationIps: CidrMatch[];
  notDestinationIps: CidrMatch[];
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: Array<{ namespace: string; serviceAccount: string }>;
  notServiceAccounts: Array<{ namespace: string; serviceAccount: string }>;
}

export interface AuthorizationInfo {
  name: string;
  namespace: string;
  scope: 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
  action: 'ALLOW' | 'DENY';
  rules: Array<{ clauses: Array<{ matches: PolicyMatch[] }> }>;
  dryRun: boolean;
}

/** The SPIFFE identity of a workload. */
export function workloadIdentity(
  w: Pick<WorkloadInfo, 'trustDomain' | 'namespace' | 'serviceAccount'>,
  defaultTrustDomain: string,
): string {
  return `spiffe://${w.trustDomain || defaultTrustDomain}/ns/${w.namespace}/sa/${w.serviceAccount || 'default'}`;
}

export function policyKey(p: Pick<AuthorizationInfo, 'namespace' | 'name'>): string {
  return `${p.namespace}/${p.name}`;
}

export function serviceKey(s: Pick<ServiceInfo, 'namespace' | 'hostname'>): string {
  return `${s.namespace}/${s.hostname}`;
}
