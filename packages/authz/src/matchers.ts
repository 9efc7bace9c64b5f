import { type ConditionAttribute, parseConditionKey } from './condition-keys.js';
import type { EvalContext } from './eval-context.js';
import { type Cidr, cidrContains, parseCidr } from './ip.js';
import { compilePathTemplate, isPathTemplate } from './path.js';
import type { Condition, Operation, PolicyRule, Source } from './policy-types.js';
import { StringMatcherList } from './string-match.js';

/** One compiled test on a request. */
export type Predicate = (ctx: EvalContext) => boolean;
/** All predicates must hold. An empty conjunction is represented by a single NEVER (see {@link NEVER}). */
export type Conjunction = readonly Predicate[];
/** Any alternative may hold; an empty clause always holds. */
export type Clause = readonly Conjunction[];

/** A compiled rule: every clause must hold (no clauses: always). `index` is the rule's index in `spec.rules`. */
export interface CompiledRule {
  readonly index: number;
  readonly clauses: readonly Clause[];
  /**
   * When set, the rule can only match a caller whose principal is one of these (every alternative of one of
   * its clauses requires an exact principal). Lets {@link RuleList} skip the rule with one map lookup.
   */
  readonly principals?: readonly string[];
}

/**
 * A policy's rules with an index by exact principal, so that a policy of many "allow from this service
 * account" rules costs one map lookup instead of a scan. First-match order is kept.
 */
export interface RuleList {
  readonly rules: readonly CompiledRule[];
  readonly byPrincipal: ReadonlyMap<string, readonly number[]> | undefined;
  /** Positions (into `rules`) of rules without principal keys, ascending. */
  readonly unkeyed: readonly number[];
}

const NO_POSITIONS: readonly number[] = [];

export function indexRules(rules: readonly CompiledRule[]): RuleList {
  const keyed = rules.filter((r) => r.principals && r.principals.length > 0).length;
  // Indexing only pays off when it lets several rules be skipped.
  if (keyed < 4) return { rules, byPrincipal: undefined, unkeyed: rules.map((_, i) => i) };
  const byPrincipal = new Map<string, number[]>();
  const unkeyed: number[] = [];
  rules.forEach((r, i) => {
    if (!r.principals || r.principals.length === 0) {
      unkeyed.push(i);
      return;
    }
    for (const p of new Set(r.principals)) {
      const l = byPrincipal.get(p);
      if (l) l.push(i);
      else byPrincipal.set(p, [i]);
    }
  });
  return { rules, byPrincipal, unkeyed };
}

/** Position (into `list.rules`) of the first matching rule, or -1. */
export function firstMatch(list: RuleList, ctx: EvalContext): number {
  const { rules, byPrincipal, unkeyed } = list;
  if (byPrincipal === undefined) return firstMatchingRule(rules, ctx);
  const keyed = byPrincipal.get(ctx.principal) ?? NO_POSITIONS;
  let a = 0;
  let b = 0;
  while (a < keyed.length || b < unkeyed.length) {
    const ka = a < keyed.length ? (keyed[a] as number) : Number.MAX_SAFE_INTEGER;
    const kb = b < unkeyed.length ? (unkeyed[b] as number) : Number.MAX_SAFE_INTEGER;
    let pos: number;
    if (ka < kb) {
      pos = ka;
      a++;
    } else {
      pos = kb;
      b++;
    }
    if (ruleMatches(rules[pos] as CompiledRule, ctx)) return pos;
  }
  return -1;
}

/** Stands for a workload-API Match with no fields, which ztunnel never matches. */
export const NEVER: Predicate = () => false;

export function ruleMatches(rule: CompiledRule, ctx: EvalContext): boolean {
  const clauses = rule.clauses;
  outer: for (let i = 0; i < clauses.length; i++) {
    const alts = clauses[i] as Clause;
    if (alts.length === 0) continue;
    for (let j = 0; j < alts.length; j++) {
      const preds = alts[j] as Conjunction;
      let ok = true;
      for (let k = 0; k < preds.length; k++) {
        if (!(preds[k] as Predicate)(ctx)) {
          ok = false;
          break;
        }
      }
      if (ok) continue outer;
    }
    return false;
  }
  return true;
}

