/**
 * Inbound: HBONE tunnels from peers (mTLS, identity verified by @ambient-ts/hbone) and plaintext
 * connections on 15006. Each is checked against the destination workload's L4 policies, connected to
 * the workload with a deadline, answered with Istio's status codes, and tracked so a policy change can
 * close it when it becomes denied.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { HboneRejection, HboneRequest } from '@ambient-ts/hbone';
import type { TrackedConnection } from './connections.js';
import type { ProxyContext } from './context.js';
import type { ByteTally } from './metrics.js';
import { type WorkloadInfo, workloadIdentity } from './model.js';
import type { OriginalDstLookup } from './outbound-capture.js';
import { hostForAuthority } from './resolver.js';
import { splice } from './splice.js';
import { normalizeIp } from './state.js';
import { type ConnectionInfo, logAccess, tcpLabels } from './telemetry.js';
import { connectTcp } from './upstream.js';

export function inboundHboneHandler(ctx: ProxyContext, perWorkload: boolean) {
  return async (req: HboneRequest): Promise<Duplex | HboneRejection> => {
    const started = performance.now();
    const { host, port, family } = req.authority;
    const srcIdentity = req.peerIdentity.toString();
    const srcIp = normalizeIp(req.remoteAddress);
    const peerWorkload = ctx.state.workloadByAddress(srcIp);
    const info: ConnectionInfo = {
      direction: 'inbound',
      srcAddr: `${hostForAuthority(srcIp)}:${req.remotePort}`,
      srcIdentity,
      ...(peerWorkload && workloadIdentity(peerWorkload, ctx.config.trustDomain) === srcIdentity
        ? { srcWorkload: peerWorkload }
        : {}),
      dstAddr: `${hostForAuthority(host)}:${port}`,
      dstHboneAddr: `${hostForAuthority(normalizeIp(req.destinationAddress))}:${req.destinationPort}`,
      mtls: true,
    };
    const refuse = (status: 400 | 401 | 503, why: string): HboneRejection => {
      ctx.metrics.connectionFailed(tcpLabels(info, 'destination', status === 401 ? 'UAEX' : 'UF'));
      logAccess(ctx, info, { bytesSent: 0, bytesRecv: 0, durationMs: performance.now() - started, error: why });
      return req.reject(status, why);
    };
    if (family === 0) return refuse(400, `authority ${host}:${port} is not an IP address`);
    const dest = ctx.state.workloadByAddress(host);
    if (dest) {
      info.dstWorkload = dest;
      info.dstIdentity = workloadIdentity(dest, ctx.config.trustDomain);
    }
    if (perWorkload && normalizeIp(host) !== normalizeIp(req.localAddress)) {
      return refuse(400, `authority ${info.dstAddr} is not the workload this listener serves (${req.localAddress})`);
    }
    if (!dest) return refuse(503, `no workload has address ${host}`);
    if (dest.node !== ctx.config.node)
      return refuse(400, `workload ${dest.namespace}/${dest.name} is not on this node`);
    const conn = {
      sourceIdentity: srcIdentity,
      sourceIp: srcIp,
      destinationIp: normalizeIp(host),
      destinationPort: port,
    };
    const decision = ctx.policy.check(dest, conn);
    if (!decision.allowed) return refuse(401, `denied by policy: ${decision.message}`);
    let upstream: Socket;
    try {
      upstream = await connectTcp(host, port, ctx.config.connectTimeoutMs, req.signal);
    } catch (err) {
      return refuse(503, (err as Error).message);
    }
    trackInbound(ctx, info, upstream, dest, conn, started);
    return upstream;
  };
}

/**
 * The HBONE server splices the tunnel to `upstream`; we account for it from the upstream socket's own
 * byte counters and tear it down (policy change, drain deadline) by destroying that socket.
 */
function trackInbound(
  ctx: ProxyContext,
  info: ConnectionInfo,
  upstream: Socket,
  dest: WorkloadInfo,
  conn: Parameters<ProxyContext['policy']['check']>[1],
  started: number,
): void {
  const tally = ctx.metrics.connectionOpened(tcpLabels(info, 'destination'), 'inbound');
  const refresh = () => {
    tally.received = upstream.bytesWritten;
    tally.sent = upstream.bytesRead;
  };
  tally.refresh = refresh;
  let closedBy: string | undefined;
  const tracked: TrackedConnection = {
    info,
    stillAllowed: () => {
      const current = ctx.state.workload(dest.uid) ?? dest;
      const d = ctx.policy.check(current, conn);
      return { allowed: d.allowed, reason: d.message };
    },
    destroy: (reason) => {
      closedBy ??= reason;
      upstream.destroy();
    },
  };
  const untrack = ctx.tracker.add(tracked);
  upstream.once('close', () => {
    untrack();
    refresh();
    finish(ctx, info, tally, 'inbound', started, closedBy);
  });
}

function finish(
  ctx: ProxyContext,
  info: ConnectionInfo,
  tally: ByteTally,
  direction: 'inbound' | 'outbound',
  started: number,
  error?: string,
): void {
  ctx.metrics.connectionClosed(tally, direction);
  logAccess(ctx, info, {
    bytesSent: tally.sent,
    bytesRecv: tally.received,
    durationMs: performance.now() - started,
    ...(error ? { error } : {}),
  });
}

