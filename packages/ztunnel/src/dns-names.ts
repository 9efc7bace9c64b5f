/**
 * Which mesh service hostnames a DNS question may mean. Kubernetes clients use short forms that only make
 * sense within the asking pod's namespace: `echo` (same namespace), `echo.demo`, `echo.demo.svc`, and the
 * full `echo.demo.svc.cluster.local`. Names under the cluster domain are the mesh's to answer (the host's
 * resolver does not know them); a two- or three-label name is the mesh's only if a service matches, since
 * `example.com` has the same shape as `<svc>.<ns>`.
 */
export interface MeshNameQuery {
  /** Fully qualified service hostnames to try, most specific first (lowercase, no trailing dot). */
  candidates: string[];
  /** True when the name lies under the cluster domain: unknown names get NXDOMAIN instead of being forwarded. */
  authoritative: boolean;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function meshNameQuery(name: string, clientNamespace: string | undefined, clusterDomain: string): MeshNameQuery {
  const q = name.toLowerCase().replace(/\.$/, '');
  const domain = clusterDomain.toLowerCase().replace(/\.$/, '');
  const labels = q.split('.');
  if (q === '' || q.length > 253 || !labels.every((l) => LABEL.test(l)))
    return { candidates: [], authoritative: false };
  if (q === domain || q.endsWith(`.${domain}`)) {
    const rest = q === domain ? [] : q.slice(0, -domain.length - 1).split('.');
    // Only <svc>.<ns>.svc.<domain> names a service; anything else under the domain simply does not exist.
    const isService = rest.length === 3 && rest[2] === 'svc';
    return { candidates: isService ? [q] : [], authoritative: true };
  }
  const full = (svc: string, ns: string) => `${svc}.${ns}.svc.${domain}`;
  const [a, b, c] = labels;
  if (labels.length === 1 && a !== undefined) {
    return { candidates: clientNamespace ? [full(a, clientNamespace)] : [], authoritative: false };
  }
  if (labels.length === 2 && a !== undefined && b !== undefined)
    return { candidates: [full(a, b)], authoritative: false };
  if (labels.length === 3 && a !== undefined && b !== undefined && c === 'svc') {
    return { candidates: [full(a, b)], authoritative: false };
  }
  return { candidates: [], authoritative: false };
}

/** The first `nameserver` of a resolv.conf, as the host's resolver to forward to (port 53). */
export function nameserverFromResolvConf(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)$/.exec(line);
    // A scoped IPv6 address (fe80::1%eth0) keeps its zone: dgram understands it.
    if (m?.[1]) return m[1];
  }
  return undefined;
}
