import type { ConnectionAttributes, RequestAttributes } from './attributes.js';
import { type Decision, type DecisionReason, type DryRunMatch, type PolicyRef, refText } from './decision.js';
import { AuthzError, formatProblem, type ValidationProblem } from './errors.js';
import { EvalContext, InvalidRequest } from './eval-context.js';
import { type CompiledRule, compileRule, firstMatch, indexRules, type RuleList } from './matchers.js';
import { PATH_NORMALIZATIONS, type PathNormalization } from './path.js';
import {
  type AuthorizationPolicy,
  DEFAULT_POLICY_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  type PolicyAction,
} from './policy-types.js';
import { validatePolicy } from './validate.js';
import { compileWorkloadRules, isDryRun, toWorkloadAuthorization, workloadEnumValue } from './workload-convert.js';
import { type Authorization, AuthorizationScope } from './workload-types.js';

/** What a CUSTOM policy's provider is asked. */
export interface CustomAuthorizationCall {
  readonly provider: string;
  readonly policy: PolicyRef;
  readonly rule: number;
  readonly request: RequestAttributes;
}

/** `true`/`'allow'` lets the request continue to DENY/ALLOW evaluation; anything else denies it. */
export type CustomVerdict = boolean | 'allow' | 'deny';
export type CustomProvider = (call: CustomAuthorizationCall) => CustomVerdict | PromiseLike<CustomVerdict>;

export interface EngineOptions {
  /** Policies in this namespace apply mesh-wide. Default `istio-system`. */
  rootNamespace?: string;
  /** Path normalization before matching `paths`. Default `BASE`. */
  pathNormalization?: PathNormalization;
  /** Decides for CUSTOM policies (Istio's extension providers). Without it a matching CUSTOM policy denies. */
  customProvider?: CustomProvider;
}

/** A workload as ztunnel sees it: policies with `selector` or none apply, never those with `targetRefs`. */
export interface WorkloadTarget {
  namespace: string;
  labels?: Readonly<Record<string, string>>;
  /**
   * For policies compiled from the workload API: the `namespace/name` keys listed in the Workload's
   * `authorization_policies` (how WORKLOAD_SELECTOR-scoped Authorizations reach a workload).
   */
  policies?: readonly string[];
}

/** A waypoint handling traffic: only policies whose `targetRefs` name it (or the service) apply. */
export interface WaypointTarget {
  gateway: { namespace: string; name: string };
  /** Default `istio-waypoint`; root-namespace policies targeting this GatewayClass apply to every waypoint. */
  gatewayClassName?: string;
  /** The service the request is addressed to, when known. */
  service?: { namespace: string; name: string; kind?: 'Service' | 'ServiceEntry' };
}

export type EnforcementTarget = { workload: WorkloadTarget } | { waypoint: WaypointTarget };

type Scope =
  | { kind: 'global' }
  | { kind: 'namespace' }
  | { kind: 'selector'; labels: readonly (readonly [string, string])[] }
  | { kind: 'named' }
  | { kind: 'targets'; keys: readonly string[] };

interface CompiledPolicy {
  readonly ref: PolicyRef;
  readonly key: string;
  rank: number;
  readonly namespace: string;
  readonly dryRun: boolean;
  readonly action: PolicyAction;
  readonly l7: RuleList;
  /** L4-degraded rules; undefined when the policy is not enforced at L4 (CUSTOM, AUDIT). */
  readonly l4: RuleList | undefined;
  readonly scope: Scope;
  readonly decisions: { L4: Decision[]; L7: Decision[] };
}

const EMPTY: readonly never[] = Object.freeze([]);
const MAX_CACHED_SETS = 4096;

function freezeDecision(d: Decision): Decision {
  return Object.freeze(d);
}

function constant(layer: 'L4' | 'L7', allowed: boolean, reason: DecisionReason, message: string): Decision {
  return freezeDecision({ allowed, decision: allowed ? 'allow' : 'deny', reason, layer, message, dryRun: EMPTY });
}

const NO_ALLOW_POLICIES = {
  L4: constant('L4', true, 'no-allow-policies', 'no ALLOW policy applies, so the default is allow'),
  L7: constant('L7', true, 'no-allow-policies', 'no ALLOW policy applies, so the default is allow'),
};
const NO_ALLOW_MATCH = {
  L4: constant('L4', false, 'no-allow-match', 'ALLOW policies apply and none matched'),
  L7: constant('L7', false, 'no-allow-match', 'ALLOW policies apply and none matched'),
};