/** Index of the first matching rule, or -1. */
export function firstMatchingRule(rules: readonly CompiledRule[], ctx: EvalContext): number {
  for (let i = 0; i < rules.length; i++) if (ruleMatches(rules[i] as CompiledRule, ctx)) return i;
  return -1;
}

// --- building blocks shared by the YAML and workload-API compilers ---

export type StringField =
  | 'principal'
  | 'sourceNamespace'
  | 'requestPrincipal'
  | 'host'
  | 'method'
  | 'sni'
  | 'presenter';

function stringGetter(field: StringField): (ctx: EvalContext) => string {
  switch (field) {
    case 'principal':
      return (ctx) => ctx.principal;
    case 'sourceNamespace':
      return (ctx) => ctx.sourceNamespace;
    case 'requestPrincipal':
      return (ctx) => ctx.requestPrincipal;
    case 'host':
      return (ctx) => ctx.host;
    case 'method':
      return (ctx) => ctx.method;
    case 'sni':
      return (ctx) => ctx.sni;
    case 'presenter':
      return (ctx) => ctx.presenter;
  }
}

export function stringPredicate(field: StringField, list: StringMatcherList, negate: boolean): Predicate {
  const get = stringGetter(field);
  // Single exact value: the most common form (one principal, one namespace); avoid the list's set lookup.
  const only = list.patterns.length === 1 ? list.patterns[0] : undefined;
  if (only && only.kind === 'exact' && field !== 'host') {
    const v = only.value;
    return negate ? (ctx) => get(ctx) !== v : (ctx) => get(ctx) === v;
  }
  return negate ? (ctx) => !list.matches(get(ctx)) : (ctx) => list.matches(get(ctx));
}

export type IpField = 'sourceIp' | 'destinationIp' | 'remoteIp';

export function ipPredicate(field: IpField, cidrs: readonly Cidr[], negate: boolean): Predicate {
  const get =
    field === 'sourceIp'
      ? (ctx: EvalContext) => ctx.sourceIp
      : field === 'destinationIp'
        ? (ctx: EvalContext) => ctx.destinationIp
        : (ctx: EvalContext) => ctx.remoteIp;
  const any = (ctx: EvalContext) => {
    const ip = get(ctx);
    for (let i = 0; i < cidrs.length; i++) if (cidrContains(cidrs[i] as Cidr, ip)) return true;
    return false;
  };
  return negate ? (ctx) => !any(ctx) : any;
}

export function portPredicate(ports: readonly number[], negate: boolean): Predicate {
  if (ports.length === 1) {
    const p = ports[0] as number;
    return negate ? (ctx) => ctx.destinationPort !== p : (ctx) => ctx.destinationPort === p;
  }
  const set = new Set(ports);
  return negate ? (ctx) => !set.has(ctx.destinationPort) : (ctx) => set.has(ctx.destinationPort);
}

/** `serviceAccounts`: exact `ns/sa` values. A caller without identity matches none. */
export function serviceAccountPredicate(accounts: readonly string[], negate: boolean): Predicate {
  const set = new Set(accounts);
  const has = (ctx: EvalContext) => {
    const sa = ctx.namespacedServiceAccount;
    return sa !== '' && set.has(sa);
  };
  return negate ? (ctx) => !has(ctx) : has;
}

function pathPredicate(values: readonly string[], negate: boolean): Predicate {
  const templates = values.filter(isPathTemplate).map(compilePathTemplate);
  const plain = StringMatcherList.fromIstio(values.filter((v) => !isPathTemplate(v)));
  const hasPlain = plain.patterns.length > 0;
  const any = (ctx: EvalContext) => {
    const p = ctx.path;
    if (hasPlain && plain.matches(p)) return true;
    for (let i = 0; i < templates.length; i++) if ((templates[i] as RegExp).test(p)) return true;
    return false;
  };
  return negate ? (ctx) => !any(ctx) : any;
}

