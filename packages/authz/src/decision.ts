import type { PolicyAction } from './policy-types.js';

/** Which policy (by namespace/name) and action. */
export interface PolicyRef {
  readonly namespace: string;
  readonly name: string;
  readonly action: PolicyAction;
  /** For CUSTOM policies: the extension provider's name. */
  readonly provider?: string;
}

export type DecisionReason =
  /** A CUSTOM policy matched and its provider said deny. */
  | 'custom-deny'
  /** A CUSTOM policy matched and its provider failed (threw, or answered asynchronously to a sync check). */
  | 'custom-error'
  /** A DENY policy matched. */
  | 'deny-policy'
  /** No ALLOW policy applies to the destination, so the default is allow. */
  | 'no-allow-policies'
  /** An ALLOW policy matched. */
  | 'allow-policy'
  /** ALLOW policies apply, and none matched. */
  | 'no-allow-match'
  /** The request could not be evaluated (a `%00` path, a malformed identity or address, a missing attribute a policy needs). */
  | 'invalid-request';

export interface DryRunMatch {
  readonly policy: PolicyRef;
  /** Index of the matching rule in `spec.rules`. */
  readonly rule: number;
}

/** The outcome of one check, with what decided it; safe to log (holds no secrets, only policy names). */
export interface Decision {
  readonly allowed: boolean;
  readonly decision: 'allow' | 'deny';
  readonly reason: DecisionReason;
  /** L4 for connections (ztunnel), L7 for requests. */
  readonly layer: 'L4' | 'L7';
  /** The policy that decided, when one did. */
  readonly policy?: PolicyRef;
  /** Index of the deciding rule in the policy's `spec.rules` (or in the Authorization's rules). */
  readonly rule?: number;
  /** One line saying why, for logs and `/config_dump`. */
  readonly message: string;
  /** Dry-run (`istio.io/dry-run`) policies that matched; they did not affect `decision`. */
  readonly dryRun: readonly DryRunMatch[];
  /** What the decision would be if the dry-run policies were enforced; present when any dry-run policy applies. */
  readonly shadowDecision?: 'allow' | 'deny';
  /** The AUDIT policy and rule that matched, if any (L7 only); audit never changes the decision. */
  readonly audit?: DryRunMatch;
}

export function refText(p: PolicyRef): string {
  return `${p.action} policy ${p.namespace}/${p.name}`;
}

/** One line describing a decision, e.g. `deny: DENY policy foo/deny-admin rule 0 matched`. */
export function explainDecision(d: Decision): string {
  let s = `${d.decision}: ${d.message}`;
  if (d.audit) s += `; audited by ${refText(d.audit.policy)} rule ${d.audit.rule}`;
  if (d.dryRun.length > 0) {
    s += `; dry-run matches: ${d.dryRun.map((m) => `${refText(m.policy)} rule ${m.rule}`).join(', ')}`;
  }
  if (d.shadowDecision) s += `; with dry-run policies enforced it would ${d.shadowDecision}`;
  return s;
}
