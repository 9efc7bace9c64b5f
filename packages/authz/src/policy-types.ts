/**
 * AuthorizationPolicy (`security.istio.io/v1` and `v1beta1`) as users write it in YAML.
 * Field names are Istio's; every list is optional.
 */
export interface AuthorizationPolicy {
  apiVersion?: string;
  kind?: string;
  metadata: PolicyMetadata;
  spec: AuthorizationPolicySpec;
}

export interface PolicyMetadata {
  name: string;
  /** Defaults to `default`, as `kubectl apply` does for a namespaced object without one. */
  namespace?: string;
  /** `istio.io/dry-run: "true"` evaluates the policy and reports what it would do, without enforcing it. */
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export type PolicyAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  action?: PolicyAction;
  provider?: { name?: string };
  rules?: PolicyRule[];
}

export interface PolicyTargetReference {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface PolicyRule {
  from?: { source?: Source }[];
  to?: { operation?: Operation }[];
  when?: Condition[];
}

export interface Source {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
}

export interface Operation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface Condition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
export const DEFAULT_POLICY_NAMESPACE = 'default';
