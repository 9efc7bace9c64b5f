import { parseConditionKey } from './condition-keys.js';
import { AuthzError, formatProblem, type ValidationProblem } from './errors.js';
import { parseCidr } from './ip.js';
import { checkPathPattern } from './path.js';
import {
  type AuthorizationPolicy,
  DEFAULT_POLICY_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  DRY_RUN_ANNOTATION,
} from './policy-types.js';

export interface ValidateOptions {
  /** The mesh root namespace (policies there are mesh-wide). Default `istio-system`. */
  rootNamespace?: string;
}

export interface ValidationResult {
  /** True when there are no problems (warnings do not count). */
  ok: boolean;
  /** Every problem, each with its path, in document order. */
  problems: ValidationProblem[];
  /** Valid but probably not what was meant (e.g. a DENY rule with only HTTP fields denies all TCP traffic). */
  warnings: ValidationProblem[];
  /** A deep copy of the input, present when `ok`. */
  policy?: AuthorizationPolicy;
}

const API_VERSIONS = new Set(['security.istio.io/v1', 'security.istio.io/v1beta1']);
const ACTIONS = new Set(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']);
const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
] as const;
const OPERATION_FIELDS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
] as const;
const HTTP_SOURCE_FIELDS = new Set([
  'requestPrincipals',
  'notRequestPrincipals',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
]);
const HTTP_OPERATION_FIELDS = new Set(['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths']);
// Istio's CUSTOM action cannot match on identities (the external authorizer sees the request instead).
const CUSTOM_FORBIDDEN_SOURCE = new Set([
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
]);
const BOOL_TEXT = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const PORT = /^(0|[1-9][0-9]{0,4})$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'undefined' : JSON.stringify(v);
  return s && s.length > 120 ? `${s.slice(0, 120)}…` : String(s);
}

class Collector {
  readonly problems: ValidationProblem[] = [];
  readonly warnings: ValidationProblem[] = [];
  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }
  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }
  unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(obj)) {
      if (!allowed.includes(k)) {
        this.add(
          `${path}.${k}`,
          `unknown field ${JSON.stringify(k)} (a misspelt field would silently widen or narrow the policy); allowed here: ${allowed.join(', ')}`,
        );
      }
    }
  }
  /** A list of non-empty strings, index-aligned with the input (undefined where an entry is bad). */
  strings(value: unknown, path: string): Array<string | undefined> {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      this.add(path, `must be a list of strings, got ${show(value)}`);
      return [];
    }
    return value.map((v, i) => {
      if (typeof v !== 'string') {
        const hint = typeof v === 'number' ? ` (quote it: "${v}")` : '';
        this.add(`${path}[${i}]`, `must be a string, got ${show(v)}${hint}`);
        return undefined;
      }
      if (v === '') {
        this.add(`${path}[${i}]`, 'must not be empty');
        return undefined;
      }
      return v;
    });
  }
}

type Values = Array<string | undefined>;

function checkIps(c: Collector, values: Values, path: string): void {
  values.forEach((v, i) => {
    if (v === undefined) return;
    const r = parseCidr(v);
    if (typeof r === 'string') {
      c.add(
        `${path}[${i}]`,
        `${JSON.stringify(v)} ${v.includes('/') ? 'is not a CIDR' : 'is not an IP address or CIDR'}`,
      );
    }
  });
}

function checkPorts(c: Collector, values: Values, path: string): void {
  values.forEach((v, i) => {
    if (v === undefined) return;
    if (!PORT.test(v) || Number(v) > 65535) {
      c.add(
        `${path}[${i}]`,
        `${JSON.stringify(v)} is not a port: use a number from 0 to 65535 (ranges are not supported)`,
      );
    }
  });
}

function checkServiceAccounts(c: Collector, values: Values, path: string): void {
  if (values.length > 16) c.add(path, `has ${values.length} values; at most 16 are allowed`);
  values.forEach((v, i) => {
    if (v === undefined) return;
    const at = `${path}[${i}]`;
    if (v.includes('*')) c.add(at, `${JSON.stringify(v)}: wildcards are not allowed in service accounts`);
    else if (v.length > 320) c.add(at, 'is longer than 320 characters');
    else {
      const parts = v.split('/');
      if (parts.length > 2 || parts.some((p) => p === '')) {
        c.add(at, `${JSON.stringify(v)} is not a service account: write "<namespace>/<name>" or "<name>"`);
      }
    }
  });
}