function ruleDecision(cp: CompiledPolicy, rule: number, layer: 'L4' | 'L7'): Decision {
  const cache = cp.decisions[layer];
  let d = cache[rule];
  if (!d) {
    const allowed = cp.action === 'ALLOW';
    d = freezeDecision({
      allowed,
      decision: allowed ? 'allow' : 'deny',
      reason: allowed ? 'allow-policy' : 'deny-policy',
      layer,
      policy: cp.ref,
      rule,
      message: `${refText(cp.ref)} rule ${rule} matched`,
      dryRun: EMPTY,
    });
    cache[rule] = d;
  }
  return d;
}

function byRank(a: CompiledPolicy, b: CompiledPolicy): number {
  return a.rank - b.rank;
}

/**
 * The policies that apply to one destination, split by action and ordered canonically (namespace/name), so
 * a decision never depends on the order policies were given in. Cache one per workload for the fastest checks.
 */
export class PolicySet {
  readonly #custom: CompiledPolicy[] = [];
  readonly #deny: CompiledPolicy[] = [];
  readonly #allow: CompiledPolicy[] = [];
  readonly #audit: CompiledPolicy[] = [];
  readonly #dry: CompiledPolicy[] = [];
  readonly #l4Allow: number;
  readonly #normalization: PathNormalization;
  readonly #provider: CustomProvider | undefined;

  /** @internal */
  constructor(policies: CompiledPolicy[], normalization: PathNormalization, provider: CustomProvider | undefined) {
    policies.sort(byRank);
    for (const cp of policies) {
      if (cp.dryRun) this.#dry.push(cp);
      else if (cp.action === 'CUSTOM') this.#custom.push(cp);
      else if (cp.action === 'DENY') this.#deny.push(cp);
      else if (cp.action === 'ALLOW') this.#allow.push(cp);
      else this.#audit.push(cp);
    }
    this.#l4Allow = this.#allow.filter((cp) => cp.l4).length;
    this.#normalization = normalization;
    this.#provider = provider;
  }

