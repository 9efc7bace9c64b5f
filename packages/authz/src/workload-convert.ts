import { L4_CONDITION_ATTRIBUTES, parseConditionKey } from './condition-keys.js';
import { AuthzError, type ValidationProblem } from './errors.js';
import { type Cidr, cidrFromBytes, cidrToBytes, formatCidr, parseCidr } from './ip.js';
import {
  type Clause,
  type CompiledRule,
  type Conjunction,
  exactPrincipalKeys,
  ipPredicate,
  NEVER,
  type Predicate,
  portPredicate,
  serviceAccountPredicate,
  stringPredicate,
} from './matchers.js';
import {
  type AuthorizationPolicy,
  type Condition,
  DEFAULT_POLICY_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  DRY_RUN_ANNOTATION,
  type Operation,
  type PolicyRule,
  type Source,
} from './policy-types.js';
import { formatStringPattern, parseStringPattern, StringMatcherList, type StringPattern } from './string-match.js';
import {
  type Authorization,
  type AuthorizationAddress,
  type AuthorizationMatch,
  type AuthorizationRule,
  AuthorizationScope,
  type ServiceAccountMatch,
  type StringMatch,
} from './workload-types.js';

export interface WorkloadConversionOptions {
  rootNamespace?: string;
}

/** The result of converting an AuthorizationPolicy for ztunnel. */
export interface WorkloadConversion {
  /** Absent when ztunnel does not enforce this policy at all (see `skipped`). */
  authorization?: Authorization;
  /** Why the policy is not sent to ztunnel: it uses targetRefs (a waypoint enforces it), or CUSTOM/AUDIT. */
  skipped?: string;
  /** `authorization.rules[i]` came from `spec.rules[ruleIndex[i]]` (ALLOW rules with HTTP fields are left out). */
  ruleIndex: number[];
  /** HTTP-only fields ztunnel cannot see, and what was done about them. */
  warnings: string[];
}

const HTTP_SOURCE: ReadonlyArray<keyof Source> = [
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
];
const HTTP_OPERATION: ReadonlyArray<keyof Operation> = [
  'hosts',
  'notHosts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
];

export function isDryRun(policy: AuthorizationPolicy): boolean {
  const v = policy.metadata.annotations?.[DRY_RUN_ANNOTATION];
  return v !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v);
}

function stringMatches(values: readonly string[] | undefined): StringMatch[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const p = parseStringPattern(v);
    return p.kind === 'presence' ? { presence: {} } : { [p.kind]: p.value };
  });
}

function addresses(values: readonly string[] | undefined): AuthorizationAddress[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const c = parseCidr(v);
    if (typeof c === 'string')
      throw new AuthzError('ERR_POLICY_INVALID', `${JSON.stringify(v)} ${c}; validate the policy first`);
    return { address: cidrToBytes(c), length: c.bits };
  });
}

function ports(values: readonly string[] | undefined): number[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map(Number);
}

function serviceAccounts(values: readonly string[] | undefined, ns: string): ServiceAccountMatch[] | undefined {
  if (!values || values.length === 0) return undefined;
  return values.map((v) => {
    const slash = v.indexOf('/');
    return slash < 0
      ? { namespace: ns, serviceAccount: v }
      : { namespace: v.slice(0, slash), serviceAccount: v.slice(slash + 1) };
  });
}

function compact(m: AuthorizationMatch): AuthorizationMatch {
  const out: AuthorizationMatch = {};
  for (const [k, v] of Object.entries(m)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function isEmptyMatch(m: AuthorizationMatch): boolean {
  return Object.values(m).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));
}

