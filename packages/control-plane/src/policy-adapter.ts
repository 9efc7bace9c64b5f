import {
  type AuthorizationPolicy,
  formatProblem,
  type Authorization as PolicyAuthorization,
  toWorkloadAuthorization,
  validatePolicy,
} from '@ambient-ts/authz';
import type { PolicyValidator } from './decode.js';
import type { AuthorizationResource } from './resources.js';
import type { PolicyConverter } from './translator.js';

const SCOPES = ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'] as const;
const ACTIONS = ['ALLOW', 'DENY'] as const;

/** Validation by @ambient-ts/authz: every problem with its path (`spec.rules[0].from[0].source.ipBlocks[1]: …`). */
export function authzValidator(rootNamespace: string): PolicyValidator {
  return (raw) => {
    const r = validatePolicy(raw, { rootNamespace });
    return r.ok ? [] : r.problems.map(formatProblem);
  };
}

/** AuthorizationPolicy -> ztunnel's Authorization through @ambient-ts/authz (L4 degradation included). */
export const authzConverter: PolicyConverter = (policy, rootNamespace) => {
  const conversion = toWorkloadAuthorization(policy.raw as unknown as AuthorizationPolicy, { rootNamespace });
  const notes = [...conversion.warnings, ...(conversion.skipped ? [conversion.skipped] : [])];
  const a = conversion.authorization;
  return a ? { authorization: toResource(a), notes } : { notes };
};

function enumName<T extends string>(v: unknown, names: readonly T[]): T {
  if (typeof v === 'number') return names[v] ?? (names[0] as T);
  return (names as readonly unknown[]).includes(v) ? (v as T) : (names[0] as T);
}

/** authz emits enums as numbers and oneofs as set fields; the served shape names enums. */
function toResource(a: PolicyAuthorization): AuthorizationResource {
  return {
    name: a.name,
    namespace: a.namespace,
    scope: enumName(a.scope, SCOPES),
    action: enumName(a.action, ACTIONS),
    rules: (a.rules ?? []).map((r) => ({
      clauses: (r.clauses ?? []).map((c) => ({ matches: (c.matches ?? []).map((m) => ({ ...m })) })),
    })) as AuthorizationResource['rules'],
    dryRun: a.dryRun ?? false,
  };
}
