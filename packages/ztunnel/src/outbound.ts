/**
 * Outbound: a connection from a local workload (through SOCKS5 or a per-service local listener) is
 * attributed to its source workload by source address, resolved to a destination, and carried over HBONE
 * (presenting the source workload's certificate, expecting the destination's identity), over plain TCP to
 * a workload outside ambient, or passed through to a destination outside the mesh.
 */
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Duplex } from 'node:stream';
import type { HboneClient } from '@ambient-ts/hbone';
import { isLoopback } from './config.js';
import type { ProxyContext } from './context.js';
import { ZtunnelError } from './errors.js';
import { workloadIdentity } from './model.js';
import { hostForAuthority, type Resolver, type Route, type Target } from './resolver.js';
import { SocksReply, type SocksReplyCode } from './socks5.js';
import { splice } from './splice.js';
import { normalizeIp } from './state.js';
import { type ConnectionInfo, logAccess, tcpLabels } from './telemetry.js';
import { connectTcp } from './upstream.js';

export interface OutboundDeps {
  resolver: Resolver;
  hbone: HboneClient;
}

/** How the entry point answers: SOCKS5 replies, a local listener just closes on failure. */
export interface OutboundAnswer {
  accept(): Duplex;
  reject(code: SocksReplyCode): void;
}

export async function handleOutbound(
  ctx: ProxyContext,
  deps: OutboundDeps,
  socket: Socket,
  target: Target,
  answer: OutboundAnswer,
): Promise<void> {
  const started = performance.now();
  const srcIp = normalizeIp(socket.remoteAddress ?? '');
  const info: ConnectionInfo = {
    direction: 'outbound',
    srcAddr: `${hostForAuthority(srcIp)}:${socket.remotePort}`,
    dstAddr: `${hostForAuthority(target.host)}:${target.port}`,
    mtls: false,
  };
  const fail = (err: unknown) => {
    const e =
      err instanceof ZtunnelError
        ? err
        : new ZtunnelError('ERR_ZTUNNEL_UPSTREAM', (err as Error).message, { cause: err });
    ctx.metrics.connectionFailed(tcpLabels(info, 'source', e.code === 'ERR_ZTUNNEL_UPSTREAM' ? 'UF' : 'NR'));
    logAccess(ctx, info, {
      bytesSent: 0,
      bytesRecv: 0,
      durationMs: performance.now() - started,
      error: e.message,
    });
    answer.reject(replyFor(e));
  };
  const source = ctx.state.workloadByAddress(srcIp);
  if (!source || source.node !== ctx.config.node) {
    return fail(
      new ZtunnelError(
        'ERR_ZTUNNEL_UNKNOWN_SOURCE',
        `source ${srcIp} is not a workload on node ${ctx.config.node}: bind the client to its workload address (e.g. curl --interface <workload ip>)`,
      ),
    );
  }
  info.srcWorkload = source;
  const srcIdentity = workloadIdentity(source, ctx.config.trustDomain);
  info.srcIdentity = srcIdentity;
  let route: Route;
  try {
    route = deps.resolver.resolve(source, target);
  } catch (err) {
    return fail(err);
  }
  if (route.kind !== 'passthrough') {
    if (route.destWorkload) info.dstWorkload = route.destWorkload;
    if (route.destService) info.dstService = route.destService;
  }
  let upstream: Duplex;
  try {
    if (route.kind === 'hbone') {
      info.mtls = true;
      info.dstAddr = `${hostForAuthority(route.authority.host)}:${route.authority.port}`;
      info.dstHboneAddr = `${hostForAuthority(route.dial.host)}:${route.dial.port}`;
      info.dstIdentity = route.expectedIdentities[0];
      upstream = await deps.hbone.connect(
        { address: route.authority.host, port: route.authority.port },
        {
          expectedIdentities: route.expectedIdentities,
          server: { address: route.dial.host, port: route.dial.port },
          sourceIdentity: srcIdentity,
          // A client that reached us from an address of this host (loopback, one-machine mode) is dialled from
          // too, so the peer sees the real source IP, as with Istio's in-pod ztunnel. A captured pod's address
          // lives in the pod's namespace, not ours: the kernel picks the node's address then.
          ...(isHostAddress(srcIp) ? { sourceAddress: srcIp } : {}),
          baggage: {
            ...(source.clusterId ? { clusterName: source.clusterId } : {}),
            namespaceName: source.namespace,
            workloadKind: source.workloadType.toLowerCase(),
            ...(source.workloadName ? { workloadName: source.workloadName } : {}),
            ...(source.canonicalName ? { serviceName: source.canonicalName } : {}),
            ...(source.canonicalRevision ? { serviceVersion: source.canonicalRevision } : {}),
          },
          forwarded: {
            for: { address: srcIp, port: socket.remotePort ?? 0 },
            ...(route.destService ? { host: route.destService.hostname } : {}),
          },
        },
      );
    } else {
      info.dstAddr = `${hostForAuthority(route.dial.host)}:${route.dial.port}`;
      upstream = await connectTcp(route.dial.host, route.dial.port, ctx.config.connectTimeoutMs);
    }
  } catch (err) {
    const e = err as Error & { code?: string; status?: number };
    return fail(
      err instanceof ZtunnelError
        ? err
        : new ZtunnelError(
            e.status === 401 ? 'ERR_ZTUNNEL_DENIED' : 'ERR_ZTUNNEL_UPSTREAM',
            `${e.message}${e.code ? ` (${e.code})` : ''}`,
            { cause: err },
          ),
    );
  }
  if (socket.destroyed) {
    upstream.destroy();
    return;
  }
  const down = answer.accept();
  const tally = ctx.metrics.connectionOpened(tcpLabels(info, 'source'), 'outbound');
  let closedBy: string | undefined;
  const untrack = ctx.tracker.add({
    info,
    destroy: (reason) => {
      closedBy ??= reason;
      down.destroy();
      upstream.destroy();
    },
  });
  const err = await splice(down, upstream, tally);
  untrack();
  ctx.metrics.connectionClosed(tally, 'outbound');
  const error = closedBy ?? err?.message;
  logAccess(ctx, info, {
    bytesSent: tally.sent,
    bytesRecv: tally.received,
    durationMs: performance.now() - started,
    ...(error ? { error } : {}),
  });
}

function replyFor(e: ZtunnelError): SocksReplyCode {
  switch (e.code) {
    case 'ERR_ZTUNNEL_UNKNOWN_SOURCE':
    case 'ERR_ZTUNNEL_LOOP':
    case 'ERR_ZTUNNEL_DENIED':
      return SocksReply.NOT_ALLOWED;
    case 'ERR_ZTUNNEL_NO_ROUTE':
      return SocksReply.HOST_UNREACHABLE;
    case 'ERR_ZTUNNEL_UPSTREAM':
      return SocksReply.CONNECTION_REFUSED;
    default:
      return SocksReply.GENERAL_FAILURE;
  }
}

/** Whether this host can send from `ip`: all of 127.0.0.0/8 and ::1 are, and any interface address. */
function isHostAddress(ip: string): boolean {
  if (isLoopback(ip)) return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((a) => normalizeIp(a.address) === ip));
}
