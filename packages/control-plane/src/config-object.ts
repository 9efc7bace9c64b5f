/**
 * The typed object model the control plane reads: Kubernetes-style objects as users write them, checked
 * and normalised (defaults applied, IPs parsed) so the translation never re-validates anything.
 */

/** Every kind the control plane accepts. Anything else is reported as an unknown kind and skipped. */
export type ConfigKind =
  | 'Namespace'
  | 'Service'
  | 'Pod'
  | 'WorkloadEntry'
  | 'AuthorizationPolicy'
  | 'PeerAuthentication'
  | 'Gateway'
  | 'HTTPRoute'
  | 'GRPCRoute'
  | 'DestinationRule'
  | 'RequestAuthentication';

/** The API group/versions accepted for each kind (the versions users find in Istio's and Kubernetes' docs). */
export const KIND_API_VERSIONS: Readonly<Record<ConfigKind, readonly string[]>> = {
  Namespace: ['v1'],
  Service: ['v1'],
  Pod: ['v1'],
  WorkloadEntry: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  AuthorizationPolicy: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  PeerAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
  Gateway: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  HTTPRoute: ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'],
  GRPCRoute: ['gateway.networking.k8s.io/v1'],
  DestinationRule: ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3'],
  RequestAuthentication: ['security.istio.io/v1', 'security.istio.io/v1beta1'],
};

/** Kinds whose objects live outside any namespace. */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<ConfigKind> = new Set<ConfigKind>(['Namespace']);

/** Kinds kept for the waypoint (L7); the ztunnel translation does not read them. */
export const L7_KINDS: ReadonlySet<ConfigKind> = new Set<ConfigKind>([
  'HTTPRoute',
  'GRPCRoute',
  'DestinationRule',
  'RequestAuthentication',
]);

/** Where an object came from: file (relative to the config dir), YAML document index and line. */
export interface ConfigOrigin {
  readonly file: string;
  readonly document: number;
  readonly line?: number;
}

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly controller: boolean;
}

export interface ObjectMeta {
  readonly name: string;
  /** '' for cluster-scoped kinds; 'default' when a namespaced object does not say. */
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
  readonly generateName?: string;
  readonly ownerReferences: readonly OwnerReference[];
}

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  /** A number, or the name of a container port (resolved per workload). */
  readonly targetPort: number | string;
  readonly protocol: string;
  readonly appProtocol?: string;
}

export interface ServiceSpec {
  /** undefined when the Service has no selector (it then selects no workloads). */
  readonly selector?: Readonly<Record<string, string>>;
  readonly ports: readonly ServicePort[];
  /** clusterIP / clusterIPs, `None` removed: the VIPs. */
  readonly clusterIPs: readonly string[];
  readonly trafficDistribution?: string;
  readonly internalTrafficPolicy?: string;
}

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol: string;
}

export interface PodCondition {
  readonly type: string;
  readonly status: string;
}

export interface PodSpec {
  readonly nodeName?: string;
  readonly serviceAccountName: string;
  readonly hostNetwork: boolean;
  readonly containerPorts: readonly ContainerPort[];
  readonly podIPs: readonly string[];
  readonly phase?: string;
  /** undefined when the YAML gives no status.conditions (treated as ready, see docs). */
  readonly conditions?: readonly PodCondition[];
}

export interface WorkloadEntrySpec {
  readonly address: string;
  readonly ports: Readonly<Record<string, number>>;
  /** metadata.labels overlaid with spec.labels. */
  readonly labels: Readonly<Record<string, string>>;
  readonly network?: string;
  readonly locality?: string;
  readonly serviceAccount: string;
}

export type MtlsMode = 'UNSET' | 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthenticationSpec {
  readonly selector?: Readonly<Record<string, string>>;
  readonly mode: MtlsMode;
  readonly portLevelMtls: ReadonlyMap<number, MtlsMode>;
}

export interface AuthorizationPolicySpec {
  readonly selector?: Readonly<Record<string, string>>;
  readonly hasTargetRefs: boolean;
  /** The policy spec exactly as written, for the authz package. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface GatewayListener {
  readonly name?: string;
  readonly port: number;
  readonly protocol: string;
  readonly allowedNamespaces: {
    readonly from: 'Same' | 'All' | 'Selector';
    readonly matchLabels?: Record<string, string>;
  };
}

export interface GatewaySpec {
  readonly gatewayClassName: string;
  readonly listeners: readonly GatewayListener[];
  readonly statusAddresses: readonly { readonly type: string; readonly value: string }[];
}

export interface SpecByKind {
  Namespace: Record<string, never>;
  Service: ServiceSpec;
  Pod: PodSpec;
  WorkloadEntry: WorkloadEntrySpec;
  AuthorizationPolicy: AuthorizationPolicySpec;
  PeerAuthentication: PeerAuthenticationSpec;
  Gateway: GatewaySpec;
  HTTPRoute: Readonly<Record<string, unknown>>;
  GRPCRoute: Readonly<Record<string, unknown>>;
  DestinationRule: Readonly<Record<string, unknown>>;
  RequestAuthentication: Readonly<Record<string, unknown>>;
}

/** One accepted object. `raw` is the object as written (for /debug/config_dump and L7 consumers). */
export interface ConfigObject<K extends ConfigKind = ConfigKind> {
  readonly kind: K;
  readonly apiVersion: string;
  readonly metadata: ObjectMeta;
  readonly spec: SpecByKind[K];
  readonly origin: ConfigOrigin;
  readonly raw: Readonly<Record<string, unknown>>;
}

export type AnyConfigObject = { [K in ConfigKind]: ConfigObject<K> }[ConfigKind];

/** `Kind/namespace/name` (`Kind/name` for cluster-scoped kinds): unique per object. */
export function objectKey(kind: ConfigKind, namespace: string, name: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

export function keyOf(obj: { kind: ConfigKind; metadata: { namespace: string; name: string } }): string {
  return objectKey(obj.kind, obj.metadata.namespace, obj.metadata.name);
}

export function isKind<K extends ConfigKind>(
  obj: AnyConfigObject,
  kind: K,
): obj is Extract<AnyConfigObject, { kind: K }> {
  return obj.kind === kind;
}