function checkPaths(c: Collector, values: Values, path: string): void {
  values.forEach((v, i) => {
    if (v === undefined) return;
    const why = checkPathPattern(v);
    if (why) c.add(`${path}[${i}]`, why);
  });
}

function validateSource(
  c: Collector,
  src: Record<string, unknown>,
  path: string,
  custom: boolean,
): { http: boolean; tcp: boolean } {
  c.unknownKeys(src, SOURCE_FIELDS, path);
  let any = false;
  let http = false;
  let tcp = false;
  const lists: Record<string, Values> = {};
  for (const f of SOURCE_FIELDS) {
    const raw = src[f];
    const values = c.strings(raw, `${path}.${f}`);
    lists[f] = values;
    // A present but malformed field is reported on its own; do not also call the source empty.
    if (raw !== undefined && raw !== null && !Array.isArray(raw)) any = true;
    if (Array.isArray(raw) && raw.length > 0) {
      any = true;
      if (HTTP_SOURCE_FIELDS.has(f)) http = true;
      else tcp = true;
      if (custom && CUSTOM_FORBIDDEN_SOURCE.has(f)) {
        c.add(`${path}.${f}`, `is not supported with action CUSTOM (the external authorizer decides on identities)`);
      }
    }
    if (f.endsWith('pBlocks') || f.endsWith('IpBlocks')) checkIps(c, values, `${path}.${f}`);
    if (f === 'serviceAccounts' || f === 'notServiceAccounts') checkServiceAccounts(c, values, `${path}.${f}`);
  }
  if (!any) c.add(path, 'must not be empty: set at least one field, or drop the `from` entry to match any source');
  const sa = (lists.serviceAccounts?.length ?? 0) + (lists.notServiceAccounts?.length ?? 0);
  const idFields =
    (lists.principals?.length ?? 0) +
    (lists.notPrincipals?.length ?? 0) +
    (lists.namespaces?.length ?? 0) +
    (lists.notNamespaces?.length ?? 0);
  if (sa > 0 && idFields > 0) {
    c.add(path, 'serviceAccounts/notServiceAccounts cannot be combined with principals or namespaces in one source');
  }
  return { http, tcp };
}

function validateOperation(c: Collector, op: Record<string, unknown>, path: string): { http: boolean; tcp: boolean } {
  c.unknownKeys(op, OPERATION_FIELDS, path);
  let any = false;
  let http = false;
  let tcp = false;
  for (const f of OPERATION_FIELDS) {
    const raw = op[f];
    const values = c.strings(raw, `${path}.${f}`);
    if (raw !== undefined && raw !== null && !Array.isArray(raw)) any = true;
    if (Array.isArray(raw) && raw.length > 0) {
      any = true;
      if (HTTP_OPERATION_FIELDS.has(f)) http = true;
      else tcp = true;
    }
    if (f === 'ports' || f === 'notPorts') checkPorts(c, values, `${path}.${f}`);
    if (f === 'paths' || f === 'notPaths') checkPaths(c, values, `${path}.${f}`);
  }
  if (!any) c.add(path, 'must not be empty: set at least one field, or drop the `to` entry to match any operation');
  return { http, tcp };
}

