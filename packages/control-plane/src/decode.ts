import { isIP } from 'node:net';
import {
  type AnyConfigObject,
  CLUSTER_SCOPED_KINDS,
  type ConfigKind,
  type ConfigOrigin,
  type ContainerPort,
  type GatewayListener,
  KIND_API_VERSIONS,
  type MtlsMode,
  type ObjectMeta,
  type OwnerReference,
  type PodCondition,
  type ServicePort,
} from './config-object.js';
import type { ConfigProblem } from './config-problem.js';

/** Checks an AuthorizationPolicy beyond its shape; returns one message per problem (empty when valid). */
export type PolicyValidator = (policy: Readonly<Record<string, unknown>>) => readonly string[];

export interface DecodeOptions {
  readonly validatePolicy?: PolicyValidator;
}

export type DecodeResult =
  | { readonly ok: true; readonly object: AnyConfigObject }
  | { readonly ok: false; readonly problem: ConfigProblem; readonly key?: string };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const MTLS_MODES: ReadonlySet<string> = new Set(['UNSET', 'STRICT', 'PERMISSIVE', 'DISABLE']);

/** A schema violation with the field path, thrown inside the decoders and turned into one problem. */
class SchemaViolation extends Error {}

function fail(path: string, why: string): never {
  throw new SchemaViolation(`${path}: ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function record(v: unknown, path: string, optional = true): Record<string, unknown> {
  if (v === undefined || v === null) {
    if (optional) return {};
    fail(path, 'is required');
  }
  if (!isRecord(v)) fail(path, `must be a mapping, got ${describe(v)}`);
  return v;
}

function list(v: unknown, path: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) fail(path, `must be a list, got ${describe(v)}`);
  return v;
}

function str(v: unknown, path: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') fail(path, `must be a string, got ${describe(v)} (quote it in YAML)`);
  return v;
}

function requiredStr(v: unknown, path: string): string {
  const s = str(v, path);
  if (s === undefined || s === '') fail(path, 'is required');
  return s;
}

function port(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    fail(path, `must be a port number 1-65535, got ${describe(v)}`);
  }
  return v;
}

function ip(v: unknown, path: string): string {
  const s = requiredStr(v, path);
  if (isIP(s) === 0) fail(path, `${JSON.stringify(s)} is not an IP address`);
  return s;
}

function stringMap(v: unknown, path: string, kind: 'label' | 'annotation' | 'selector'): Record<string, string> {
  const m = record(v, path);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(m)) {
    if (typeof val !== 'string') {
      fail(`${path}.${k}`, `${kind} values must be strings, got ${describe(val)} (quote it in YAML)`);
    }
    if (kind !== 'annotation') {
      const slash = k.lastIndexOf('/');
      const name = slash >= 0 ? k.slice(slash + 1) : k;
      const prefix = slash >= 0 ? k.slice(0, slash) : '';
      if (name.length > 63 || !LABEL_NAME.test(name) || (prefix && !DNS1123_SUBDOMAIN.test(prefix))) {
        fail(`${path}`, `${JSON.stringify(k)} is not a valid label key`);
      }
      if (val.length > 63 || !LABEL_VALUE.test(val))
        fail(`${path}.${k}`, `${JSON.stringify(val)} is not a valid label value`);
    }
    out[k] = val;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function kindOf(apiVersion: string, kind: string): ConfigKind | undefined {
  const versions = (KIND_API_VERSIONS as Record<string, readonly string[] | undefined>)[kind];
  return versions?.includes(apiVersion) ? (kind as ConfigKind) : undefined;
}

function decodeMeta(raw: Record<string, unknown>, kind: ConfigKind): ObjectMeta {
  const m = record(raw.metadata, 'metadata', false);
  const name = requiredStr(m.name, 'metadata.name');
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    fail('metadata.name', `${JSON.stringify(name)} must be lowercase letters, digits, "-" and "." (a DNS name)`);
  }
  let namespace = '';
  if (!CLUSTER_SCOPED_KINDS.has(kind)) {
    namespace = str(m.namespace, 'metadata.namespace') || 'default';
    if (namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
      fail('metadata.namespace', `${JSON.stringify(namespace)} must be a DNS label (lowercase letters, digits, "-")`);
    }
  } else if (kind === 'Namespace' && (name.length > 63 || !DNS1123_LABEL.test(name))) {
    fail('metadata.name', `${JSON.stringify(name)} must be a DNS label (lowercase letters, digits, "-")`);
  }
  const creation = m.creationTimestamp;
  let creationTimestamp: string | undefined;
  if (creation instanceof Date) creationTimestamp = creation.toISOString();
  else if (creation !== undefined && creation !== null) {
    creationTimestamp = str(creation, 'metadata.creationTimestamp');
    if (creationTimestamp !== undefined && Number.isNaN(Date.parse(creationTimestamp))) {
      fail('metadata.creationTimestamp', `${JSON.stringify(creationTimestamp)} is not an RFC 3339 time`);
    }
  }
  const ownerReferences: OwnerReference[] = list(m.ownerReferences, 'metadata.ownerReferences').map((o, i) => {
    const p = `metadata.ownerReferences[${i}]`;
    const r = record(o, p, false);
    return {
      apiVersion: str(r.apiVersion, `${p}.apiVersion`) ?? '',
      kind: requiredStr(r.kind, `${p}.kind`),
      name: requiredStr(r.name, `${p}.name`),
      controller: r.controller === true,
    };
  });
  const meta: ObjectMeta = {
    name,
    namespace,
    labels: stringMap(m.labels, 'metadata.labels', 'label'),
    annotations: stringMap(m.annotations, 'metadata.annotations', 'annotation'),
    ownerReferences,
    ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
    ...(typeof m.generateName === 'string' ? { generateName: m.generateName } : {}),
  };
  return meta;
}

function decodeService(spec: Record<string, unknown>) {
  const selector =
    spec.selector === undefined || spec.selector === null
      ? undefined
      : stringMap(spec.selector, 'spec.selector', 'selector');
  const seen = new Set<string>();
  const ports: ServicePort[] = list(spec.ports, 'spec.ports').map((p0, i) => {
    const path = `spec.ports[${i}]`;
    const p = record(p0, path, false);
    const servicePort = port(p.port, `${path}.port`);
    const protocol = (str(p.protocol, `${path}.protocol`) ?? 'TCP').toUpperCase();
    if (!['TCP', 'UDP', 'SCTP'].includes(protocol))
      fail(`${path}.protocol`, `must be TCP, UDP or SCTP, got ${protocol}`);
    const key = `${servicePort}/${protocol}`;
    if (seen.has(key)) fail(`${path}.port`, `port ${servicePort}/${protocol} is listed twice`);
    seen.add(key);
    let targetPort: number | string = servicePort;
    if (typeof p.targetPort === 'string') {
      if (/^\d+$/.test(p.targetPort)) targetPort = port(Number(p.targetPort), `${path}.targetPort`);
      else if (!DNS1123_LABEL.test(p.targetPort) || p.targetPort.length > 15) {
        fail(
          `${path}.targetPort`,
          `${JSON.stringify(p.targetPort)} is neither a port number nor a container port name`,
        );
      } else targetPort = p.targetPort;
    } else if (p.targetPort !== undefined && p.targetPort !== null)
      targetPort = port(p.targetPort, `${path}.targetPort`);
    const name = str(p.name, `${path}.name`);
    const appProtocol = str(p.appProtocol, `${path}.appProtocol`);
    return {
      port: servicePort,
      targetPort,
      protocol,
      ...(name ? { name } : {}),
      ...(appProtocol ? { appProtocol } : {}),
    };
  });
  if (ports.length > 1 && ports.some((p) => !p.name))
    fail('spec.ports', 'every port needs a name when a Service has several');
  const clusterIPs: string[] = [];
  const one = str(spec.clusterIP, 'spec.clusterIP');
  const many = list(spec.clusterIPs, 'spec.clusterIPs').map((v, i) => requiredStr(v, `spec.clusterIPs[${i}]`));
  for (const [i, v] of [...(one !== undefined ? [one] : []), ...many].entries()) {
    if (v === '' || v === 'None' || clusterIPs.includes(v)) continue;
    clusterIPs.push(ip(v, i === 0 && one !== undefined ? 'spec.clusterIP' : 'spec.clusterIPs'));
  }
  const trafficDistribution = str(spec.trafficDistribution, 'spec.trafficDistribution');
  const internalTrafficPolicy = str(spec.internalTrafficPolicy, 'spec.internalTrafficPolicy');
  return {
    ports,
    clusterIPs,
    ...(selector ? { selector } : {}),
    ...(trafficDistribution ? { trafficDistribution } : {}),
    ...(internalTrafficPolicy ? { internalTrafficPolicy } : {}),
  };
}

function decodePod(spec: Record<string, unknown>, raw: Record<string, unknown>) {
  const status = record(raw.status, 'status');
  const containerPorts: ContainerPort[] = [];
  list(spec.containers, 'spec.containers').forEach((c0, i) => {
    const c = record(c0, `spec.containers[${i}]`, false);
    list(c.ports, `spec.containers[${i}].ports`).forEach((p0, j) => {
      const path = `spec.containers[${i}].ports[${j}]`;
      const p = record(p0, path, false);
      const name = str(p.name, `${path}.name`);
      containerPorts.push({
        containerPort: port(p.containerPort, `${path}.containerPort`),
        protocol: (str(p.protocol, `${path}.protocol`) ?? 'TCP').toUpperCase(),
        ...(name ? { name } : {}),
      });
    });
  });
  const podIPs: string[] = [];
  const podIP = str(status.podIP, 'status.podIP');
  if (podIP) podIPs.push(ip(podIP, 'status.podIP'));
  list(status.podIPs, 'status.podIPs').forEach((v, i) => {
    const a = ip(record(v, `status.podIPs[${i}]`, false).ip, `status.podIPs[${i}].ip`);
    if (!podIPs.includes(a)) podIPs.push(a);
  });
  const hostNetwork = spec.hostNetwork === true;
  const phase = str(status.phase, 'status.phase');
  let conditions: PodCondition[] | undefined;
  if (status.conditions !== undefined && status.conditions !== null) {
    conditions = list(status.conditions, 'status.conditions').map((c0, i) => {
      const c = record(c0, `status.conditions[${i}]`, false);
      return {
        type: requiredStr(c.type, `status.conditions[${i}].type`),
        status: str(c.status, `status.conditions[${i}].status`) ?? '',
      };
    });
  }
  const nodeName = str(spec.nodeName, 'spec.nodeName');
  return {
    serviceAccountName:
      str(spec.serviceAccountName, 'spec.serviceAccountName') ||
      str(spec.serviceAccount, 'spec.serviceAccount') ||
      'default',
    hostNetwork,
    containerPorts,
    podIPs,
    ...(nodeName ? { nodeName } : {}),
    ...(phase ? { phase } : {}),
    ...(conditions ? { conditions } : {}),
  };
}

function decodeWorkloadEntry(spec: Record<string, unknown>, meta: ObjectMeta) {
  const address = ip(spec.address, 'spec.address');
  const ports: Record<string, number> = {};
  for (const [k, v] of Object.entries(record(spec.ports, 'spec.ports'))) ports[k] = port(v, `spec.ports.${k}`);
  const labels = { ...meta.labels, ...stringMap(spec.labels, 'spec.labels', 'label') };
  const network = str(spec.network, 'spec.network');
  const locality = str(spec.locality, 'spec.locality');
  return {
    address,
    ports,
    labels,
    serviceAccount: str(spec.serviceAccount, 'spec.serviceAccount') || 'default',
    ...(network ? { network } : {}),
    ...(locality ? { locality } : {}),
  };
}

function matchLabelsSelector(v: unknown, path: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  const sel = record(v, path);
  for (const k of Object.keys(sel))
    if (k !== 'matchLabels') fail(`${path}.${k}`, 'only matchLabels is supported in a workload selector');
  return stringMap(sel.matchLabels, `${path}.matchLabels`, 'selector');
}

function mtlsMode(v: unknown, path: string): MtlsMode {
  if (v === undefined || v === null) return 'UNSET';
  const m = record(v, path);
  const mode = str(m.mode, `${path}.mode`) ?? 'UNSET';
  if (!MTLS_MODES.has(mode))
    fail(`${path}.mode`, `must be one of UNSET, STRICT, PERMISSIVE, DISABLE; got ${JSON.stringify(mode)}`);
  return mode as MtlsMode;
}

function decodePeerAuthentication(spec: Record<string, unknown>) {
  const selector = matchLabelsSelector(spec.selector, 'spec.selector');
  const portLevelMtls = new Map<number, MtlsMode>();
  for (const [k, v] of Object.entries(record(spec.portLevelMtls, 'spec.portLevelMtls'))) {
    const n = Number(k);
    portLevelMtls.set(
      port(Number.isInteger(n) ? n : k, `spec.portLevelMtls.${k}`),
      mtlsMode(v, `spec.portLevelMtls.${k}`),
    );
  }
  if (portLevelMtls.size > 0 && !selector) fail('spec.portLevelMtls', 'portLevelMtls requires a workload selector');
  return { mode: mtlsMode(spec.mtls, 'spec.mtls'), portLevelMtls, ...(selector ? { selector } : {}) };
}

function decodeAuthorizationPolicy(spec: Record<string, unknown>) {
  const selector = matchLabelsSelector(spec.selector, 'spec.selector');
  const targetRefs = list(spec.targetRefs, 'spec.targetRefs');
  return {
    raw: spec,
    hasTargetRefs: targetRefs.length > 0 || isRecord(spec.targetRef),
    ...(selector ? { selector } : {}),
  };
}

function decodeGateway(spec: Record<string, unknown>, raw: Record<string, unknown>) {
  const gatewayClassName = requiredStr(spec.gatewayClassName, 'spec.gatewayClassName');
  const listeners: GatewayListener[] = list(spec.listeners, 'spec.listeners').map((l0, i) => {
    const path = `spec.listeners[${i}]`;
    const l = record(l0, path, false);
    const ns = record(record(l.allowedRoutes, `${path}.allowedRoutes`).namespaces, `${path}.allowedRoutes.namespaces`);
    const from = str(ns.from, `${path}.allowedRoutes.namespaces.from`) ?? 'Same';
    if (from !== 'Same' && from !== 'All' && from !== 'Selector') {
      fail(`${path}.allowedRoutes.namespaces.from`, `must be Same, All or Selector; got ${JSON.stringify(from)}`);
    }
    const matchLabels =
      from === 'Selector'
        ? stringMap(
            record(ns.selector, `${path}.allowedRoutes.namespaces.selector`).matchLabels,
            `${path}.allowedRoutes.namespaces.selector.matchLabels`,
            'selector',
          )
        : undefined;
    const name = str(l.name, `${path}.name`);
    return {
      port: port(l.port, `${path}.port`),
      protocol: requiredStr(l.protocol, `${path}.protocol`),
      allowedNamespaces: { from, ...(matchLabels ? { matchLabels } : {}) },
      ...(name ? { name } : {}),
    };
  });
  const status = record(raw.status, 'status');
  const statusAddresses = list(status.addresses, 'status.addresses').map((a0, i) => {
    const a = record(a0, `status.addresses[${i}]`, false);
    return {
      type: str(a.type, `status.addresses[${i}].type`) ?? 'IPAddress',
      value: requiredStr(a.value, `status.addresses[${i}].value`),
    };
  });
  return { gatewayClassName, listeners, statusAddresses };
}

/**
 * Turns one parsed YAML document into a typed object, or one problem saying what is wrong and where.
 * Unknown kinds come back as an `unknown-kind` warning so they are reported and skipped.
 */
export function decodeObject(doc: unknown, origin: ConfigOrigin, options: DecodeOptions = {}): DecodeResult {
  const base = { file: origin.file, ...(origin.line !== undefined ? { line: origin.line } : {}) };
  if (!isRecord(doc)) {
    return {
      ok: false,
      problem: {
        ...base,
        code: 'schema',
        severity: 'error',
        reason: `a document must be a mapping with apiVersion and kind, got ${describe(doc)}`,
      },
    };
  }
  const apiVersion = doc.apiVersion;
  const kindName = doc.kind;
  if (typeof apiVersion !== 'string' || typeof kindName !== 'string' || !apiVersion || !kindName) {
    return {
      ok: false,
      problem: { ...base, code: 'schema', severity: 'error', reason: 'apiVersion and kind are required strings' },
    };
  }
  const rawName = isRecord(doc.metadata) && typeof doc.metadata.name === 'string' ? doc.metadata.name : '?';
  const rawNs =
    isRecord(doc.metadata) && typeof doc.metadata.namespace === 'string' ? doc.metadata.namespace : undefined;
  const kind = kindOf(apiVersion, kindName);
  if (!kind) {
    const known = (KIND_API_VERSIONS as Record<string, readonly string[] | undefined>)[kindName];
    const reason = known
      ? `apiVersion ${apiVersion} is not supported for ${kindName}; use ${known.join(' or ')}`
      : `unknown kind ${apiVersion} ${kindName}: skipped (the control plane reads ${Object.keys(KIND_API_VERSIONS).join(', ')})`;
    return {
      ok: false,
      problem: {
        ...base,
        code: 'unknown-kind',
        severity: 'warning',
        object: `${kindName} ${rawNs ? `${rawNs}/` : ''}${rawName}`,
        reason,
      },
    };
  }
  const display = `${kind} ${CLUSTER_SCOPED_KINDS.has(kind) ? '' : `${rawNs || 'default'}/`}${rawName}`;
  const key =
    rawName !== '?' ? `${kind}/${CLUSTER_SCOPED_KINDS.has(kind) ? '' : `${rawNs || 'default'}/`}${rawName}` : undefined;
  const problem = (code: ConfigProblem['code'], reason: string): DecodeResult => ({
    ok: false,
    problem: { ...base, code, severity: 'error', object: display, reason },
    ...(key ? { key } : {}),
  });
  try {
    const metadata = decodeMeta(doc, kind);
    const spec = record(doc.spec, 'spec');
    const common = { apiVersion, metadata, origin, raw: doc };
    switch (kind) {
      case 'Namespace':
        return { ok: true, object: { ...common, kind, spec: {} } };
      case 'Service':
        return { ok: true, object: { ...common, kind, spec: decodeService(spec) } };
      case 'Pod': {
        const podSpec = decodePod(spec, doc);
        if (podSpec.podIPs.length === 0 && !podSpec.hostNetwork) {
          return problem(
            'pod-without-ip',
            "status.podIP is missing: a Pod needs an IP to be part of the mesh (in the embedded mesh, node N's pods use 127.0.N.10 and up)",
          );
        }
        return { ok: true, object: { ...common, kind, spec: podSpec } };
      }
      case 'WorkloadEntry':
        return { ok: true, object: { ...common, kind, spec: decodeWorkloadEntry(spec, metadata) } };
      case 'PeerAuthentication':
        return { ok: true, object: { ...common, kind, spec: decodePeerAuthentication(spec) } };
      case 'AuthorizationPolicy': {
        const ap = decodeAuthorizationPolicy(spec);
        const issues = options.validatePolicy?.(doc) ?? [];
        if (issues.length > 0) return problem('policy-invalid', issues.join('; '));
        return { ok: true, object: { ...common, kind, spec: ap } };
      }
      case 'Gateway':
        return { ok: true, object: { ...common, kind, spec: decodeGateway(spec, doc) } };
      default:
        return { ok: true, object: { ...common, kind, spec } as AnyConfigObject };
    }
  } catch (err) {
    if (err instanceof SchemaViolation) return problem('schema', err.message);
    throw err;
  }
}