function cidrs(values: readonly string[]): Cidr[] {
  return values.map((v) => {
    const c = parseCidr(v);
    if (typeof c === 'string') throw new Error(`unvalidated CIDR ${JSON.stringify(v)}`);
    return c;
  });
}

/** `ns/sa`, or `sa` qualified with the policy's namespace. */
export function qualifyServiceAccount(value: string, policyNamespace: string): string {
  return value.includes('/') ? value : `${policyNamespace}/${value}`;
}

function nonEmpty(v: readonly string[] | undefined): v is readonly string[] {
  return v !== undefined && v.length > 0;
}

/** Predicates of a Source (all must hold). Assumes the policy was validated. */
export function compileSource(src: Source, policyNamespace: string): Predicate[] {
  const out: Predicate[] = [];
  const str = (field: StringField, values: readonly string[] | undefined, negate: boolean) => {
    if (nonEmpty(values)) out.push(stringPredicate(field, StringMatcherList.fromIstio(values), negate));
  };
  str('principal', src.principals, false);
  str('principal', src.notPrincipals, true);
  str('sourceNamespace', src.namespaces, false);
  str('sourceNamespace', src.notNamespaces, true);
  if (nonEmpty(src.serviceAccounts)) {
    out.push(
      serviceAccountPredicate(
        src.serviceAccounts.map((s) => qualifyServiceAccount(s, policyNamespace)),
        false,
      ),
    );
  }
  if (nonEmpty(src.notServiceAccounts)) {
    out.push(
      serviceAccountPredicate(
        src.notServiceAccounts.map((s) => qualifyServiceAccount(s, policyNamespace)),
        true,
      ),
    );
  }
  if (nonEmpty(src.ipBlocks)) out.push(ipPredicate('sourceIp', cidrs(src.ipBlocks), false));
  if (nonEmpty(src.notIpBlocks)) out.push(ipPredicate('sourceIp', cidrs(src.notIpBlocks), true));
  str('requestPrincipal', src.requestPrincipals, false);
  str('requestPrincipal', src.notRequestPrincipals, true);
  if (nonEmpty(src.remoteIpBlocks)) out.push(ipPredicate('remoteIp', cidrs(src.remoteIpBlocks), false));
  if (nonEmpty(src.notRemoteIpBlocks)) out.push(ipPredicate('remoteIp', cidrs(src.notRemoteIpBlocks), true));
  return out;
}

export function compileOperation(op: Operation): Predicate[] {
  const out: Predicate[] = [];
  if (nonEmpty(op.ports)) out.push(portPredicate(op.ports.map(Number), false));
  if (nonEmpty(op.notPorts)) out.push(portPredicate(op.notPorts.map(Number), true));
  if (nonEmpty(op.hosts)) out.push(stringPredicate('host', StringMatcherList.fromIstio(op.hosts, true), false));
  if (nonEmpty(op.notHosts)) out.push(stringPredicate('host', StringMatcherList.fromIstio(op.notHosts, true), true));
  if (nonEmpty(op.methods)) out.push(stringPredicate('method', StringMatcherList.fromIstio(op.methods), false));
  if (nonEmpty(op.notMethods)) out.push(stringPredicate('method', StringMatcherList.fromIstio(op.notMethods), true));
  if (nonEmpty(op.paths)) out.push(pathPredicate(op.paths, false));
  if (nonEmpty(op.notPaths)) out.push(pathPredicate(op.notPaths, true));
  return out;
}