function validateCondition(c: Collector, cond: unknown, path: string, custom: boolean): void {
  if (!isObject(cond)) {
    c.add(path, `must be an object with key and values/notValues, got ${show(cond)}`);
    return;
  }
  c.unknownKeys(cond, ['key', 'values', 'notValues'], path);
  const key = cond.key;
  const values = c.strings(cond.values, `${path}.values`);
  const notValues = c.strings(cond.notValues, `${path}.notValues`);
  if (typeof key !== 'string' || key === '') {
    c.add(`${path}.key`, 'is required: name an attribute such as source.ip or request.headers[x-token]');
    return;
  }
  const parsed = parseConditionKey(key);
  if (typeof parsed === 'string') {
    c.add(`${path}.key`, parsed);
    return;
  }
  if (
    custom &&
    (parsed.attribute.startsWith('request.auth.') ||
      parsed.attribute.startsWith('source.n') ||
      parsed.attribute === 'source.principal' ||
      parsed.attribute === 'source.serviceAccount')
  ) {
    c.add(`${path}.key`, `${JSON.stringify(key)} is not supported with action CUSTOM`);
  }
  const rawValues = Array.isArray(cond.values) ? cond.values : [];
  const rawNot = Array.isArray(cond.notValues) ? cond.notValues : [];
  if (rawValues.length === 0 && rawNot.length === 0) {
    c.add(path, `at least one of values or notValues must be set for key ${JSON.stringify(key)}`);
  }
  switch (parsed.attribute) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      checkIps(c, values, `${path}.values`);
      checkIps(c, notValues, `${path}.notValues`);
      break;
    case 'destination.port':
      checkPorts(c, values, `${path}.values`);
      checkPorts(c, notValues, `${path}.notValues`);
      break;
    case 'source.serviceAccount':
      checkServiceAccounts(c, values, `${path}.values`);
      checkServiceAccounts(c, notValues, `${path}.notValues`);
      break;
    default:
      break;
  }
}

function validateTargetRef(c: Collector, ref: unknown, path: string, namespace: string, rootNamespace: string): void {
  if (!isObject(ref)) {
    c.add(path, `must be an object with kind and name, got ${show(ref)}`);
    return;
  }
  c.unknownKeys(ref, ['group', 'kind', 'name', 'namespace', 'sectionName'], path);
  const group = ref.group ?? '';
  const { kind, name } = ref;
  if (typeof group !== 'string') c.add(`${path}.group`, `must be a string, got ${show(group)}`);
  if (typeof kind !== 'string' || kind === '') c.add(`${path}.kind`, 'is required');
  if (typeof name !== 'string' || name === '') c.add(`${path}.name`, 'is required');
  if (ref.namespace !== undefined && ref.namespace !== namespace) {
    c.add(
      `${path}.namespace`,
      `must be the policy's own namespace ${JSON.stringify(namespace)} (cross-namespace targets are not supported)`,
    );
  }
  if (typeof kind !== 'string' || typeof group !== 'string') return;
  const ok =
    (group === 'gateway.networking.k8s.io' && (kind === 'Gateway' || kind === 'GatewayClass')) ||
    ((group === '' || group === 'core') && kind === 'Service') ||
    (group === 'networking.istio.io' && kind === 'ServiceEntry');
  if (!ok) {
    c.add(
      path,
      `targets ${group ? `${group}/` : ''}${kind}; supported: gateway.networking.k8s.io Gateway or GatewayClass, core Service, networking.istio.io ServiceEntry`,
    );
  } else if (kind === 'GatewayClass') {
    if (namespace !== rootNamespace)
      c.add(path, `a GatewayClass target is only allowed in the root namespace ${JSON.stringify(rootNamespace)}`);
    if (name !== 'istio-waypoint') c.add(`${path}.name`, 'only the GatewayClass "istio-waypoint" can be targeted');
  }
}

/**
 * Validates one AuthorizationPolicy object (as parsed from YAML or JSON). Reports every problem with its
 * path rather than stopping at the first.
 */