/** What plaintext inbound needs beyond the proxy context to honour iptables REDIRECT. */
export interface PlaintextInboundDeps {
  /** SO_ORIGINAL_DST (or a stand-in); absent or unavailable: the connection's local address is the target. */
  originalDst?: OriginalDstLookup;
  /** Whether an address is one of ztunnel's own listeners (a redirect there would loop back). */
  isOwnListener?: (ip: string, port: number) => boolean;
}

/**
 * Plaintext inbound (15006): no identity, so only policies that a caller without identity can pass allow it
 * (STRICT PeerAuthentication arrives as a policy denying exactly that). When iptables REDIRECTed the connection,
 * its local address is the node's and the original destination (SO_ORIGINAL_DST) names the pod and port it was
 * meant for. Otherwise (a per-workload listener dialled directly, or no addon) the local address is the
 * workload, and since the port it wanted is unknown the workload must serve exactly one target port.
 */
export function handlePlaintextInbound(ctx: ProxyContext, socket: Socket, deps: PlaintextInboundDeps = {}): void {
  const started = performance.now();
  socket.on('error', () => {});
  const localIp = normalizeIp(socket.localAddress ?? '');
  const srcIp = normalizeIp(socket.remoteAddress ?? '');
  const redirected = redirectedTarget(ctx, socket, localIp, deps.originalDst);
  const targetIp = redirected?.ip ?? localIp;
  const dest = ctx.state.workloadByAddress(targetIp);
  const info: ConnectionInfo = {
    direction: 'inbound',
    srcAddr: `${hostForAuthority(srcIp)}:${socket.remotePort}`,
    dstAddr: `${hostForAuthority(targetIp)}:${redirected?.port ?? socket.localPort}`,
    mtls: false,
  };
  const peer = ctx.state.workloadByAddress(srcIp);
  if (peer) info.srcWorkload = peer;
  const refuse = (why: string, flags = 'UF') => {
    ctx.metrics.connectionFailed(tcpLabels(info, 'destination', flags));
    logAccess(ctx, info, { bytesSent: 0, bytesRecv: 0, durationMs: performance.now() - started, error: why });
    socket.destroy();
  };
  if (!dest || dest.node !== ctx.config.node) {
    refuse(`no local workload has address ${targetIp}`);
    return;
  }
  if (redirected && deps.isOwnListener?.(targetIp, redirected.port)) {
    refuse(`original destination ${info.dstAddr} is a ztunnel listener`);
    return;
  }
  info.dstWorkload = dest;
  let port: number;
  if (redirected) {
    port = redirected.port;
  } else {
    const ports = new Set<number>();
    for (const list of Object.values(dest.services)) for (const p of list) ports.add(p.targetPort || p.servicePort);
    if (ports.size !== 1) {
      refuse(
        `plaintext to ${dest.namespace}/${dest.name} is ambiguous without traffic capture: it serves ports [${[...ports].join(', ')}]; use HBONE`,
      );
      return;
    }
    port = [...ports][0] as number;
  }
  info.dstAddr = `${hostForAuthority(targetIp)}:${port}`;
  const conn = { sourceIp: srcIp, destinationIp: targetIp, destinationPort: port };
  const decision = ctx.policy.check(dest, conn);
  if (!decision.allowed) {
    refuse(`denied by policy: ${decision.message}`, 'UAEX');
    return;
  }
  socket.pause();
  connectTcp(targetIp, port, ctx.config.connectTimeoutMs).then(
    (upstream) => {
      const tally = ctx.metrics.connectionOpened(tcpLabels(info, 'destination'), 'inbound');
      let closedBy: string | undefined;
      const untrack = ctx.tracker.add({
        info,
        stillAllowed: () => {
          const d = ctx.policy.check(ctx.state.workload(dest.uid) ?? dest, conn);
          return { allowed: d.allowed, reason: d.message };
        },
        destroy: (reason) => {
          closedBy ??= reason;
          socket.destroy();
          upstream.destroy();
        },
      });
      splice(socket, upstream, tally).then((err) => {
        untrack();
        finish(ctx, info, tally, 'inbound', started, closedBy ?? err?.message);
      });
    },
    (err: Error) => refuse(err.message),
  );
}

/**
 * The pod address and port a REDIRECTed connection was meant for, or undefined when it was not redirected: no
 * lookup (or the addon is unavailable), conntrack has no entry, or the original destination is the listener
 * itself (a tracked connection that no rule rewrote).
 */
function redirectedTarget(
  ctx: ProxyContext,
  socket: Socket,
  localIp: string,
  lookup: OriginalDstLookup | undefined,
): { ip: string; port: number } | undefined {
  if (!lookup?.support().available) return undefined;
  let dst: { address: string; port: number };
  try {
    dst = lookup.lookup(socket);
  } catch (err) {
    ctx.logger.debug('inbound', 'no original destination: plaintext target taken from the local address', {
      src: `${hostForAuthority(socket.remoteAddress ?? '')}:${socket.remotePort}`,
      error: (err as Error).message,
    });
    return undefined;
  }
  const ip = normalizeIp(dst.address);
  if (ip === localIp && dst.port === socket.localPort) return undefined;
  return { ip, port: dst.port };
}
