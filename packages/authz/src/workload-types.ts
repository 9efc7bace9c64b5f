/**
 * Istio's workload-API `istio.security.Authorization` (what the control plane sends ztunnel over xDS), as plain
 * objects. Names are protobufjs's camelCase, so objects decoded by protobufjs can be passed in directly:
 * enums may be numbers (as decoded) or their names (as from `toObject({ enums: String })`), bytes are any
 * Uint8Array (a Buffer included), and a oneof is whichever of its fields is set.
 */

/** `Scope { GLOBAL = 0; NAMESPACE = 1; WORKLOAD_SELECTOR = 2; }` */
export const AuthorizationScope = { GLOBAL: 0, NAMESPACE: 1, WORKLOAD_SELECTOR: 2 } as const;
export type AuthorizationScopeName = keyof typeof AuthorizationScope;
export type AuthorizationScopeValue = (typeof AuthorizationScope)[AuthorizationScopeName];

/** `Action { ALLOW = 0; DENY = 1; }` */
export const AuthorizationAction = { ALLOW: 0, DENY: 1 } as const;
export type AuthorizationActionName = keyof typeof AuthorizationAction;
export type AuthorizationActionValue = (typeof AuthorizationAction)[AuthorizationActionName];

export interface Authorization {
  name: string;
  namespace: string;
  scope?: AuthorizationScopeValue | AuthorizationScopeName;
  action?: AuthorizationActionValue | AuthorizationActionName;
  /** A policy matches when any rule matches; no rules: it never matches. */
  rules?: AuthorizationRule[];
  dryRun?: boolean;
}

/** A rule matches when every clause matches (a rule with no clauses always matches). */
export interface AuthorizationRule {
  clauses?: AuthorizationClause[];
}

/**
 * A clause matches when any of its matches matches; a clause with no matches always matches. As in ztunnel, a
 * Match with no fields set never matches.
 */
export interface AuthorizationClause {
  matches?: AuthorizationMatch[];
}

/** Every non-empty field must match (any value of a positive list, none of a `not*` list). */
export interface AuthorizationMatch {
  namespaces?: StringMatch[];
  notNamespaces?: StringMatch[];
  principals?: StringMatch[];
  notPrincipals?: StringMatch[];
  sourceIps?: AuthorizationAddress[];
  notSourceIps?: AuthorizationAddress[];
  destinationIps?: AuthorizationAddress[];
  notDestinationIps?: AuthorizationAddress[];
  destinationPorts?: number[];
  notDestinationPorts?: number[];
  serviceAccounts?: ServiceAccountMatch[];
  notServiceAccounts?: ServiceAccountMatch[];
}

/** A CIDR: `address` is 4 or 16 bytes, `length` the prefix length. */
export interface AuthorizationAddress {
  address: Uint8Array;
  length: number;
}

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

/** `oneof { exact; prefix; suffix; google.protobuf.Empty presence }`; `matchType` names the set field when present. */
export interface StringMatch {
  exact?: string;
  prefix?: string;
  suffix?: string;
  presence?: Record<string, never>;
  matchType?: 'exact' | 'prefix' | 'suffix' | 'presence';
}