function conditionMatch(w: Condition, ns: string): AuthorizationMatch {
  const pos = w.values && w.values.length > 0 ? w.values : undefined;
  const neg = w.notValues && w.notValues.length > 0 ? w.notValues : undefined;
  switch (w.key) {
    case 'source.ip':
      return compact({ sourceIps: addresses(pos), notSourceIps: addresses(neg) });
    case 'destination.ip':
      return compact({ destinationIps: addresses(pos), notDestinationIps: addresses(neg) });
    case 'destination.port':
      return compact({ destinationPorts: ports(pos), notDestinationPorts: ports(neg) });
    case 'source.namespace':
      return compact({ namespaces: stringMatches(pos), notNamespaces: stringMatches(neg) });
    case 'source.principal':
      return compact({ principals: stringMatches(pos), notPrincipals: stringMatches(neg) });
    case 'source.serviceAccount':
      return compact({ serviceAccounts: serviceAccounts(pos, ns), notServiceAccounts: serviceAccounts(neg, ns) });
    default:
      return {};
  }
}

/**
 * Converts an AuthorizationPolicy into the workload-API `Authorization` ztunnel enforces, applying the L4
 * degradation: ztunnel cannot see HTTP, so
 * - an ALLOW rule that uses any HTTP-only field (hosts, methods, paths, requestPrincipals, remoteIpBlocks,
 *   `request.*`/`remote.ip`/`connection.sni` conditions) is left out — it can never match, which is stricter;
 * - a DENY rule keeps its L4 fields and loses only the HTTP ones, which is also stricter. A `from`/`to` list in
 *   which some entry had only HTTP fields matches anything once they are gone, so that clause is left out
 *   entirely (a clause-less rule matches every connection). This keeps the DENY in force on a real ztunnel,
 *   which ignores a Match with no fields rather than treating it as "any".
 *
 * Policies with targetRefs (enforced by waypoints), and CUSTOM and AUDIT policies (not enforced at L4) are
 * skipped.
 */
export function toWorkloadAuthorization(
  policy: AuthorizationPolicy,
  options: WorkloadConversionOptions = {},
): WorkloadConversion {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const spec = policy.spec ?? {};
  const ns = policy.metadata.namespace ?? DEFAULT_POLICY_NAMESPACE;
  const action = spec.action ?? 'ALLOW';
  if ((spec.targetRefs && spec.targetRefs.length > 0) || spec.targetRef) {
    return { skipped: 'the policy uses targetRefs: waypoints enforce it, not ztunnel', ruleIndex: [], warnings: [] };
  }
  if (action !== 'ALLOW' && action !== 'DENY') {
    return { skipped: `ztunnel does not enforce the ${action} action`, ruleIndex: [], warnings: [] };
  }
  const labels = spec.selector?.matchLabels;
  const scope =
    labels && Object.keys(labels).length > 0
      ? AuthorizationScope.WORKLOAD_SELECTOR
      : ns === rootNamespace
        ? AuthorizationScope.GLOBAL
        : AuthorizationScope.NAMESPACE;
  const rules: AuthorizationRule[] = [];
  const ruleIndex: number[] = [];
  const warnings: string[] = [];
  (spec.rules ?? []).forEach((rule: PolicyRule, i) => {
    const http = new Set<string>();
    const clauses: { matches: AuthorizationMatch[] }[] = [];
    if (rule.to && rule.to.length > 0) {
      let anyAlways = false;
      const matches = rule.to.map((t) => {
        const op = t.operation ?? {};
        for (const f of HTTP_OPERATION) if (op[f]?.length) http.add(f);
        const m = compact({ destinationPorts: ports(op.ports), notDestinationPorts: ports(op.notPorts) });
        if (isEmptyMatch(m)) anyAlways = true;
        return m;
      });
      if (!anyAlways) clauses.push({ matches });
    }
    if (rule.from && rule.from.length > 0) {
      let anyAlways = false;
      const matches = rule.from.map((f) => {
        const s = f.source ?? {};
        for (const k of HTTP_SOURCE) if (s[k]?.length) http.add(k);
        const m = compact({
          principals: stringMatches(s.principals),
          notPrincipals: stringMatches(s.notPrincipals),
          namespaces: stringMatches(s.namespaces),
          notNamespaces: stringMatches(s.notNamespaces),
          serviceAccounts: serviceAccounts(s.serviceAccounts, ns),
          notServiceAccounts: serviceAccounts(s.notServiceAccounts, ns),
          sourceIps: addresses(s.ipBlocks),
          notSourceIps: addresses(s.notIpBlocks),
        });
        if (isEmptyMatch(m)) anyAlways = true;
        return m;
      });
      if (!anyAlways) clauses.push({ matches });
    }
    for (const w of rule.when ?? []) {
      const parsed = parseConditionKey(w.key);
      if (typeof parsed === 'string' || !L4_CONDITION_ATTRIBUTES.has(parsed.attribute)) {
        http.add(w.key);
        continue;
      }
      clauses.push({ matches: [conditionMatch(w, ns)] });
    }
    if (http.size > 0) {
      const fields = [...http].sort().join(', ');
      if (action === 'ALLOW') {
        warnings.push(
          `spec.rules[${i}]: ALLOW rule uses HTTP attributes (${fields}) that ztunnel cannot see; it is left out and never matches at L4`,
        );
        return;
      }
      warnings.push(
        `spec.rules[${i}]: DENY rule is enforced at L4 without its HTTP attributes (${fields}), which denies more than requested`,
      );
    }
    rules.push({ clauses });
    ruleIndex.push(i);
  });
  const authorization: Authorization = {
    name: policy.metadata.name,
    namespace: ns,
    scope,
    action: action === 'DENY' ? 1 : 0,
    rules,
    dryRun: isDryRun(policy),
  };
  return { authorization, ruleIndex, warnings };
}