  /** The applicable policies, as `namespace/name` keys in evaluation order. */
  get policies(): string[] {
    return [...this.#custom, ...this.#deny, ...this.#allow, ...this.#audit, ...this.#dry].map((cp) => cp.key);
  }

  /** L4 check (ztunnel): ALLOW and DENY with the HTTP parts degraded; CUSTOM and AUDIT are not enforced. */
  checkConnection(conn: ConnectionAttributes): Decision {
    const ctx = new EvalContext(conn, this.#normalization);
    try {
      return this.#decide(ctx, 'L4', undefined);
    } catch (err) {
      return invalid(err, 'L4');
    }
  }

  /**
   * L7 check (waypoint, gateway). A CUSTOM provider must answer synchronously here; for an asynchronous
   * provider use {@link checkRequestAsync} (a Promise answer to this method denies with `custom-error`).
   */
  checkRequest(req: RequestAttributes): Decision {
    const ctx = new EvalContext(req, this.#normalization);
    try {
      // A path the normalization rejects (%00) is refused even when no policy looks at paths, as Istio does.
      void ctx.path;
      return this.#decide(ctx, 'L7', undefined);
    } catch (err) {
      return invalid(err, 'L7');
    }
  }

  /** L7 check that awaits the CUSTOM provider. */
  async checkRequestAsync(req: RequestAttributes): Promise<Decision> {
    const ctx = new EvalContext(req, this.#normalization);
    try {
      void ctx.path;
      for (const cp of this.#custom) {
        const rule = firstMatch(cp.l7, ctx);
        if (rule < 0) continue;
        const denied = await this.#askProvider(cp, cp.l7.rules[rule]?.index ?? rule, req, true);
        if (denied) return this.#withDryRun(denied, ctx, 'L7');
      }
      return this.#decide(ctx, 'L7', 'done');
    } catch (err) {
      return invalid(err, 'L7');
    }
  }

  /** Returns a denying Decision, or undefined when the provider allows. */
  async #askProvider(
    cp: CompiledPolicy,
    rule: number,
    req: RequestAttributes,
    mayAwait: true,
  ): Promise<Decision | undefined>;
  #askProvider(cp: CompiledPolicy, rule: number, req: RequestAttributes, mayAwait: false): Decision | undefined;
  #askProvider(
    cp: CompiledPolicy,
    rule: number,
    req: RequestAttributes,
    mayAwait: boolean,
  ): Decision | undefined | Promise<Decision | undefined> {
    const provider = cp.ref.provider ?? '';
    const fail = (why: string): Decision =>
      freezeDecision({
        allowed: false,
        decision: 'deny',
        reason: 'custom-error',
        layer: 'L7',
        policy: cp.ref,
        rule,
        message: `${refText(cp.ref)} rule ${rule} matched and provider ${JSON.stringify(provider)} ${why}`,
        dryRun: EMPTY,
      });
    const verdict = (v: CustomVerdict): Decision | undefined =>
      v === true || v === 'allow'
        ? undefined
        : freezeDecision({
            allowed: false,
            decision: 'deny',
            reason: 'custom-deny',
            layer: 'L7',
            policy: cp.ref,
            rule,
            message: `${refText(cp.ref)} rule ${rule} matched and provider ${JSON.stringify(provider)} denied`,
            dryRun: EMPTY,
          });
    if (!this.#provider) return fail('is not configured (no customProvider was given)');
    let answer: CustomVerdict | PromiseLike<CustomVerdict>;
    try {
      answer = this.#provider({ provider, policy: cp.ref, rule, request: req });
    } catch (err) {
      return fail(`failed: ${(err as Error)?.message ?? String(err)}`);
    }
    if (
      typeof answer === 'object' &&
      answer !== null &&
      typeof (answer as PromiseLike<CustomVerdict>).then === 'function'
    ) {
      if (!mayAwait) return fail('answered asynchronously; use checkRequestAsync');
      return Promise.resolve(answer).then(verdict, (err) => fail(`failed: ${(err as Error)?.message ?? String(err)}`));
    }
    return verdict(answer as CustomVerdict);
  }

  #decide(ctx: EvalContext, layer: 'L4' | 'L7', customDone: 'done' | undefined): Decision {
    let d: Decision | undefined;
    if (layer === 'L7' && customDone === undefined) {
      for (let i = 0; i < this.#custom.length && !d; i++) {
        const cp = this.#custom[i] as CompiledPolicy;
        const r = firstMatch(cp.l7, ctx);
        if (r >= 0) d = this.#askProvider(cp, (cp.l7.rules[r] as CompiledRule).index, ctx.attrs, false);
      }
    }
    if (!d) {
      for (let i = 0; i < this.#deny.length; i++) {
        const cp = this.#deny[i] as CompiledPolicy;
        const rules = layer === 'L4' ? cp.l4 : cp.l7;
        if (!rules) continue;
        const r = firstMatch(rules, ctx);
        if (r >= 0) {
          d = ruleDecision(cp, (rules.rules[r] as CompiledRule).index, layer);
          break;
        }
      }
    }
    if (!d) {
      const allowCount = layer === 'L4' ? this.#l4Allow : this.#allow.length;
      if (allowCount === 0) d = NO_ALLOW_POLICIES[layer];
      else {
        for (let i = 0; i < this.#allow.length; i++) {
          const cp = this.#allow[i] as CompiledPolicy;
          const rules = layer === 'L4' ? cp.l4 : cp.l7;
          if (!rules) continue;
          const r = firstMatch(rules, ctx);
          if (r >= 0) {
            d = ruleDecision(cp, (rules.rules[r] as CompiledRule).index, layer);
            break;
          }
        }
        if (!d) d = NO_ALLOW_MATCH[layer];
      }
    }
    if (this.#audit.length === 0 && this.#dry.length === 0) return d;
    return this.#withDryRun(d, ctx, layer);
  }

  #withDryRun(d: Decision, ctx: EvalContext, layer: 'L4' | 'L7'): Decision {
    let audit: DryRunMatch | undefined;
    if (layer === 'L7') {
      for (const cp of this.#audit) {
        const r = firstMatch(cp.l7, ctx);
        if (r >= 0) {
          audit = { policy: cp.ref, rule: (cp.l7.rules[r] as CompiledRule).index };
          break;
        }
      }
    }
    const dryRun: DryRunMatch[] = [];
    let dryDeny = false;
    let dryAllowApplies = false;
    let dryAllowMatch = false;
    for (const cp of this.#dry) {
      const rules = layer === 'L4' ? cp.l4 : cp.l7;
      if (!rules) continue;
      if (cp.action === 'ALLOW') dryAllowApplies = true;
      const r = firstMatch(rules, ctx);
      if (r < 0) continue;
      dryRun.push({ policy: cp.ref, rule: (rules.rules[r] as CompiledRule).index });
      if (cp.action === 'DENY') dryDeny = true;
      if (cp.action === 'ALLOW') dryAllowMatch = true;
    }
    if (!audit && dryRun.length === 0 && this.#dry.length === 0) return d;
    let shadowDecision: 'allow' | 'deny' | undefined;
    if (this.#dry.length > 0) {
      if (!d.allowed && d.reason !== 'no-allow-match') shadowDecision = 'deny';
      else if (dryDeny) shadowDecision = 'deny';
      else if (d.reason === 'allow-policy' || dryAllowMatch) shadowDecision = 'allow';
      else if (d.reason === 'no-allow-policies' && !dryAllowApplies) shadowDecision = 'allow';
      else shadowDecision = 'deny';
    }
    return freezeDecision({
      ...d,
      dryRun: Object.freeze(dryRun),
      ...(shadowDecision ? { shadowDecision } : {}),
      ...(audit ? { audit } : {}),
    });
  }
}

function invalid(err: unknown, layer: 'L4' | 'L7'): Decision {
  if (err instanceof InvalidRequest) {
    return freezeDecision({
      allowed: false,
      decision: 'deny',
      reason: 'invalid-request',
      layer,
      message: err.message,
      dryRun: EMPTY,
    });
  }
  throw err;
}

function selectorLabels(cp: CompiledPolicy): readonly (readonly [string, string])[] {
  return cp.scope.kind === 'selector' ? cp.scope.labels : EMPTY;
}

function labelsMatch(
  labels: Readonly<Record<string, string>> | undefined,
  wanted: readonly (readonly [string, string])[],
): boolean {
  if (!labels) return false;
  for (const [k, v] of wanted) if (labels[k] !== v) return false;
  return true;
}

/**
 * Compiled AuthorizationPolicies (or workload-API Authorizations), indexed by where they apply, so that a
 * check costs in proportion to the policies that apply to its destination rather than all of them.
 */
export class PolicyEngine {
  readonly rootNamespace: string;
  readonly pathNormalization: PathNormalization;
  readonly #provider: CustomProvider | undefined;
  readonly #all: CompiledPolicy[];
  readonly #global: CompiledPolicy[] = [];
  readonly #rootSelector = new Map<string, Map<string, CompiledPolicy[]>>();
  readonly #wide = new Map<string, CompiledPolicy[]>();
  readonly #selector = new Map<string, Map<string, Map<string, CompiledPolicy[]>>>();
  readonly #named = new Map<string, CompiledPolicy>();
  readonly #targets = new Map<string, CompiledPolicy[]>();
  /** PolicySets by the ranks of their policies: destinations with the same applicable policies share one. */
  readonly #sets = new Map<string, PolicySet>();
  readonly #setsByList = new WeakMap<CompiledPolicy[], PolicySet>();
  readonly #scratch: CompiledPolicy[] = [];
  #lists = 0;
  #only: CompiledPolicy[] | undefined;

  /** @internal Use {@link compilePolicies} or {@link compileAuthorizations}. */
  constructor(policies: CompiledPolicy[], options: EngineOptions) {
    this.rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
    this.pathNormalization = options.pathNormalization ?? 'BASE';
    this.#provider = options.customProvider;
    const seen = new Map<string, number>();
    for (const cp of policies) seen.set(cp.key, (seen.get(cp.key) ?? 0) + 1);
    const dups = [...seen].filter(([, n]) => n > 1).map(([k]) => k);
    if (dups.length > 0) {
      throw new AuthzError(
        'ERR_DUPLICATE_POLICY',
        `more than one policy named ${dups.sort().join(', ')}: each namespace/name must be unique`,
      );
    }
    this.#all = [...policies].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.#all.forEach((cp, i) => {
      cp.rank = i;
    });
    const push = <K>(m: Map<K, CompiledPolicy[]>, k: K, cp: CompiledPolicy) => {
      const l = m.get(k);
      if (l) l.push(cp);
      else m.set(k, [cp]);
    };
    const byLabel = (
      m: Map<string, Map<string, CompiledPolicy[]>>,
      cp: CompiledPolicy,
      [k, v]: readonly [string, string],
    ) => {
      let inner = m.get(k);
      if (!inner) {
        inner = new Map();
        m.set(k, inner);
      }
      push(inner, v, cp);
    };
    for (const cp of this.#all) {
      const s = cp.scope;
      if (s.kind === 'global') this.#global.push(cp);
      else if (s.kind === 'namespace') {
        if (cp.namespace === this.rootNamespace) this.#global.push(cp);
        else push(this.#wide, cp.namespace, cp);
      } else if (s.kind === 'selector') {
        // Indexed under one of its labels; the others are checked when the candidate is found.
        const first = s.labels[0] as readonly [string, string];
        if (cp.namespace === this.rootNamespace) byLabel(this.#rootSelector, cp, first);
        else {
          let nsMap = this.#selector.get(cp.namespace);
          if (!nsMap) {
            nsMap = new Map();
            this.#selector.set(cp.namespace, nsMap);
          }
          byLabel(nsMap, cp, first);
        }
      } else if (s.kind === 'named') this.#named.set(cp.key, cp);
      else for (const k of s.keys) push(this.#targets, k, cp);
    }
  }

  /** Number of compiled policies. */
  get size(): number {
    return this.#all.length;
  }

  /** The policies that apply at `target`, ready to check. Cache it per destination for the fastest checks. */
  policiesFor(target: EnforcementTarget): PolicySet {
    // Scratch state, reused across calls (nothing here calls out to user code, so no re-entrancy).
    const out = this.#scratch;
    out.length = 0;
    this.#lists = 0;
    this.#only = undefined;
    if ('workload' in target && target.workload) {
      const w = target.workload;
      if (typeof w.namespace !== 'string') {
        throw new AuthzError('ERR_INVALID_ARGUMENT', 'target.workload.namespace must be a string');
      }
      this.#take(this.#global, undefined);
      if (w.namespace !== this.rootNamespace) this.#take(this.#wide.get(w.namespace), undefined);
      const labels = w.labels;
      if (labels) {
        const nsSel = w.namespace === this.rootNamespace ? undefined : this.#selector.get(w.namespace);
        for (const k in labels) {
          const v = labels[k] as string;
          if (this.#rootSelector.size > 0) this.#take(this.#rootSelector.get(k)?.get(v), labels);
          if (nsSel) this.#take(nsSel.get(k)?.get(v), labels);
        }
      }
      for (const key of w.policies ?? EMPTY) {
        const cp = this.#named.get(key);
        if (cp && !out.includes(cp)) {
          out.push(cp);
          this.#lists += 2;
        }
      }
    } else if ('waypoint' in target && target.waypoint) {
      const wp = target.waypoint;
      this.#take(this.#targets.get(`Gateway|${wp.gateway.namespace}|${wp.gateway.name}`), undefined);
      this.#take(
        this.#targets.get(`GatewayClass|${this.rootNamespace}|${wp.gatewayClassName ?? 'istio-waypoint'}`),
        undefined,
      );
      if (wp.service) {
        this.#take(
          this.#targets.get(`${wp.service.kind ?? 'Service'}|${wp.service.namespace}|${wp.service.name}`),
          undefined,
        );
      }
    } else {
      throw new AuthzError('ERR_INVALID_ARGUMENT', 'target must be { workload: {...} } or { waypoint: {...} }');
    }
    // When all applicable policies come whole from one index list (the common case), that list identifies
    // the PolicySet and no key has to be built.
    const only = this.#only;
    if (this.#lists === 1 && only) {
      let set = this.#setsByList.get(only);
      if (!set) {
        set = new PolicySet(out.slice(), this.pathNormalization, this.#provider);
        this.#setsByList.set(only, set);
      }
      return set;
    }
    const key =
      out.length === 0
        ? ''
        : out
            .map((cp) => cp.rank)
            .sort((a, b) => a - b)
            .join(',');
    let set = this.#sets.get(key);
    if (!set) {
      // Bounded: a mesh has far fewer distinct policy combinations than this; if not, start over.
      if (this.#sets.size >= MAX_CACHED_SETS) this.#sets.clear();
      set = new PolicySet(out.slice(), this.pathNormalization, this.#provider);
      this.#sets.set(key, set);
    }
    return set;
  }

  #take(list: CompiledPolicy[] | undefined, filter: Readonly<Record<string, string>> | undefined): void {
    if (list === undefined || list.length === 0) return;
    const out = this.#scratch;
    let whole = true;
    for (let i = 0; i < list.length; i++) {
      const cp = list[i] as CompiledPolicy;
      if ((filter !== undefined && !labelsMatch(filter, selectorLabels(cp))) || out.includes(cp)) whole = false;
      else out.push(cp);
    }
    this.#lists += whole ? 1 : 2;
    this.#only = list;
  }

  /** L4 check of a connection to `target` (see {@link PolicySet.checkConnection}). */
  checkConnection(conn: ConnectionAttributes, target: EnforcementTarget): Decision {
    return this.policiesFor(target).checkConnection(conn);
  }

  /** L7 check of a request to `target` (see {@link PolicySet.checkRequest}). */
  checkRequest(req: RequestAttributes, target: EnforcementTarget): Decision {
    return this.policiesFor(target).checkRequest(req);
  }

  /** L7 check awaiting an asynchronous CUSTOM provider. */
  checkRequestAsync(req: RequestAttributes, target: EnforcementTarget): Promise<Decision> {
    return this.policiesFor(target).checkRequestAsync(req);
  }
}

function checkOptions(options: EngineOptions): void {
  if (options.pathNormalization !== undefined && !PATH_NORMALIZATIONS.includes(options.pathNormalization)) {
    throw new AuthzError(
      'ERR_INVALID_ARGUMENT',
      `pathNormalization ${JSON.stringify(options.pathNormalization)} is not one of ${PATH_NORMALIZATIONS.join(', ')}`,
    );
  }
  if (options.customProvider !== undefined && typeof options.customProvider !== 'function') {
    throw new AuthzError('ERR_INVALID_ARGUMENT', 'customProvider must be a function');
  }
}

function compileOne(policy: AuthorizationPolicy, rootNamespace: string): CompiledPolicy {
  const spec = policy.spec ?? {};
  const namespace = policy.metadata.namespace ?? DEFAULT_POLICY_NAMESPACE;
  const action = spec.action ?? 'ALLOW';
  const ref: PolicyRef = Object.freeze({
    namespace,
    name: policy.metadata.name,
    action,
    ...(action === 'CUSTOM' && spec.provider?.name ? { provider: spec.provider.name } : {}),
  });
  const l7 = indexRules((spec.rules ?? []).map((r, i) => compileRule(r, i, namespace)));
  let l4: RuleList | undefined;
  if (action === 'ALLOW' || action === 'DENY') {
    // L4 semantics are exactly what ztunnel would receive: compile the converted Authorization.
    const conv = toWorkloadAuthorization(
      { ...policy, spec: { ...spec, targetRef: undefined, targetRefs: undefined } },
      { rootNamespace },
    );
    const problems: ValidationProblem[] = [];
    const rules = conv.authorization ? compileWorkloadRules(conv.authorization, problems) : [];
    l4 = indexRules(rules.map((r, i) => ({ ...r, index: conv.ruleIndex[i] ?? r.index })));
  }
  const refs = spec.targetRefs ?? (spec.targetRef ? [spec.targetRef] : []);
  const labels = Object.entries(spec.selector?.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const scope: Scope =
    refs.length > 0
      ? { kind: 'targets', keys: refs.map((r) => `${r.kind}|${namespace}|${r.name}`) }
      : labels.length > 0
        ? { kind: 'selector', labels }
        : { kind: 'namespace' };
  return {
    ref,
    key: `${namespace}/${policy.metadata.name}`,
    rank: 0,
    namespace,
    dryRun: isDryRun(policy),
    action,
    l7,
    l4,
    scope,
    decisions: { L4: [], L7: [] },
  };
}

/**
 * Validates and compiles AuthorizationPolicies. Atomic: if any policy is invalid nothing is compiled and
 * ERR_POLICY_INVALID lists every problem of every policy (paths prefixed with the policy's namespace/name).
 */
export function compilePolicies(policies: readonly unknown[], options: EngineOptions = {}): PolicyEngine {
  if (!Array.isArray(policies)) throw new AuthzError('ERR_INVALID_ARGUMENT', 'policies must be an array');
  checkOptions(options);
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const problems: ValidationProblem[] = [];
  const valid: AuthorizationPolicy[] = [];
  policies.forEach((p, i) => {
    const r = validatePolicy(p, { rootNamespace });
    if (r.ok && r.policy) valid.push(r.policy);
    else {
      const md = (p as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
      const label =
        typeof md?.name === 'string'
          ? `${typeof md.namespace === 'string' ? md.namespace : DEFAULT_POLICY_NAMESPACE}/${md.name}`
          : `policies[${i}]`;
      for (const pr of r.problems)
        problems.push({ path: pr.path ? `${label}: ${pr.path}` : label, message: pr.message });
    }
  });
  if (problems.length > 0) {
    throw new AuthzError(
      'ERR_POLICY_INVALID',
      `${problems.length} problem(s) in AuthorizationPolicies:\n- ${problems.map(formatProblem).join('\n- ')}`,
      { problems },
    );
  }
  return new PolicyEngine(
    valid.map((p) => compileOne(p, rootNamespace)),
    options,
  );
}

/**
 * Compiles workload-API Authorizations (as ztunnel receives them over xDS) with ztunnel's semantics. Scope:
 * GLOBAL applies to every workload, NAMESPACE to workloads of its namespace, WORKLOAD_SELECTOR to workloads
 * whose `policies` list names it. Atomic: any malformed Authorization fails the whole call.
 */
export function compileAuthorizations(
  authorizations: readonly Authorization[],
  options: EngineOptions = {},
): PolicyEngine {
  if (!Array.isArray(authorizations)) throw new AuthzError('ERR_INVALID_ARGUMENT', 'authorizations must be an array');
  checkOptions(options);
  const problems: ValidationProblem[] = [];
  const compiled: CompiledPolicy[] = [];
  authorizations.forEach((auth, i) => {
    const local: ValidationProblem[] = [];
    if (typeof auth !== 'object' || auth === null) {
      problems.push({ path: `authorizations[${i}]`, message: 'must be an object' });
      return;
    }
    const scope = workloadEnumValue(auth.scope, AuthorizationScope, 'scope', 'scope', local);
    const action = workloadEnumValue(auth.action, { ALLOW: 0, DENY: 1 }, 'action', 'action', local);
    if (typeof auth.name !== 'string' || auth.name === '') local.push({ path: 'name', message: 'is required' });
    if (typeof auth.namespace !== 'string' || auth.namespace === '')
      local.push({ path: 'namespace', message: 'is required' });
    const rules = compileWorkloadRules(auth, local);
    const label = typeof auth.name === 'string' ? `${auth.namespace}/${auth.name}` : `authorizations[${i}]`;
    for (const p of local) problems.push({ path: `${label}: ${p.path}`, message: p.message });
    if (local.length > 0) return;
    const actionName: PolicyAction = action === 1 ? 'DENY' : 'ALLOW';
    const ref: PolicyRef = Object.freeze({ namespace: auth.namespace, name: auth.name, action: actionName });
    compiled.push({
      ref,
      key: `${auth.namespace}/${auth.name}`,
      rank: 0,
      namespace: auth.namespace,
      dryRun: auth.dryRun === true,
      action: actionName,
      l7: indexRules(rules),
      l4: indexRules(rules),
      scope:
        scope === AuthorizationScope.GLOBAL
          ? { kind: 'global' }
          : scope === AuthorizationScope.NAMESPACE
            ? { kind: 'namespace' }
            : { kind: 'named' },
      decisions: { L4: [], L7: [] },
    });
  });
  if (problems.length > 0) {
    throw new AuthzError(
      'ERR_WORKLOAD_AUTHORIZATION_INVALID',
      `${problems.length} problem(s) in Authorizations:\n- ${problems.map(formatProblem).join('\n- ')}`,
      { problems },
    );
  }
  return new PolicyEngine(compiled, options);
}
