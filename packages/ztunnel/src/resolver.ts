/**
 * Destination resolution for outbound connections, as Istio's ztunnel does it: a service VIP or hostname
 * becomes one endpoint chosen at random among the healthy ones (honouring the service's load-balancing
 * fields), a workload IP is used directly, a waypoint takes the connection when the service or workload has
 * one (authority = the original address and port), and anything outside the mesh is passed through.
 */
import { isIP } from 'node:net';
import { ZtunnelError } from './errors.js';
import {
  type GatewayAddress,
  type LoadBalancingScope,
  type ServiceInfo,
  serviceKey,
  type WorkloadInfo,
  workloadIdentity,
} from './model.js';
import { normalizeIp, type ProxyState } from './state.js';

export interface Target {
  host: string;
  port: number;
}

export type Route =
  | {
      kind: 'hbone';
      /** Where the HBONE connection goes: the destination workload (in-pod ztunnel) or its waypoint. */
      dial: Target;
      /** CONNECT :authority: the real destination (through a waypoint: the original VIP or workload address). */
      authority: Target;
      expectedIdentities: string[];
      viaWaypoint: boolean;
      destWorkload?: WorkloadInfo;
      destService?: ServiceInfo;
    }
  | { kind: 'tcp'; dial: Target; destWorkload: WorkloadInfo; destService?: ServiceInfo }
  | { kind: 'passthrough'; dial: Target };

export interface ResolverOptions {
  state: ProxyState;
  trustDomain: string;
  hbonePort: number;
  /** True when ip:port is one of this ztunnel's own listeners (loop prevention). */
  isOwnListener: (ip: string, port: number) => boolean;
  /** Random number in [0, 1); injectable so tests can pin the choice. */
  random?: () => number;
}

export class Resolver {
  private readonly random: () => number;

  constructor(private readonly opts: ResolverOptions) {
    this.random = opts.random ?? Math.random;
  }

  resolve(source: WorkloadInfo, target: Target): Route {
    const { state } = this.opts;
    if (isIP(target.host) !== 0) {
      if (this.opts.isOwnListener(target.host, target.port)) {
        throw new ZtunnelError(
          'ERR_ZTUNNEL_LOOP',
          `destination ${fmt(target)} is this ztunnel's own listener: refused to prevent a loop`,
        );
      }
      const svc = state.serviceByAddress(target.host);
      if (svc) return this.viaService(source, svc, target.host, target.port);
      const w = state.workloadByAddress(target.host);
      if (w) return this.viaWorkload(source, w, target.port, undefined, target, target.host);
      return { kind: 'passthrough', dial: target };
    }
    const svc = state.serviceByHostname(target.host);
    if (svc) return this.viaService(source, svc, svc.addresses[0]?.address, target.port);
    if (/\.svc(\.|$)/i.test(target.host)) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_NO_ROUTE',
        `no service named ${target.host} is known to this ztunnel (check the hostname: <name>.<namespace>.svc.<domain>)`,
      );
    }
    return { kind: 'passthrough', dial: target };
  }

  private viaService(source: WorkloadInfo, svc: ServiceInfo, vip: string | undefined, port: number): Route {
    const key = serviceKey(svc);
    const svcPort = svc.ports.find((p) => p.servicePort === port);
    if (!svcPort) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_NO_ROUTE',
        `service ${svc.hostname} has no port ${port} (ports: ${svc.ports.map((p) => p.servicePort).join(', ') || 'none'})`,
      );
    }
    if (svc.waypoint && !this.isWaypointItself(source, svc.waypoint)) {
      const authority = vip ? { host: vip, port } : undefined;
      if (authority) return { ...this.waypointRoute(svc.waypoint, authority), destService: svc };
    }
    const endpoint = this.pickEndpoint(source, svc);
    const mapping = endpoint.services[key]?.find((p) => p.servicePort === port);
    const targetPort = mapping?.targetPort || svcPort.targetPort || port;
    return this.viaWorkload(source, endpoint, targetPort, svc, undefined, vip, true);
  }

  /** `asked`: the address the client used (a workload IP or a VIP); it decides which of a dual-stack workload's addresses to use. */
  private viaWorkload(
    source: WorkloadInfo,
    w: WorkloadInfo,
    port: number,
    svc: ServiceInfo | undefined,
    originalAuthority: Target | undefined,
    asked: string | undefined,
    skipWaypoint = false,
  ): Route {
    const ip = workloadAddressFor(w, asked);
    if (ip === undefined)
      throw new ZtunnelError('ERR_ZTUNNEL_NO_ROUTE', `workload ${w.namespace}/${w.name} has no address`);
    if (!skipWaypoint && w.waypoint && !this.isWaypointItself(source, w.waypoint)) {
      return { ...this.waypointRoute(w.waypoint, originalAuthority ?? { host: ip, port }), destWorkload: w };
    }
    const dest = { host: ip, port };
    if (w.tunnelProtocol !== 'HBONE')
      return { kind: 'tcp', dial: dest, destWorkload: w, ...(svc ? { destService: svc } : {}) };
    return {
      kind: 'hbone',
      dial: { host: ip, port: this.opts.hbonePort },
      authority: { host: ip, port },
      expectedIdentities: [workloadIdentity(w, this.opts.trustDomain)],
      viaWaypoint: false,
      destWorkload: w,
      ...(svc ? { destService: svc } : {}),
    };
  }

  private waypointRoute(gw: GatewayAddress, authority: Target): Extract<Route, { kind: 'hbone' }> {
    const port = gw.hbonePort || this.opts.hbonePort;
    if (gw.address) {
      const w = this.opts.state.workloadByAddress(gw.address.address);
      const wsvc = this.opts.state.serviceByAddress(gw.address.address);
      let ids: string[] = [];
      let dialIp = gw.address.address;
      if (wsvc) {
        const ep = this.pickEndpoint(undefined, wsvc);
        dialIp = workloadAddressFor(ep, authority.host) ?? dialIp;
        ids = [workloadIdentity(ep, this.opts.trustDomain), ...wsvc.subjectAltNames];
      } else if (w) ids = [workloadIdentity(w, this.opts.trustDomain)];
      if (ids.length === 0) {
        throw new ZtunnelError(
          'ERR_ZTUNNEL_NO_ROUTE',
          `waypoint ${gw.address.address} is not a known workload or service: its identity cannot be verified`,
        );
      }
      return { kind: 'hbone', dial: { host: dialIp, port }, authority, expectedIdentities: ids, viaWaypoint: true };
    }
    const ref = gw.hostname as { namespace: string; hostname: string };
    const wsvc = this.opts.state.service(`${ref.namespace}/${ref.hostname}`);
    if (!wsvc)
      throw new ZtunnelError(
        'ERR_ZTUNNEL_NO_ROUTE',
        `waypoint service ${ref.namespace}/${ref.hostname} is not known to this ztunnel`,
      );
    const ep = this.pickEndpoint(undefined, wsvc);
    return {
      kind: 'hbone',
      dial: { host: workloadAddressFor(ep, authority.host) as string, port },
      authority,
      expectedIdentities: [workloadIdentity(ep, this.opts.trustDomain), ...wsvc.subjectAltNames],
      viaWaypoint: true,
    };
  }

  /** A waypoint sending to the workloads it fronts must not be sent back to itself. */
  private isWaypointItself(source: WorkloadInfo, gw: GatewayAddress): boolean {
    if (gw.address) return source.addresses.includes(gw.address.address);
    if (gw.hostname) return `${gw.hostname.namespace}/${gw.hostname.hostname}` in source.services;
    return false;
  }

  /** Random among healthy endpoints, narrowed by routing preference (STRICT) or ranked by it (FAILOVER). */
  pickEndpoint(source: WorkloadInfo | undefined, svc: ServiceInfo): WorkloadInfo {
    const all = this.opts.state.endpointsOf(serviceKey(svc)).filter((w) => w.addresses.length > 0);
    const lb = svc.loadBalancing;
    let candidates = lb?.healthPolicy === 'ALLOW_ALL' ? all : all.filter((w) => w.status === 'HEALTHY');
    const scopes = lb?.routingPreference ?? [];
    if (source && scopes.length > 0 && lb?.mode !== 'UNSPECIFIED') {
      const ranked = candidates.map((w) => ({ w, rank: matchRank(source, w, scopes) }));
      if (lb?.mode === 'STRICT') candidates = ranked.filter((r) => r.rank === scopes.length).map((r) => r.w);
      else {
        const best = Math.max(-1, ...ranked.map((r) => r.rank));
        candidates = ranked.filter((r) => r.rank === best).map((r) => r.w);
      }
    }
    if (candidates.length === 0) {
      throw new ZtunnelError(
        'ERR_ZTUNNEL_NO_ROUTE',
        `service ${svc.hostname} has no ${lb?.healthPolicy === 'ALLOW_ALL' ? '' : 'healthy '}endpoints${scopes.length && lb?.mode === 'STRICT' ? ' matching its routing preference' : ''}`,
      );
    }
    return candidates[Math.floor(this.random() * candidates.length)] as WorkloadInfo;
  }
}

