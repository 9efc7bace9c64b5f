/**
 * The local state store fed by xDS: workloads by uid and by IP, services by key, VIP and hostname, policies
 * by name. Inbound and outbound read it synchronously on every connection, so every lookup is a map hit.
 * A 'change' event tells the proxy to re-evaluate open connections and certificate needs.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { formatIp, parseIp } from '@ambient-ts/xds';
import { type AuthorizationInfo, policyKey, type ServiceInfo, serviceKey, type WorkloadInfo } from './model.js';

export interface StateChange {
  workloads: boolean;
  services: boolean;
  policies: boolean;
}

export class ProxyState extends EventEmitter<{ change: [StateChange] }> {
  private readonly workloads = new Map<string, WorkloadInfo>();
  private readonly workloadByIp = new Map<string, string>();
  private readonly services = new Map<string, ServiceInfo>();
  private readonly serviceByVip = new Map<string, string>();
  private readonly serviceByHost = new Map<string, string>();
  private readonly endpoints = new Map<string, Set<string>>();
  private readonly policies = new Map<string, AuthorizationInfo>();
  private pending: StateChange | undefined;
  private batchDepth = 0;

  /** Group several updates into one 'change' event (an xDS response applies many resources at once). */
  batch<T>(fn: () => T): T {
    this.batchDepth++;
    try {
      return fn();
    } finally {
      this.batchDepth--;
      if (this.batchDepth === 0) this.flush();
    }
  }

  upsertWorkload(w: WorkloadInfo): void {
    this.removeWorkloadIndexes(w.uid);
    this.workloads.set(w.uid, w);
    for (const ip of w.addresses) this.workloadByIp.set(normalizeIp(ip), w.uid);
    for (const key of Object.keys(w.services)) {
      let set = this.endpoints.get(key);
      if (!set) {
        set = new Set();
        this.endpoints.set(key, set);
      }
      set.add(w.uid);
    }
    this.changed('workloads');
  }

  removeWorkload(uid: string): boolean {
    if (!this.workloads.has(uid)) return false;
    this.removeWorkloadIndexes(uid);
    this.workloads.delete(uid);
    this.changed('workloads');
    return true;
  }

  upsertService(s: ServiceInfo): void {
    const key = serviceKey(s);
    this.removeServiceIndexes(key);
    this.services.set(key, s);
    for (const a of s.addresses) this.serviceByVip.set(normalizeIp(a.address), key);
    this.serviceByHost.set(s.hostname.toLowerCase(), key);
    this.changed('services');
  }

  removeService(key: string): boolean {
    if (!this.services.has(key)) return false;
    this.removeServiceIndexes(key);
    this.services.delete(key);
    this.changed('services');
    return true;
  }

  upsertPolicy(p: AuthorizationInfo): void {
    this.policies.set(policyKey(p), p);
    this.changed('policies');
  }

  removePolicy(key: string): boolean {
    if (!this.policies.delete(key)) return false;
    this.changed('policies');
    return true;
  }

  workload(uid: string): WorkloadInfo | undefined {
    return this.workloads.get(uid);
  }

  workloadByAddress(ip: string): WorkloadInfo | undefined {
    const uid = this.workloadByIp.get(normalizeIp(ip));
    return uid === undefined ? undefined : this.workloads.get(uid);
  }

  service(key: string): ServiceInfo | undefined {
    return this.services.get(key);
  }

  serviceByAddress(ip: string): ServiceInfo | undefined {
    const key = this.serviceByVip.get(normalizeIp(ip));
    return key === undefined ? undefined : this.services.get(key);
  }

  /** Full hostname (`echo.default.svc.cluster.local`), case-insensitive. */
  serviceByHostname(hostname: string): ServiceInfo | undefined {
    const key = this.serviceByHost.get(hostname.toLowerCase().replace(/\.$/, ''));
    return key === undefined ? undefined : this.services.get(key);
  }

  /** Workloads selected by a service (healthy or not). */
  endpointsOf(key: string): WorkloadInfo[] {
    const out: WorkloadInfo[] = [];
    for (const uid of this.endpoints.get(key) ?? []) {
      const w = this.workloads.get(uid);
      if (w) out.push(w);
    }
    return out;
  }

  policy(key: string): AuthorizationInfo | undefined {
    return this.policies.get(key);
  }

  /** Policies that apply to a workload, as Istio's ztunnel scopes them. */
  policiesFor(w: WorkloadInfo): AuthorizationInfo[] {
    const out: AuthorizationInfo[] = [];
    for (const p of this.policies.values()) {
      if (p.scope === 'GLOBAL' || (p.scope === 'NAMESPACE' && p.namespace === w.namespace)) out.push(p);
    }
    for (const key of w.authorizationPolicies) {
      const p = this.policies.get(key);
      if (p && p.scope === 'WORKLOAD_SELECTOR') out.push(p);
    }
    return out;
  }

  localWorkloads(node: string): WorkloadInfo[] {
    return [...this.workloads.values()].filter((w) => w.node === node);
  }

  allWorkloads(): WorkloadInfo[] {
    return [...this.workloads.values()];
  }

  allServices(): ServiceInfo[] {
    return [...this.services.values()];
  }

  allPolicies(): AuthorizationInfo[] {
    return [...this.policies.values()];
  }

  private removeWorkloadIndexes(uid: string): void {
    const old = this.workloads.get(uid);
    if (!old) return;
    for (const ip of old.addresses) {
      const n = normalizeIp(ip);
      if (this.workloadByIp.get(n) === uid) this.workloadByIp.delete(n);
    }
    for (const key of Object.keys(old.services)) {
      const set = this.endpoints.get(key);
      set?.delete(uid);
      if (set?.size === 0) this.endpoints.delete(key);
    }
  }

  private removeServiceIndexes(key: string): void {
    const old = this.services.get(key);
    if (!old) return;
    for (const a of old.addresses) {
      const n = normalizeIp(a.address);
      if (this.serviceByVip.get(n) === key) this.serviceByVip.delete(n);
    }
    const host = old.hostname.toLowerCase();
    if (this.serviceByHost.get(host) === key) this.serviceByHost.delete(host);
  }

  private changed(kind: keyof StateChange): void {
    this.pending ??= { workloads: false, services: false, policies: false };
    this.pending[kind] = true;
    if (this.batchDepth === 0) this.flush();
  }

  private flush(): void {
    const p = this.pending;
    this.pending = undefined;
    if (p) this.emit('change', p);
  }
}

/**
 * One spelling per address, so lookups match however an address was written: IPv4-mapped IPv6
 * (`::ffff:127.0.1.10`, as dual-stack sockets report it) is the plain IPv4 address, and IPv6 is in RFC 5952
 * form (`FD00:96:0::1` and `fd00:96::1` are the same VIP; the xDS addresses are formatted the same way).
 */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  if (isIP(lower) !== 6) return lower;
  const bytes = parseIp(lower);
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return formatIp(bytes.subarray(12));
  }
  return formatIp(bytes);
}