export function validatePolicy(input: unknown, options: ValidateOptions = {}): ValidationResult {
  const rootNamespace = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const c = new Collector();
  if (!isObject(input)) {
    c.add('', `an AuthorizationPolicy must be an object, got ${show(input)}`);
    return { ok: false, problems: c.problems, warnings: c.warnings };
  }
  c.unknownKeys(input, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], '');
  // unknownKeys built paths like ".foo" for the top level; strip the dot.
  for (const p of c.problems) (p as { path: string }).path = p.path.replace(/^\./, '');
  if (input.apiVersion !== undefined && !API_VERSIONS.has(input.apiVersion as string)) {
    c.add(
      'apiVersion',
      `${show(input.apiVersion)} is not supported: use security.istio.io/v1 or security.istio.io/v1beta1`,
    );
  }
  if (input.kind !== undefined && input.kind !== 'AuthorizationPolicy') {
    c.add('kind', `${show(input.kind)} is not AuthorizationPolicy`);
  }
  let namespace = DEFAULT_POLICY_NAMESPACE;
  const md = input.metadata;
  if (!isObject(md)) {
    c.add('metadata', 'is required (with at least a name)');
  } else {
    if (typeof md.name !== 'string' || md.name === '') c.add('metadata.name', 'is required');
    else if (!DNS_SUBDOMAIN.test(md.name))
      c.add(
        'metadata.name',
        `${show(md.name)} is not a valid Kubernetes name (lowercase letters, digits, "-" and ".")`,
      );
    if (md.namespace !== undefined) {
      if (typeof md.namespace !== 'string' || !DNS_LABEL.test(md.namespace)) {
        c.add('metadata.namespace', `${show(md.namespace)} is not a valid namespace name (a lowercase DNS label)`);
      } else {
        namespace = md.namespace;
      }
    }
    if (md.annotations !== undefined) {
      if (!isObject(md.annotations)) c.add('metadata.annotations', 'must be a map of strings');
      else {
        const dry = md.annotations[DRY_RUN_ANNOTATION];
        if (dry !== undefined && (typeof dry !== 'string' || !BOOL_TEXT.has(dry))) {
          c.add(
            `metadata.annotations["${DRY_RUN_ANNOTATION}"]`,
            `${show(dry)} is not a boolean: write "true" or "false"`,
          );
        }
      }
    }
  }
  const spec = input.spec ?? {};
  if (!isObject(spec)) {
    c.add('spec', `must be an object, got ${show(spec)}`);
    return { ok: false, problems: c.problems, warnings: c.warnings };
  }
  c.unknownKeys(spec, ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules'], 'spec');
  const action = spec.action ?? 'ALLOW';
  if (typeof action !== 'string' || !ACTIONS.has(action)) {
    c.add('spec.action', `${show(spec.action)} is not an action: use ALLOW, DENY, AUDIT or CUSTOM`);
  }
  const custom = action === 'CUSTOM';
  const scopes = ['selector', 'targetRef', 'targetRefs'].filter((k) => spec[k] !== undefined);
  if (scopes.length > 1)
    c.add('spec', `set at most one of selector, targetRef and targetRefs (found ${scopes.join(', ')})`);
  if (spec.selector !== undefined) {
    if (!isObject(spec.selector)) c.add('spec.selector', 'must be an object with matchLabels');
    else {
      c.unknownKeys(spec.selector, ['matchLabels'], 'spec.selector');
      const ml = spec.selector.matchLabels;
      if (ml !== undefined && !isObject(ml))
        c.add('spec.selector.matchLabels', 'must be a map of label names to values');
      else if (ml) {
        for (const [k, v] of Object.entries(ml)) {
          if (k === '') c.add('spec.selector.matchLabels', 'has an empty label name');
          if (typeof v !== 'string') c.add(`spec.selector.matchLabels.${k}`, `must be a string, got ${show(v)}`);
        }
      }
    }
  }
  if (spec.targetRef !== undefined) validateTargetRef(c, spec.targetRef, 'spec.targetRef', namespace, rootNamespace);
  if (spec.targetRefs !== undefined) {
    if (!Array.isArray(spec.targetRefs)) c.add('spec.targetRefs', 'must be a list');
    else
      spec.targetRefs.forEach((r, i) => {
        validateTargetRef(c, r, `spec.targetRefs[${i}]`, namespace, rootNamespace);
      });
  }
  if (spec.provider !== undefined) {
    if (!custom) c.add('spec.provider', `is only allowed with action CUSTOM (action is ${show(action)})`);
    else if (!isObject(spec.provider)) c.add('spec.provider', 'must be an object with a name');
    else c.unknownKeys(spec.provider, ['name'], 'spec.provider');
  }
  const rules = spec.rules;
  const noRules = rules === undefined || rules === null || (Array.isArray(rules) && rules.length === 0);
  if (custom) {
    const pname = isObject(spec.provider) ? spec.provider.name : undefined;
    if (typeof pname !== 'string' || pname === '') {
      c.add('spec.provider.name', 'is required with action CUSTOM: name the extension provider that decides');
    }
  }
  if ((action === 'DENY' || action === 'CUSTOM') && noRules) {
    c.add(
      'spec.rules',
      `${action} without rules never matches and has no effect; add an empty rule {} to match every request`,
    );
  }
  if (rules !== undefined && rules !== null && !Array.isArray(rules))
    c.add('spec.rules', `must be a list, got ${show(rules)}`);
  if (Array.isArray(rules)) {
    rules.forEach((rule, i) => {
      const rp = `spec.rules[${i}]`;
      if (!isObject(rule)) {
        c.add(rp, `must be an object (use {} to match everything), got ${show(rule)}`);
        return;
      }
      c.unknownKeys(rule, ['from', 'to', 'when'], rp);
      let srcHttpOnly = false;
      let opHttpOnly = false;
      if (rule.from !== undefined) {
        if (!Array.isArray(rule.from) || rule.from.length === 0) {
          c.add(`${rp}.from`, 'must be a non-empty list (omit it to match any source)');
        } else {
          let anyTcp = false;
          rule.from.forEach((f, j) => {
            const fp = `${rp}.from[${j}]`;
            if (!isObject(f)) {
              c.add(fp, `must be an object with a source, got ${show(f)}`);
              return;
            }
            c.unknownKeys(f, ['source'], fp);
            if (!isObject(f.source)) {
              c.add(`${fp}.source`, 'is required');
              return;
            }
            const r = validateSource(c, f.source, `${fp}.source`, custom);
            anyTcp ||= r.tcp;
          });
          srcHttpOnly = !anyTcp;
        }
      }
      if (rule.to !== undefined) {
        if (!Array.isArray(rule.to) || rule.to.length === 0) {
          c.add(`${rp}.to`, 'must be a non-empty list (omit it to match any operation)');
        } else {
          let anyTcp = false;
          rule.to.forEach((t, j) => {
            const tp = `${rp}.to[${j}]`;
            if (!isObject(t)) {
              c.add(tp, `must be an object with an operation, got ${show(t)}`);
              return;
            }
            c.unknownKeys(t, ['operation'], tp);
            if (!isObject(t.operation)) {
              c.add(`${tp}.operation`, 'is required');
              return;
            }
            const r = validateOperation(c, t.operation, `${tp}.operation`);
            anyTcp ||= r.tcp;
          });
          opHttpOnly = !anyTcp;
        }
      }
      if (rule.when !== undefined) {
        if (!Array.isArray(rule.when)) c.add(`${rp}.when`, 'must be a list of conditions');
        else
          rule.when.forEach((w, j) => {
            validateCondition(c, w, `${rp}.when[${j}]`, custom);
          });
      }
      if (
        action === 'DENY' &&
        ((rule.from !== undefined && rule.to === undefined && srcHttpOnly) || (rule.to !== undefined && opHttpOnly))
      ) {
        c.warn(
          rp,
          'this DENY rule uses only HTTP attributes: where only L4 is enforced (ztunnel, TCP traffic) it denies all traffic in scope; name the ports to narrow it',
        );
      }
    });
  }
  const ok = c.problems.length === 0;
  return {
    ok,
    problems: c.problems,
    warnings: c.warnings,
    ...(ok ? { policy: structuredClone(input) as unknown as AuthorizationPolicy } : {}),
  };
}

/** Validates and returns a copy of the policy; throws ERR_POLICY_INVALID listing every problem. */
export function parsePolicy(input: unknown, options: ValidateOptions = {}): AuthorizationPolicy {
  const r = validatePolicy(input, options);
  if (!r.ok || !r.policy) {
    const name =
      isObject(input) && isObject(input.metadata)
        ? `${input.metadata.namespace ?? DEFAULT_POLICY_NAMESPACE}/${String(input.metadata.name)}`
        : 'policy';
    throw new AuthzError(
      'ERR_POLICY_INVALID',
      `AuthorizationPolicy ${name} is invalid:\n- ${r.problems.map(formatProblem).join('\n- ')}`,
      {
        problems: r.problems,
      },
    );
  }
  return r.policy;
}