/** How many of the preferred scopes, in order, the endpoint shares with the source. */
function matchRank(src: WorkloadInfo, dst: WorkloadInfo, scopes: LoadBalancingScope[]): number {
  let rank = 0;
  for (const scope of scopes) {
    if (!sameScope(src, dst, scope)) break;
    rank++;
  }
  return rank;
}

function sameScope(a: WorkloadInfo, b: WorkloadInfo, scope: LoadBalancingScope): boolean {
  switch (scope) {
    case 'NETWORK':
      return a.network === b.network;
    case 'CLUSTER':
      return a.clusterId === b.clusterId;
    case 'NODE':
      return a.node === b.node;
    case 'REGION':
      return (a.locality?.region ?? '') === (b.locality?.region ?? '');
    case 'ZONE':
      return (a.locality?.zone ?? '') === (b.locality?.zone ?? '');
    case 'SUBZONE':
      return (a.locality?.subzone ?? '') === (b.locality?.subzone ?? '');
  }
}

/**
 * Which of a workload's addresses (one per family when dual-stack) to connect to, as Istio's ztunnel chooses:
 * the address the client asked for when it is one of them, else the first of the same family as the asked
 * address (an IPv6 VIP leads to the endpoint's IPv6 address), else the first.
 */
export function workloadAddressFor(w: WorkloadInfo, asked: string | undefined): string | undefined {
  if (asked === undefined || isIP(asked) === 0) return w.addresses[0];
  const want = normalizeIp(asked);
  const family = isIP(want);
  return (
    w.addresses.find((a) => normalizeIp(a) === want) ??
    w.addresses.find((a) => isIP(normalizeIp(a)) === family) ??
    w.addresses[0]
  );
}

export function hostForAuthority(ip: string): string {
  return isIP(ip) === 6 ? `[${ip}]` : ip;
}

function fmt(t: Target): string {
  return `${hostForAuthority(t.host)}:${t.port}`;
}
