import { IdentityError } from './errors.js';
import { sameTrustDomain, validateTrustDomain } from './trust-domain.js';

const SCHEME = 'spiffe://';
// Kubernetes namespace and service-account names are DNS labels / subdomains; SPIFFE path segments may hold
// letters, digits, '.', '-' and '_'. We accept the SPIFFE set (a superset), case-sensitive as SPIFFE is.
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

/**
 * A workload identity in Istio's SPIFFE form: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`.
 * Immutable; compare with {@link SpiffeId.equals} or by {@link SpiffeId.toString}.
 */
export class SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly #uri: string;

  constructor(trustDomain: string, namespace: string, serviceAccount: string) {
    validateTrustDomain(trustDomain);
    checkSegment(namespace, 'namespace');
    checkSegment(serviceAccount, 'service account');
    this.trustDomain = trustDomain;
    this.namespace = namespace;
    this.serviceAccount = serviceAccount;
    this.#uri = `${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
    Object.freeze(this);
  }

  /** Parses `spiffe://<td>/ns/<ns>/sa/<sa>`; throws ERR_IDENTITY_INVALID naming what is wrong. */
  static parse(uri: string): SpiffeId {
    if (typeof uri !== 'string') {
      throw new IdentityError('ERR_IDENTITY_INVALID', `SPIFFE ID must be a string, got ${typeof uri}`);
    }
    if (!uri.startsWith(SCHEME)) {
      throw invalid(uri, `it must start with "${SCHEME}"`);
    }
    return fromPath(uri, uri.slice(SCHEME.length));
  }

  /** Parses Istio's principal form `<td>/ns/<ns>/sa/<sa>` (as written in AuthorizationPolicy). */
  static fromPrincipal(principal: string): SpiffeId {
    if (typeof principal !== 'string') {
      throw new IdentityError('ERR_IDENTITY_INVALID', `principal must be a string, got ${typeof principal}`);
    }
    if (principal.startsWith(SCHEME)) return SpiffeId.parse(principal);
    return fromPath(principal, principal);
  }

  /** Returns the parsed ID, or undefined where {@link SpiffeId.parse} would throw. */
  static tryParse(uri: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(uri);
    } catch {
      return undefined;
    }
  }

  /** The principal form used by AuthorizationPolicy: `<td>/ns/<ns>/sa/<sa>`. */
  get principal(): string {
    return this.#uri.slice(SCHEME.length);
  }

  /** `<namespace>/<serviceAccount>`, as in AuthorizationPolicy `serviceAccounts`. */
  get namespacedServiceAccount(): string {
    return `${this.namespace}/${this.serviceAccount}`;
  }

  equals(other: SpiffeId | string | undefined | null): boolean {
    if (other == null) return false;
    return this.#uri === (typeof other === 'string' ? other : other.toString());
  }

  /** True when this identity is in trust domain `td`. */
  inTrustDomain(td: string): boolean {
    return sameTrustDomain(this.trustDomain, td);
  }

  toString(): string {
    return this.#uri;
  }

  toJSON(): string {
    return this.#uri;
  }
}

function fromPath(input: string, path: string): SpiffeId {
  const slash = path.indexOf('/');
  if (slash <= 0) throw invalid(input, 'it has no trust domain followed by /ns/<namespace>/sa/<service-account>');
  const td = path.slice(0, slash);
  const parts = path.slice(slash + 1).split('/');
  if (parts.length !== 4 || parts[0] !== 'ns' || parts[2] !== 'sa') {
    throw invalid(input, 'the path must be exactly /ns/<namespace>/sa/<service-account>');
  }
  try {
    return new SpiffeId(td, parts[1] as string, parts[3] as string);
  } catch (err) {
    throw invalid(input, (err as Error).message, err);
  }
}

function checkSegment(value: string, what: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new IdentityError('ERR_IDENTITY_INVALID', `${what} is empty`);
  }
  if (value === '.' || value === '..' || !SEGMENT_RE.test(value)) {
    throw new IdentityError(
      'ERR_IDENTITY_INVALID',
      `${what} ${JSON.stringify(value)} is invalid: use letters, digits, ".", "-" and "_"`,
    );
  }
}

function invalid(input: string, why: string, cause?: unknown): IdentityError {
  const shown = input.length > 200 ? `${input.slice(0, 200)}…` : input;
  return new IdentityError('ERR_IDENTITY_INVALID', `invalid SPIFFE ID ${JSON.stringify(shown)}: ${why}`, { cause });
}

/** Convenience: `spiffeId('cluster.local', 'default', 'sleep')`. */
export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  return new SpiffeId(trustDomain, namespace, serviceAccount);
}