// --- workload API -> evaluation, as ztunnel evaluates it ---

function enumValue<T extends Record<string, number>>(
  v: unknown,
  table: T,
  what: string,
  path: string,
  problems: ValidationProblem[],
): T[keyof T] | undefined {
  if (v === undefined || v === null) return 0 as T[keyof T];
  if (typeof v === 'number' && Object.values(table).includes(v)) return v as T[keyof T];
  if (typeof v === 'string' && v in table) return table[v as keyof T];
  problems.push({ path, message: `${JSON.stringify(v)} is not a ${what} (${Object.keys(table).join(', ')})` });
  return undefined;
}

function list<T>(v: T[] | undefined | null): T[] {
  return Array.isArray(v) ? v : [];
}

function ownOneof(m: StringMatch): StringPattern | string {
  const set = (k: keyof StringMatch) => Object.hasOwn(m, k) && m[k] !== undefined && m[k] !== null;
  const kind =
    typeof m.matchType === 'string' ? m.matchType : (['exact', 'prefix', 'suffix', 'presence'] as const).find(set);
  switch (kind) {
    case 'exact':
    case 'prefix':
    case 'suffix': {
      const value = m[kind];
      if (typeof value !== 'string') return `${kind} must be a string`;
      return { kind, value };
    }
    case 'presence':
      return { kind: 'presence', value: '' };
    default:
      return 'no match type is set (one of exact, prefix, suffix, presence)';
  }
}

