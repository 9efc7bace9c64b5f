import type { Socket } from 'node:net';
import { loadAddon } from './addon.js';
import { OriginalDstError } from './errors.js';

/** Where the client meant to connect before iptables redirected it. */
export interface OriginalDestination {
  address: string;
  port: number;
  family: 4 | 6;
}

export type OriginalDstSupport = { available: true } | { available: false; reason: string };

/** Whether originalDestination() can work in this process, and if not, why (for a one-time log line). */
export function originalDstSupport(): OriginalDstSupport {
  const state = loadAddon();
  return state.addon ? { available: true } : { available: false, reason: state.reason };
}

/**
 * The original destination of an accepted TCP connection (SO_ORIGINAL_DST, or IP6T_SO_ORIGINAL_DST for
 * IPv6). Synchronous: one getsockopt on the socket's descriptor. Accepts a net.Socket or a raw fd.
 */
export function originalDestination(socket: Socket | number): OriginalDestination {
  const state = loadAddon();
  if (!state.addon) {
    throw new OriginalDstError('ERR_ORIGINAL_DST_UNAVAILABLE', `original destination unavailable: ${state.reason}`);
  }
  const fd = typeof socket === 'number' ? socket : socketFd(socket);
  if (!Number.isInteger(fd) || fd < 0) {
    throw new OriginalDstError(
      'ERR_ORIGINAL_DST_NO_FD',
      'the socket has no file descriptor: pass a connected TCP socket (as accepted by net.Server) that is not destroyed',
    );
  }
  let raw: { address: string; port: number; family: number };
  try {
    raw = state.addon.originalDestination(fd);
  } catch (err) {
    const errno = (err as { errno?: number }).errno;
    // ENOENT: conntrack has no entry for this connection (nothing in its namespace tracked or redirected it).
    if (errno === 2) {
      throw new OriginalDstError(
        'ERR_ORIGINAL_DST_NOT_FOUND',
        'connection tracking knows no original destination for this connection: it was not redirected by iptables (nat REDIRECT) in its network namespace',
        { cause: err },
      );
    }
    if (errno === 9 || errno === 88) {
      throw new OriginalDstError('ERR_ORIGINAL_DST_NO_FD', `the descriptor ${fd} is not an open socket`, {
        cause: err,
      });
    }
    throw new OriginalDstError(
      'ERR_ORIGINAL_DST_FAILED',
      `reading the original destination failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { address: raw.address, port: raw.port, family: raw.family === 6 ? 6 : 4 };
}

function socketFd(socket: Socket): number {
  // net.Socket keeps its TCP handle in _handle; fd is -1 once closed (and on Windows).
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  return typeof handle?.fd === 'number' ? handle.fd : -1;
}
