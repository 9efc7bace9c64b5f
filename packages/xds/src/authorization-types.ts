import type { ResourceInput } from './workload-types.js';

/**
 * Plain TypeScript shapes of `istio.security.Authorization` (ztunnel's L4 policy) as decoded by
 * this package: camelCase, enums by name, IPs as raw bytes, lists always present.
 */
export type AuthorizationScope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type AuthorizationAction = 'ALLOW' | 'DENY';

export type StringMatch =
  | { matchType: 'exact'; exact: string }
  | { matchType: 'prefix'; prefix: string }
  | { matchType: 'suffix'; suffix: string }
  | { matchType: 'presence'; presence: Record<string, never> };

/** An IP prefix: 4 or 16 address bytes and the prefix length in bits. */
export interface AuthorizationAddress {
  address: Uint8Array;
  length: number;
}

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

/** Values of one field are ORed; different fields are ANDed. */
export interface AuthorizationMatch {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: AuthorizationAddress[];
  notSourceIps: AuthorizationAddress[];
  destinationIps: AuthorizationAddress[];
  notDestinationIps: AuthorizationAddress[];
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: ServiceAccountMatch[];
  notServiceAccounts: ServiceAccountMatch[];
}

/** Matches are ORed. */
export interface AuthorizationClause {
  matches: AuthorizationMatch[];
}

/** Clauses are ANDed. */
export interface AuthorizationRule {
  clauses: AuthorizationClause[];
}

/** `istio.security.Authorization`; resource name `<namespace>/<name>`. Rules are ORed. */
export interface Authorization {
  name: string;
  namespace: string;
  scope: AuthorizationScope;
  action: AuthorizationAction;
  rules: AuthorizationRule[];
  dryRun: boolean;
}

export type AuthorizationInput = ResourceInput<Omit<Authorization, 'rules'>> & {
  rules?: {
    clauses?: { matches?: (ResourceInput<Omit<AuthorizationMatch, StringMatchKeys>> & StringMatchInputs)[] }[];
  }[];
};

type StringMatchKeys = 'namespaces' | 'notNamespaces' | 'principals' | 'notPrincipals';
type StringMatchInput =
  | { exact: string }
  | { prefix: string }
  | { suffix: string }
  | { presence: Record<string, never> };
type StringMatchInputs = { [K in StringMatchKeys]?: StringMatchInput[] };