/** Compiles the matches of a workload-API Authorization into predicates. Reports problems instead of guessing. */
export function compileWorkloadRules(auth: Authorization, problems: ValidationProblem[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  list(auth.rules).forEach((rule, ri) => {
    const clauses: Clause[] = [];
    let principals: string[] | undefined;
    list(rule?.clauses).forEach((clause, ci) => {
      const alts: Conjunction[] = [];
      const matches = list(clause?.matches);
      matches.forEach((m, mi) => {
        const at = `rules[${ri}].clauses[${ci}].matches[${mi}]`;
        alts.push(compileMatch(m ?? {}, at, problems));
      });
      const keys = matches.length > 0 ? exactPrincipalKeys(matches.map((m) => exactStrings(m?.principals))) : undefined;
      // Identity clauses first: they are the most selective, and AND is order-free.
      if (keys) {
        principals ??= keys;
        clauses.unshift(alts);
      } else clauses.push(alts);
    });
    out.push(principals ? { index: ri, clauses, principals } : { index: ri, clauses });
  });
  return out;
}

/** Exact principals of a match written as Istio strings, or a marker that defeats keying. */
function exactStrings(v: StringMatch[] | undefined): string[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  const out: string[] = [];
  for (const sm of items) {
    const p = ownOneof(sm ?? {});
    if (typeof p === 'string' || p.kind !== 'exact' || p.value.startsWith('*') || p.value.endsWith('*'))
      return undefined;
    out.push(p.value);
  }
  return out;
}

function compileMatch(m: AuthorizationMatch, at: string, problems: ValidationProblem[]): Conjunction {
  const preds: Predicate[] = [];
  const strings = (
    field: 'principal' | 'sourceNamespace',
    v: StringMatch[] | undefined,
    name: string,
    negate: boolean,
  ) => {
    const items = list(v);
    if (items.length === 0) return;
    const patterns: StringPattern[] = [];
    items.forEach((sm, i) => {
      const p = ownOneof(sm ?? {});
      if (typeof p === 'string') problems.push({ path: `${at}.${name}[${i}]`, message: p });
      else patterns.push(p);
    });
    preds.push(stringPredicate(field, new StringMatcherList(patterns), negate));
  };
  const ips = (
    field: 'sourceIp' | 'destinationIp',
    v: AuthorizationAddress[] | undefined,
    name: string,
    negate: boolean,
  ) => {
    const items = list(v);
    if (items.length === 0) return;
    const cidrs: Cidr[] = [];
    items.forEach((a, i) => {
      const c = cidrFromBytes(a?.address, a?.length ?? 0);
      if (typeof c === 'string') problems.push({ path: `${at}.${name}[${i}]`, message: c });
      else cidrs.push(c);
    });
    preds.push(ipPredicate(field, cidrs, negate));
  };
  const portList = (v: number[] | undefined, name: string, negate: boolean) => {
    const items = list(v);
    if (items.length === 0) return;
    items.forEach((p, i) => {
      if (!Number.isInteger(p) || p < 0 || p > 65535)
        problems.push({ path: `${at}.${name}[${i}]`, message: `${p} is not a port` });
    });
    preds.push(portPredicate(items, negate));
  };
  const sas = (v: ServiceAccountMatch[] | undefined, name: string, negate: boolean) => {
    const items = list(v);
    if (items.length === 0) return;
    items.forEach((s, i) => {
      if (
        typeof s?.namespace !== 'string' ||
        typeof s?.serviceAccount !== 'string' ||
        !s.namespace ||
        !s.serviceAccount
      ) {
        problems.push({
          path: `${at}.${name}[${i}]`,
          message: 'namespace and serviceAccount must be non-empty strings',
        });
      }
    });
    preds.push(
      serviceAccountPredicate(
        items.map((s) => `${s?.namespace}/${s?.serviceAccount}`),
        negate,
      ),
    );
  };
  // Cheapest tests first: ports, then identity strings, then addresses.
  portList(m.destinationPorts, 'destinationPorts', false);
  portList(m.notDestinationPorts, 'notDestinationPorts', true);
  strings('principal', m.principals, 'principals', false);
  strings('principal', m.notPrincipals, 'notPrincipals', true);
  strings('sourceNamespace', m.namespaces, 'namespaces', false);
  strings('sourceNamespace', m.notNamespaces, 'notNamespaces', true);
  sas(m.serviceAccounts, 'serviceAccounts', false);
  sas(m.notServiceAccounts, 'notServiceAccounts', true);
  ips('sourceIp', m.sourceIps, 'sourceIps', false);
  ips('sourceIp', m.notSourceIps, 'notSourceIps', true);
  ips('destinationIp', m.destinationIps, 'destinationIps', false);
  ips('destinationIp', m.notDestinationIps, 'notDestinationIps', true);
  // ztunnel skips a Match with no fields: it never matches.
  return preds.length === 0 ? [NEVER] : preds;
}

// --- workload API -> AuthorizationPolicy ---

export interface FromWorkloadOptions {
  /** The selector to write for a WORKLOAD_SELECTOR policy (the Authorization itself does not carry it). */
  selector?: Record<string, string>;
  /** Upper bound on generated rules when clauses must be distributed into several rules. Default 1024. */
  maxRules?: number;
}

export interface FromWorkloadResult {
  policy: AuthorizationPolicy;
  /** The Authorization's scope; for WORKLOAD_SELECTOR without `options.selector` the policy has no selector. */
  scope: keyof typeof AuthorizationScope;
}

type Side = 'source' | 'port' | 'mixed' | 'empty';

function sideOf(m: AuthorizationMatch): Side {
  const src =
    list(m.principals).length +
    list(m.notPrincipals).length +
    list(m.namespaces).length +
    list(m.notNamespaces).length +
    list(m.serviceAccounts).length +
    list(m.notServiceAccounts).length +
    list(m.sourceIps).length +
    list(m.notSourceIps).length;
  const port = list(m.destinationPorts).length + list(m.notDestinationPorts).length;
  const dst = list(m.destinationIps).length + list(m.notDestinationIps).length;
  if (src + port + dst === 0) return 'empty';
  if (dst === 0 && port === 0) return 'source';
  if (dst === 0 && src === 0) return 'port';
  return 'mixed';
}

function patternsText(v: StringMatch[] | undefined): string[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  return items.map((sm) => {
    const p = ownOneof(sm ?? {});
    if (typeof p === 'string') throw new AuthzError('ERR_WORKLOAD_AUTHORIZATION_INVALID', p);
    if (p.kind !== 'presence' && p.value.includes('*')) {
      throw new AuthzError(
        'ERR_NOT_REPRESENTABLE',
        `string match ${JSON.stringify(p.value)} contains "*", which AuthorizationPolicy cannot express literally`,
      );
    }
    return formatStringPattern(p);
  });
}

function cidrText(v: AuthorizationAddress[] | undefined): string[] | undefined {
  const items = list(v);
  if (items.length === 0) return undefined;
  return items.map((a) => {
    const c = cidrFromBytes(a.address, a.length);
    if (typeof c === 'string') throw new AuthzError('ERR_WORKLOAD_AUTHORIZATION_INVALID', c);
    return formatCidr(c);
  });
}

function portText(v: number[] | undefined): string[] | undefined {
  const items = list(v);
  return items.length === 0 ? undefined : items.map(String);
}

function saText(v: ServiceAccountMatch[] | undefined): string[] | undefined {
  const items = list(v);
  return items.length === 0 ? undefined : items.map((s) => `${s.namespace}/${s.serviceAccount}`);
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function toSource(m: AuthorizationMatch): Source {
  return dropUndefined({
    principals: patternsText(m.principals),
    notPrincipals: patternsText(m.notPrincipals),
    namespaces: patternsText(m.namespaces),
    notNamespaces: patternsText(m.notNamespaces),
    serviceAccounts: saText(m.serviceAccounts),
    notServiceAccounts: saText(m.notServiceAccounts),
    ipBlocks: cidrText(m.sourceIps),
    notIpBlocks: cidrText(m.notSourceIps),
  });
}

function toConditions(m: AuthorizationMatch): Condition[] {
  const out: Condition[] = [];
  const add = (key: string, values?: string[], notValues?: string[]) => {
    if (values || notValues) out.push(dropUndefined({ key, values, notValues }));
  };
  add('source.principal', patternsText(m.principals), patternsText(m.notPrincipals));
  add('source.namespace', patternsText(m.namespaces), patternsText(m.notNamespaces));
  add('source.serviceAccount', saText(m.serviceAccounts), saText(m.notServiceAccounts));
  add('source.ip', cidrText(m.sourceIps), cidrText(m.notSourceIps));
  add('destination.ip', cidrText(m.destinationIps), cidrText(m.notDestinationIps));
  add('destination.port', portText(m.destinationPorts), portText(m.notDestinationPorts));
  return out;
}

/**
 * Converts a workload-API Authorization back into an AuthorizationPolicy with the same L4 meaning. A clause of
 * source-only matches becomes `from`, a clause of port-only matches becomes `to`, a single-match clause becomes
 * `when` conditions, and any other clause is distributed over several rules (A∧(B∨C) = (A∧B)∨(A∧C)).
 * Rules that can never match (a clause whose matches all have no fields) are left out.
 */
export function fromWorkloadAuthorization(auth: Authorization, options: FromWorkloadOptions = {}): FromWorkloadResult {
  const problems: ValidationProblem[] = [];
  const scopeValue = enumValue(auth.scope, AuthorizationScope, 'scope', 'scope', problems);
  const actionValue = enumValue(auth.action, { ALLOW: 0, DENY: 1 }, 'action', 'action', problems);
  if (typeof auth.name !== 'string' || auth.name === '') problems.push({ path: 'name', message: 'is required' });
  if (typeof auth.namespace !== 'string' || auth.namespace === '')
    problems.push({ path: 'namespace', message: 'is required' });
  if (problems.length > 0) {
    throw new AuthzError(
      'ERR_WORKLOAD_AUTHORIZATION_INVALID',
      `Authorization is invalid: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      { problems },
    );
  }
  const maxRules = options.maxRules ?? 1024;
  const rules: PolicyRule[] = [];
  for (const rule of list(auth.rules)) {
    // Each pending rule: chosen from/to clause and a list of single matches turned into conditions.
    let pending: { from?: AuthorizationMatch[]; to?: AuthorizationMatch[]; when: AuthorizationMatch[] }[] = [
      { when: [] },
    ];
    let never = false;
    for (const clause of list(rule?.clauses)) {
      const matches = list(clause?.matches).filter((m) => sideOf(m ?? {}) !== 'empty');
      if (list(clause?.matches).length === 0) continue;
      if (matches.length === 0) {
        never = true;
        break;
      }
      const sides = new Set(matches.map((m) => sideOf(m)));
      const next: typeof pending = [];
      for (const p of pending) {
        if (matches.length === 1) next.push({ ...p, when: [...p.when, matches[0] as AuthorizationMatch] });
        else if (sides.size === 1 && sides.has('source') && !p.from) next.push({ ...p, from: matches });
        else if (sides.size === 1 && sides.has('port') && !p.to) next.push({ ...p, to: matches });
        else for (const m of matches) next.push({ ...p, when: [...p.when, m] });
      }
      pending = next;
      if (rules.length + pending.length > maxRules) {
        throw new AuthzError(
          'ERR_NOT_REPRESENTABLE',
          `Authorization ${auth.namespace}/${auth.name} expands to more than ${maxRules} rules`,
        );
      }
    }
    if (never) continue;
    for (const p of pending) {
      const r: PolicyRule = {};
      if (p.from) r.from = p.from.map((m) => ({ source: toSource(m) }));
      if (p.to)
        r.to = p.to.map((m) => ({
          operation: dropUndefined({ ports: portText(m.destinationPorts), notPorts: portText(m.notDestinationPorts) }),
        }));
      const when = p.when.flatMap(toConditions);
      if (when.length > 0) r.when = when;
      rules.push(r);
    }
  }
  const scope =
    (Object.keys(AuthorizationScope) as (keyof typeof AuthorizationScope)[]).find(
      (k) => AuthorizationScope[k] === scopeValue,
    ) ?? 'GLOBAL';
  const action = actionValue === 1 ? 'DENY' : 'ALLOW';
  const policy: AuthorizationPolicy = {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: {
      name: auth.name,
      namespace: auth.namespace,
      ...(auth.dryRun ? { annotations: { [DRY_RUN_ANNOTATION]: 'true' } } : {}),
    },
    spec: {
      action,
      ...(scope === 'WORKLOAD_SELECTOR' && options.selector
        ? { selector: { matchLabels: { ...options.selector } } }
        : {}),
      ...(rules.length > 0 ? { rules } : {}),
    },
  };
  return { policy, scope };
}

export { enumValue as workloadEnumValue };
