/**
 * The condition keys (`when[].key`) of AuthorizationPolicy and what each needs. Keys with a `[name]` part
 * (`request.headers[x-token]`, `request.auth.claims[groups]`) are parsed by {@link parseConditionKey}.
 */
export type ConditionAttribute =
  | 'request.headers'
  | 'source.ip'
  | 'remote.ip'
  | 'source.namespace'
  | 'source.principal'
  | 'source.serviceAccount'
  | 'request.auth.principal'
  | 'request.auth.audiences'
  | 'request.auth.presenter'
  | 'request.auth.claims'
  | 'destination.ip'
  | 'destination.port'
  | 'connection.sni';

export interface ParsedConditionKey {
  attribute: ConditionAttribute;
  /** For `request.headers[X]`: the header name, lower-cased. For claims: the claim path (nested `[a][b]`). */
  name?: string;
  claimPath?: string[];
}

const PLAIN: ReadonlySet<string> = new Set<ConditionAttribute>([
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
]);

/** Keys ztunnel can evaluate from a connection alone. Everything else needs HTTP (a waypoint). */
export const L4_CONDITION_ATTRIBUTES: ReadonlySet<ConditionAttribute> = new Set<ConditionAttribute>([
  'source.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'destination.ip',
  'destination.port',
]);

const RETIRED: Record<string, string> = {
  'destination.namespace': 'is not supported: the policy applies to its own namespace (metadata.namespace)',
  'destination.name': 'is not supported (it only existed in the retired v1alpha1 API)',
  'destination.user': 'is not supported (it only existed in the retired v1alpha1 API)',
};

/** Parses a condition key; returns a reason string when the key is unknown or malformed. */
export function parseConditionKey(key: string): ParsedConditionKey | string {
  if (PLAIN.has(key)) return { attribute: key as ConditionAttribute };
  const retired = RETIRED[key];
  if (retired) return `condition key ${JSON.stringify(key)} ${retired}`;
  if (key.startsWith('destination.labels[')) {
    return `condition key ${JSON.stringify(key)} is not supported: use spec.selector to choose workloads by label`;
  }
  for (const attribute of ['request.headers', 'request.auth.claims'] as const) {
    if (!key.startsWith(`${attribute}[`)) continue;
    if (!key.endsWith(']') || key.length <= attribute.length + 2) {
      return `condition key ${JSON.stringify(key)} is malformed: write ${attribute}[<name>]`;
    }
    const inner = key.slice(attribute.length + 1, -1);
    if (attribute === 'request.headers') {
      if (inner.includes('[') || inner.includes(']') || inner.trim() !== inner) {
        return `condition key ${JSON.stringify(key)} is malformed: write request.headers[<header-name>]`;
      }
      return { attribute, name: inner.toLowerCase() };
    }
    const claimPath = inner.split('][');
    if (claimPath.some((c) => c === '' || c.includes('[') || c.includes(']'))) {
      return `condition key ${JSON.stringify(key)} is malformed: write request.auth.claims[<claim>] or request.auth.claims[<claim>][<nested>]`;
    }
    return { attribute, claimPath };
  }
  return `unknown condition key ${JSON.stringify(key)}: supported keys are request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<name>], destination.ip, destination.port, connection.sni`;
}
