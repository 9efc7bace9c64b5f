/**
 * Outbound capture (15001): iptables REDIRECTs a pod's TCP connections to this listener; the kernel still
 * knows where each one was going (SO_ORIGINAL_DST), and from there the connection follows the same path as
 * SOCKS5: source workload by source address, resolution, HBONE. The lookup is injectable so the path can be
 * tested without iptables; in production it is the native addon, which may be unavailable (not Linux, build
 * failed), in which case ztunnel runs without capture and says why once.
 */
import type { Socket } from 'node:net';
import {
  type OriginalDestination,
  type OriginalDstSupport,
  originalDestination,
  originalDstSupport,
} from '@ambient-ts/original-dst';
import type { ProxyContext } from './context.js';
import { handleOutbound, type OutboundDeps } from './outbound.js';
import { hostForAuthority } from './resolver.js';

export interface OriginalDstLookup {
  support(): OriginalDstSupport;
  lookup(socket: Socket): OriginalDestination;
}

/** SO_ORIGINAL_DST through @ambient-ts/original-dst. */
export const kernelOriginalDst: OriginalDstLookup = {
  support: originalDstSupport,
  lookup: (socket) => originalDestination(socket),
};

export function captureHandler(
  ctx: ProxyContext,
  deps: () => OutboundDeps,
  lookup: OriginalDstLookup,
  isOwnListener: (ip: string, port: number) => boolean,
): (socket: Socket) => void {
  return (socket) => {
    socket.on('error', () => {});
    socket.pause();
    const src = `${hostForAuthority(socket.remoteAddress ?? '')}:${socket.remotePort}`;
    let dst: OriginalDestination;
    try {
      dst = lookup.lookup(socket);
    } catch (err) {
      // Not redirected (someone dialled 15001 directly) or the socket is already gone: nothing to forward to.
      ctx.logger.debug('capture', 'no original destination: connection closed', {
        src,
        error: (err as Error).message,
      });
      socket.destroy();
      return;
    }
    if (isOwnListener(dst.address, dst.port)) {
      // A connection whose original destination is one of ztunnel's own listeners would loop back here.
      ctx.logger.warn('capture', 'original destination is a ztunnel listener: connection closed', {
        src,
        dst: `${hostForAuthority(dst.address)}:${dst.port}`,
      });
      socket.destroy();
      return;
    }
    void handleOutbound(
      ctx,
      deps(),
      socket,
      { host: dst.address, port: dst.port },
      {
        accept: () => socket,
        reject: () => socket.destroy(),
      },
    );
  };
}
