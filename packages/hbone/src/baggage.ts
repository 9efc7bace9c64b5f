import { HboneError } from './errors.js';

/**
 * The workload facts HBONE carries in the W3C `baggage` header, as ztunnel writes them:
 * `k8s.cluster.name=…,k8s.namespace.name=…,k8s.<kind>.name=…,service.name=…,service.version=…`.
 */
export interface HboneBaggage {
  clusterName?: string;
  namespaceName?: string;
  /** Workload kind in lowercase, as in the key `k8s.<kind>.name`: deployment, daemonset, statefulset, job, cronjob, pod, … */
  workloadKind?: string;
  workloadName?: string;
  /** Canonical service name. */
  serviceName?: string;
  /** Canonical revision. */
  serviceVersion?: string;
}

// W3C Baggage §3.3.1 limits.
const MAX_BAGGAGE_BYTES = 8192;
const MAX_MEMBERS = 180;
// RFC 7230 token characters.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// baggage-octet: printable ASCII except space, '"', ',', ';', '\' (others must be percent-encoded).
const VALUE_RE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
const KIND_RE = /^[a-z][a-z0-9]*$/;
// `k8s.<x>.name` keys that are not a workload kind.
const NOT_WORKLOAD_KINDS = new Set(['cluster', 'namespace', 'node', 'container']);

/**
 * Builds the `baggage` value. Keys are emitted in Istio's order; absent fields are left out.
 * Values are percent-encoded where W3C Baggage requires it; a workload name without a kind is a deployment's.
 * Throws ERR_HBONE_BAD_HEADER for a workload kind that is not a lowercase word, or a value that is not a string.
 */
export function buildBaggage(b: HboneBaggage): string {
  const parts: string[] = [];
  const add = (key: string, value: string | undefined): void => {
    if (value === undefined) return;
    if (typeof value !== 'string') throw bad(`baggage ${key} must be a string`);
    parts.push(`${key}=${encodeValue(value)}`);
  };
  add('k8s.cluster.name', b.clusterName);
  add('k8s.namespace.name', b.namespaceName);
  if (b.workloadName !== undefined) {
    const kind = b.workloadKind ?? 'deployment';
    if (!KIND_RE.test(kind) || NOT_WORKLOAD_KINDS.has(kind)) {
      throw bad(
        `baggage workload kind ${JSON.stringify(kind)} is invalid: use e.g. "deployment", "statefulset", "pod"`,
      );
    }
    add(`k8s.${kind}.name`, b.workloadName);
  }
  add('service.name', b.serviceName);
  add('service.version', b.serviceVersion);
  const out = parts.join(',');
  if (out.length > MAX_BAGGAGE_BYTES)
    throw bad(`baggage is ${out.length} bytes; W3C Baggage allows ${MAX_BAGGAGE_BYTES}`);
  return out;
}

/**
 * Parses a W3C `baggage` value and picks out the HBONE workload keys (unknown members are ignored, as
 * W3C requires). Throws ERR_HBONE_BAD_HEADER on malformed syntax (missing `=`, bad key, bad escape,
 * too long).
 */
export function parseBaggage(value: string): HboneBaggage {
  if (typeof value !== 'string') throw bad('baggage must be a string');
  if (value.length > MAX_BAGGAGE_BYTES)
    throw bad(`baggage is ${value.length} bytes; W3C Baggage allows ${MAX_BAGGAGE_BYTES}`);
  const out: HboneBaggage = {};
  const members = value.split(',');
  if (members.length > MAX_MEMBERS)
    throw bad(`baggage has ${members.length} members; at most ${MAX_MEMBERS} are allowed`);
  for (const raw of members) {
    const member = raw.trim();
    // Empty list members (e.g. a trailing comma) are tolerated, as most W3C parsers do.
    if (member.length === 0) continue;
    // Properties after ';' carry metadata we do not use.
    const kv = member.split(';', 1)[0]!;
    const eq = kv.indexOf('=');
    if (eq < 0) throw bad(`baggage member ${JSON.stringify(member)} has no "="`);
    const key = kv.slice(0, eq).trim();
    const rawValue = kv.slice(eq + 1).trim();
    if (!TOKEN_RE.test(key)) throw bad(`baggage key ${JSON.stringify(key)} is not a valid token`);
    if (!VALUE_RE.test(rawValue))
      throw bad(`baggage value for ${key} contains characters that must be percent-encoded`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(rawValue);
    } catch (cause) {
      throw new HboneError('ERR_HBONE_BAD_HEADER', `baggage value for ${key} has a bad percent-escape`, { cause });
    }
    assign(out, key, decoded);
  }
  return out;
}

function assign(out: HboneBaggage, key: string, value: string): void {
  switch (key) {
    case 'k8s.cluster.name':
      out.clusterName = value;
      return;
    case 'k8s.namespace.name':
      out.namespaceName = value;
      return;
    case 'service.name':
      out.serviceName = value;
      return;
    case 'service.version':
      out.serviceVersion = value;
      return;
  }
  if (key.startsWith('k8s.') && key.endsWith('.name')) {
    const kind = key.slice(4, -5);
    if (KIND_RE.test(kind) && !NOT_WORKLOAD_KINDS.has(kind)) {
      out.workloadKind = kind;
      out.workloadName = value;
    }
  }
}

function encodeValue(v: string): string {
  // encodeURIComponent leaves only unreserved characters and !'()* unescaped: all are baggage-octets.
  return encodeURIComponent(v);
}

function bad(message: string): HboneError {
  return new HboneError('ERR_HBONE_BAD_HEADER', message);
}
