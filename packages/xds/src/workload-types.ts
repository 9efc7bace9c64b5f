/**
 * Plain TypeScript shapes of Istio's workload API (istio.workload) as this package decodes them:
 * camelCase field names, enums as their names, IPs as raw bytes (4 or 16), every scalar and list
 * present (proto3 defaults filled in), absent sub-messages as `null`, and the name of the set
 * member of each oneof in a discriminator field (`Address.type`, `GatewayAddress.destination`).
 */
export type TunnelProtocol = 'NONE' | 'HBONE';
export type WorkloadType = 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type IPFamilies = 'AUTOMATIC' | 'IPV4_ONLY' | 'IPV6_ONLY' | 'DUAL';
export type NetworkMode = 'STANDARD' | 'HOST_NETWORK';
export type LoadBalancingScope = 'UNSPECIFIED_SCOPE' | 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER' | 'NETWORK';
export type LoadBalancingMode = 'UNSPECIFIED_MODE' | 'STRICT' | 'FAILOVER' | 'PASSTHROUGH';
export type HealthPolicy = 'ONLY_HEALTHY' | 'ALLOW_ALL';
export type ApplicationTunnelProtocol = 'NONE' | 'PROXY';

export interface NetworkAddress {
  network: string;
  /** 4 (IPv4) or 16 (IPv6) bytes, network order. */
  address: Uint8Array;
  /** Prefix length when the address is a range (field 3, optional); absent for a single address. */
  length?: number;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

export interface GatewayAddress {
  destination?: 'hostname' | 'address';
  hostname?: NamespacedHostname;
  address?: NetworkAddress;
  hboneMtlsPort: number;
}

/** The application protocol of a port, when known (Kubernetes appProtocol). */
export type AppProtocol = 'UNKNOWN' | 'HTTP11' | 'HTTP2' | 'GRPC';

export interface Port {
  servicePort: number;
  targetPort: number;
  /** Field 3; decoders fill 'UNKNOWN' when absent. */
  appProtocol?: AppProtocol;
}

export interface PortList {
  ports: Port[];
}

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface LoadBalancing {
  routingPreference: LoadBalancingScope[];
  mode: LoadBalancingMode;
  healthPolicy: HealthPolicy;
}

export interface ApplicationTunnel {
  protocol: ApplicationTunnelProtocol;
  port: number;
}

/** Opaque extension: `config` is a google.protobuf.Any kept as type URL plus bytes. */
export interface Extension {
  name: string;
  config: { typeUrl: string; value: Uint8Array } | null;
}

export interface Workload {
  uid: string;
  name: string;
  namespace: string;
  addresses: Uint8Array[];
  hostname: string;
  network: string;
  tunnelProtocol: TunnelProtocol;
  trustDomain: string;
  serviceAccount: string;
  waypoint: GatewayAddress | null;
  networkGateway: GatewayAddress | null;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: WorkloadType;
  workloadName: string;
  nativeTunnel: boolean;
  applicationTunnel: ApplicationTunnel | null;
  /** Key: `<namespace>/<hostname>` of a service this workload backs. */
  services: Record<string, PortList>;
  authorizationPolicies: string[];
  status: WorkloadStatus;
  clusterId: string;
  locality: Locality | null;
  networkMode: NetworkMode;
  extensions: Extension[];
  capacity: { value: number } | null;
}

export interface Service {
  name: string;
  namespace: string;
  hostname: string;
  addresses: NetworkAddress[];
  ports: Port[];
  subjectAltNames: string[];
  waypoint: GatewayAddress | null;
  loadBalancing: LoadBalancing | null;
  ipFamilies: IPFamilies;
  extensions: Extension[];
  canonical: boolean;
}

/** `istio.workload.Address`: the resource; its name is the workload uid or `<namespace>/<hostname>`. */
export type Address = { type: 'workload'; workload: Workload } | { type: 'service'; service: Service };

/** What the encoder accepts: the same shapes with everything optional (proto3 defaults fill gaps). */
export type ResourceInput<T> = T extends Uint8Array
  ? Uint8Array
  : T extends (infer U)[]
    ? ResourceInput<U>[]
    : T extends object
      ? { [K in keyof T]?: ResourceInput<T[K]> | null }
      : T;

export type WorkloadInput = ResourceInput<Workload>;
export type ServiceInput = ResourceInput<Service>;
export type AddressInput = { workload: WorkloadInput } | { service: ServiceInput };
