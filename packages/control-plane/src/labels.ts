/** Label and annotation names with a meaning to the control plane (Istio's, plus the one for WorkloadEntry nodes). */
export const LABELS = {
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
  appName: 'app.kubernetes.io/name',
  appVersion: 'app.kubernetes.io/version',
  app: 'app',
  version: 'version',
  workloadName: 'service.istio.io/workload-name',
  useWaypoint: 'istio.io/use-waypoint',
  useWaypointNamespace: 'istio.io/use-waypoint-namespace',
  waypointFor: 'istio.io/waypoint-for',
  gatewayManaged: 'gateway.istio.io/managed',
  gatewayName: 'gateway.networking.k8s.io/gateway-name',
  dataplaneMode: 'istio.io/dataplane-mode',
  tunnel: 'networking.istio.io/tunnel',
  podTemplateHash: 'pod-template-hash',
  /** A WorkloadEntry has no spec.nodeName; this label says which node's ztunnel serves it. */
  workloadEntryNode: 'ambient-ts.io/node',
} as const;

export const ANNOTATIONS = {
  redirection: 'ambient.istio.io/redirection',
} as const;

/** Value of gateway.istio.io/managed on waypoints (and their Services) deployed by Istio. */
export const MESH_CONTROLLER = 'istio.io-mesh-controller';
export const WAYPOINT_GATEWAY_CLASS = 'istio-waypoint';

/** True when every selector label is present with the same value (an empty selector matches everything). */
export function selectorMatches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/** Istio's canonical service name and revision from the usual labels. */
export function canonicalService(labels: Readonly<Record<string, string>>, workloadName: string): [string, string] {
  const name = labels[LABELS.canonicalName] ?? labels[LABELS.appName] ?? labels[LABELS.app] ?? workloadName;
  const revision = labels[LABELS.canonicalRevision] ?? labels[LABELS.appVersion] ?? labels[LABELS.version] ?? 'latest';
  return [name, revision];
}
