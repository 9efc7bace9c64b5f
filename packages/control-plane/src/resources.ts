/**
 * The resources the control plane serves, as plain objects in protobufjs conventions (camelCase, enums by
 * name, IPs as 4 or 16 raw bytes, a oneof as the one field that is set). The shapes follow Istio's workload
 * API (istio.workload.Address, istio.security.Authorization) and are what @ambient-ts/xds encodes.
 */

export interface NetworkAddressResource {
  network: string;
  address: Uint8Array;
}

export interface GatewayAddressResource {
  hostname?: { namespace: string; hostname: string };
  address?: NetworkAddressResource;
  hboneMtlsPort: number;
}

export interface PortResource {
  servicePort: number;
  targetPort: number;
  /** Sent only when known (the decoder's default is UNKNOWN). */
  appProtocol?: 'HTTP11' | 'HTTP2' | 'GRPC';
}

export interface LocalityResource {
  region: string;
  zone: string;
  subzone: string;
}

export interface LoadBalancingResource {
  routingPreference: Array<'NETWORK' | 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER'>;
  mode: 'STRICT' | 'FAILOVER';
}

export interface WorkloadResource {
  uid: string;
  name: string;
  namespace: string;
  addresses: Uint8Array[];
  network: string;
  tunnelProtocol: 'NONE' | 'HBONE';
  /** '' when the trust domain is cluster.local (as Istio sends it; proxies default to cluster.local). */
  trustDomain: string;
  serviceAccount: string;
  waypoint: GatewayAddressResource | null;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
  workloadName: string;
  nativeTunnel: boolean;
  /** `<namespace>/<hostname>` of each service this workload backs -> the ports it serves for it. */
  services: Record<string, { ports: PortResource[] }>;
  /** `<namespace>/<name>` of the selector-scoped policies that apply to this workload. */
  authorizationPolicies: string[];
  status: 'HEALTHY' | 'UNHEALTHY';
  clusterId: string;
  locality: LocalityResource | null;
}

export interface ServiceResource {
  name: string;
  namespace: string;
  hostname: string;
  addresses: NetworkAddressResource[];
  ports: PortResource[];
  subjectAltNames: string[];
  waypoint: GatewayAddressResource | null;
  loadBalancing: LoadBalancingResource | null;
}

/** `istio.workload.Address`: named by workload uid, or `<namespace>/<hostname>` for a service. */
export type AddressResource = { workload: WorkloadResource } | { service: ServiceResource };

export type StringMatchResource =
  | { exact: string }
  | { prefix: string }
  | { suffix: string }
  | { presence: Record<string, never> };

export interface AuthorizationMatchResource {
  namespaces?: StringMatchResource[];
  notNamespaces?: StringMatchResource[];
  principals?: StringMatchResource[];
  notPrincipals?: StringMatchResource[];
  sourceIps?: { address: Uint8Array; length: number }[];
  notSourceIps?: { address: Uint8Array; length: number }[];
  destinationIps?: { address: Uint8Array; length: number }[];
  notDestinationIps?: { address: Uint8Array; length: number }[];
  destinationPorts?: number[];
  notDestinationPorts?: number[];
  serviceAccounts?: { namespace: string; serviceAccount: string }[];
  notServiceAccounts?: { namespace: string; serviceAccount: string }[];
}

/** `istio.security.Authorization`, named `<namespace>/<name>`. Rules are ORed, clauses ANDed, matches ORed. */
export interface AuthorizationResource {
  name: string;
  namespace: string;
  scope: 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
  action: 'ALLOW' | 'DENY';
  rules: { clauses: { matches: AuthorizationMatchResource[] }[] }[];
  dryRun: boolean;
}

/** What changed in the served resources after one config update. */
export interface ResourceDiff {
  readonly addresses: { readonly upserted: ReadonlyMap<string, AddressResource>; readonly removed: readonly string[] };
  readonly authorizations: {
    readonly upserted: ReadonlyMap<string, AuthorizationResource>;
    readonly removed: readonly string[];
  };
}

export function emptyDiff(): ResourceDiff {
  return { addresses: { upserted: new Map(), removed: [] }, authorizations: { upserted: new Map(), removed: [] } };
}

export function diffSize(d: ResourceDiff): number {
  return (
    d.addresses.upserted.size +
    d.addresses.removed.length +
    d.authorizations.upserted.size +
    d.authorizations.removed.length
  );
}