function valuesPredicate(
  attribute: ConditionAttribute,
  values: readonly string[],
  negate: boolean,
  policyNamespace: string,
  name?: string,
  claimPath?: string[],
): Predicate {
  switch (attribute) {
    case 'source.ip':
      return ipPredicate('sourceIp', cidrs(values), negate);
    case 'remote.ip':
      return ipPredicate('remoteIp', cidrs(values), negate);
    case 'destination.ip':
      return ipPredicate('destinationIp', cidrs(values), negate);
    case 'destination.port':
      return portPredicate(values.map(Number), negate);
    case 'source.namespace':
      return stringPredicate('sourceNamespace', StringMatcherList.fromIstio(values), negate);
    case 'source.principal':
      return stringPredicate('principal', StringMatcherList.fromIstio(values), negate);
    case 'source.serviceAccount':
      return serviceAccountPredicate(
        values.map((v) => qualifyServiceAccount(v, policyNamespace)),
        negate,
      );
    case 'request.auth.principal':
      return stringPredicate('requestPrincipal', StringMatcherList.fromIstio(values), negate);
    case 'request.auth.presenter':
      return stringPredicate('presenter', StringMatcherList.fromIstio(values), negate);
    case 'connection.sni':
      return stringPredicate('sni', StringMatcherList.fromIstio(values), negate);
    case 'request.auth.audiences': {
      const list = StringMatcherList.fromIstio(values);
      const any = (ctx: EvalContext) => ctx.audiences.some((a) => list.matches(a));
      return negate ? (ctx) => !any(ctx) : any;
    }
    case 'request.auth.claims': {
      const list = StringMatcherList.fromIstio(values);
      const path = claimPath ?? [];
      const any = (ctx: EvalContext) => ctx.claim(path).some((c) => list.matches(c));
      return negate ? (ctx) => !any(ctx) : any;
    }
    case 'request.headers': {
      const list = StringMatcherList.fromIstio(values);
      const header = name ?? '';
      const any = (ctx: EvalContext) => {
        const v = ctx.header(header);
        return v !== undefined && list.matches(v);
      };
      return negate ? (ctx) => !any(ctx) : any;
    }
  }
}

/** A condition holds when some `values` entry matches (if any are given) and no `notValues` entry matches. */
export function compileCondition(cond: Condition, policyNamespace: string): Predicate[] {
  const parsed = parseConditionKey(cond.key);
  if (typeof parsed === 'string') throw new Error(parsed);
  const out: Predicate[] = [];
  if (nonEmpty(cond.values))
    out.push(valuesPredicate(parsed.attribute, cond.values, false, policyNamespace, parsed.name, parsed.claimPath));
  if (nonEmpty(cond.notValues))
    out.push(valuesPredicate(parsed.attribute, cond.notValues, true, policyNamespace, parsed.name, parsed.claimPath));
  return out;
}

/** Full (L7) semantics of one AuthorizationPolicy rule. */
export function compileRule(rule: PolicyRule, index: number, policyNamespace: string): CompiledRule {
  const clauses: Clause[] = [];
  let principals: string[] | undefined;
  if (rule.from && rule.from.length > 0) {
    clauses.push(rule.from.map((f) => compileSource(f.source ?? {}, policyNamespace)));
    principals = exactPrincipalKeys(rule.from.map((f) => f.source?.principals));
  }
  if (rule.to && rule.to.length > 0) clauses.push(rule.to.map((t) => compileOperation(t.operation ?? {})));
  for (const w of rule.when ?? []) clauses.push([compileCondition(w, policyNamespace)]);
  return principals ? { index, clauses, principals } : { index, clauses };
}

/**
 * The exact principals a clause requires, when every alternative lists only exact principals; otherwise
 * undefined (some alternative could match other callers).
 */
export function exactPrincipalKeys(alternatives: readonly (readonly string[] | undefined)[]): string[] | undefined {
  const keys: string[] = [];
  for (const list of alternatives) {
    if (!list || list.length === 0) return undefined;
    for (const v of list) {
      if (v.startsWith('*') || v.endsWith('*')) return undefined;
      keys.push(v);
    }
  }
  return keys;
}
