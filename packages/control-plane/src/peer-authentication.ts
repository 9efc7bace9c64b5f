import type { ConfigObject, MtlsMode } from './config-object.js';
import type { AuthorizationResource } from './resources.js';

/**
 * PeerAuthentication in ambient mode, as istiod expresses it to ztunnel: STRICT becomes a DENY policy that
 * matches any connection without a peer identity (`notPrincipals: [presence]`), i.e. plaintext. Names use
 * '_' so they can never collide with a Kubernetes object name.
 */
export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
export const CONVERTED_PEER_AUTHENTICATION_PREFIX = 'converted_peer_authentication_';

type PeerAuthentication = ConfigObject<'PeerAuthentication'>;

const noPeerIdentity = () => ({ notPrincipals: [{ presence: {} as Record<string, never> }] });

/** The mesh-wide DENY-plaintext policy, published whenever any PeerAuthentication exists. */
export function staticStrictPolicy(rootNamespace: string): AuthorizationResource {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules: [{ clauses: [{ matches: [noPeerIdentity()] }] }],
    dryRun: false,
  };
}

/** Oldest first (creationTimestamp; objects without one count as oldest), then by namespace/name. */
export function olderFirst(a: PeerAuthentication, b: PeerAuthentication): number {
  const ta = a.metadata.creationTimestamp ? Date.parse(a.metadata.creationTimestamp) : 0;
  const tb = b.metadata.creationTimestamp ? Date.parse(b.metadata.creationTimestamp) : 0;
  if (ta !== tb) return ta - tb;
  const ka = `${a.metadata.namespace}/${a.metadata.name}`;
  const kb = `${b.metadata.namespace}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function oldest(list: Iterable<PeerAuthentication>): PeerAuthentication | undefined {
  let best: PeerAuthentication | undefined;
  for (const p of list) if (!best || olderFirst(p, best) < 0) best = p;
  return best;
}

const isSelectorPolicy = (p: PeerAuthentication) =>
  p.spec.selector !== undefined && Object.keys(p.spec.selector).length > 0;

/**
 * The policy keys (`<ns>/<name>`) a workload must reference, given the PeerAuthentications that apply to it
 * (mesh-wide ones from the root namespace, its namespace's, and selector ones matching its labels):
 * the static STRICT policy when the effective mode is STRICT, and/or the converted workload policy when
 * port-level settings make the workload's mode differ per port.
 */
export function effectivePeerAuthenticationKeys(
  rootNamespace: string,
  applicable: readonly PeerAuthentication[],
): string[] {
  const mesh = oldest(applicable.filter((p) => !isSelectorPolicy(p) && p.metadata.namespace === rootNamespace));
  const ns = oldest(applicable.filter((p) => !isSelectorPolicy(p) && p.metadata.namespace !== rootNamespace));
  const workload = oldest(applicable.filter((p) => isSelectorPolicy(p) && p.metadata.namespace !== rootNamespace));

  let strict = mesh ? mesh.spec.mode === 'STRICT' : false;
  if (ns && ns.spec.mode !== 'UNSET') strict = ns.spec.mode === 'STRICT';
  let portPolicyKey = '';
  if (workload) {
    const mode = workload.spec.mode;
    if (mode === 'STRICT') strict = true;
    if (mode === 'PERMISSIVE' || mode === 'DISABLE') strict = false;
    const ports = [...workload.spec.portLevelMtls.values()];
    const key = `${workload.metadata.namespace}/${CONVERTED_PEER_AUTHENTICATION_PREFIX}${workload.metadata.name}`;
    if (ports.length > 0) {
      if (mode === 'STRICT') {
        if (ports.some((m) => m === 'PERMISSIVE' || m === 'DISABLE')) {
          portPolicyKey = key;
          strict = false; // the converted policy carries the STRICT default itself
        }
      } else if (mode === 'PERMISSIVE' || mode === 'DISABLE') {
        if (ports.some((m) => m === 'STRICT')) portPolicyKey = key;
      } else if (strict) {
        if (ports.some((m) => m === 'PERMISSIVE')) {
          portPolicyKey = key;
          strict = false;
        }
      } else if (ports.some((m) => m === 'STRICT')) {
        portPolicyKey = key;
      }
    }
  }
  const keys = new Set<string>();
  if (strict) keys.add(`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`);
  if (portPolicyKey) keys.add(portPolicyKey);
  return [...keys].sort();
}

/**
 * A selector PeerAuthentication with port-level mTLS as its own DENY policy (undefined when the static
 * STRICT policy already says everything). `nsPolicy`/`rootPolicy` are the effective namespace and mesh ones.
 */
export function convertPeerAuthentication(
  rootNamespace: string,
  pa: PeerAuthentication,
  nsPolicy: PeerAuthentication | undefined,
  rootPolicy: PeerAuthentication | undefined,
): AuthorizationResource | undefined {
  if (pa.metadata.namespace === rootNamespace || !isSelectorPolicy(pa) || pa.spec.portLevelMtls.size === 0)
    return undefined;
  const mode = pa.spec.mode;
  const is = (p: PeerAuthentication | undefined, m: MtlsMode) => p !== undefined && p.spec.mode === m;
  const unset = (p: PeerAuthentication | undefined) => p === undefined || p.spec.mode === 'UNSET';

  const clauses: { matches: AuthorizationResource['rules'][number]['clauses'][number]['matches'] }[] = [];
  const rules: AuthorizationResource['rules'] = [];
  if (mode === 'STRICT') clauses.push({ matches: [noPeerIdentity()] });

  let foundNonStrictPort = false;
  for (const [port, portMode] of [...pa.spec.portLevelMtls].sort((a, b) => a[0] - b[0])) {
    if (portMode === 'STRICT') {
      // Already enforced by the workload's own STRICT mode, or (mode unset) by the namespace or mesh policy.
      const inherited =
        mode === 'STRICT' ||
        (mode === 'UNSET' && is(nsPolicy, 'STRICT')) ||
        (unset(nsPolicy) && is(rootPolicy, 'STRICT'));
      if (inherited) continue;
      rules.push({ clauses: [{ matches: [{ ...noPeerIdentity(), destinationPorts: [port] }] }] });
    } else if (portMode === 'PERMISSIVE' || portMode === 'DISABLE') {
      if (mode === 'PERMISSIVE' || mode === 'DISABLE') continue;
      if (
        mode === 'UNSET' &&
        ((nsPolicy !== undefined && !is(nsPolicy, 'STRICT')) ||
          (nsPolicy === undefined && rootPolicy !== undefined && !is(rootPolicy, 'STRICT')) ||
          (nsPolicy === undefined && rootPolicy === undefined))
      ) {
        continue;
      }
      foundNonStrictPort = true;
      // Exempts the port from the STRICT default: deny only connections NOT to this port.
      clauses.push({ matches: [{ notDestinationPorts: [port] }] });
    }
  }
  if (mode === 'STRICT' && !foundNonStrictPort) return undefined;
  if (clauses.length === 0 && rules.length === 0) return undefined;
  const mergeStrict =
    (is(rootPolicy, 'STRICT') && (nsPolicy === undefined || unset(nsPolicy) || is(nsPolicy, 'STRICT'))) ||
    is(nsPolicy, 'STRICT');
  if (mergeStrict && foundNonStrictPort) clauses.push({ matches: [noPeerIdentity()] });
  if (clauses.length > 0) rules.push({ clauses });
  return {
    name: `${CONVERTED_PEER_AUTHENTICATION_PREFIX}${pa.metadata.name}`,
    namespace: pa.metadata.namespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    rules,
    dryRun: false,
  };
}
