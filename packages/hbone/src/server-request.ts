import type { Duplex } from 'node:stream';
import type { SpiffeId } from '@ambient-ts/identity';
import type { HboneAuthority } from './authority.js';
import type { HboneBaggage } from './baggage.js';
import type { ForwardedElement } from './forwarded.js';
import type { Traceparent } from './traceparent.js';

/** Statuses a handler may refuse a tunnel with, with Istio's meaning. */
export type HboneRejectStatus =
  /** Bad request: e.g. the authority's address is not served here. */
  | 400
  /** Denied by policy. */
  | 401
  /** No such local workload, or the upstream connection failed. */
  | 503;

/** What a handler returns to refuse a tunnel; made by {@link HboneRequest.reject}. */
export class HboneRejection {
  constructor(
    readonly status: HboneRejectStatus,
    readonly reason: string,
  ) {}
}

/** One CONNECT request as the embedder's handler sees it. */
export interface HboneRequest {
  /** The destination from `:authority` (a workload IP and port, or a host name). */
  readonly authority: HboneAuthority;
  /** The client's identity (first URI SAN of its certificate, already verified and in our trust domain). */
  readonly peerIdentity: SpiffeId;
  /** Parsed `baggage`, `forwarded` (first element) and `traceparent`; undefined when absent or malformed
   * (they are telemetry: a bad value is ignored, as ztunnel does, and stays visible in `headers`). */
  readonly baggage: HboneBaggage | undefined;
  readonly forwarded: ForwardedElement | undefined;
  readonly traceparent: Traceparent | undefined;
  /** Every request header, as received (lowercase names, pseudo-headers first). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** The HBONE connection's TCP peer (the source ztunnel) and the local address it reached. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Aborted when the client gives up, the upstream deadline passes, or the server is destroyed. */
  readonly signal: AbortSignal;
  /** Builds the value a handler returns (or throws) to refuse the tunnel with `status`. */
  reject(status: HboneRejectStatus, reason?: string): HboneRejection;
}

/**
 * The embedder's decision for one tunnel: return the upstream as a Duplex once it is connected (the
 * server then answers 200 and splices bytes), or return/throw `request.reject(status)`. Any other
 * thrown error answers 503. Upstream sockets should use `allowHalfOpen: true` so half-closes carry over.
 */
export type HboneHandler = (request: HboneRequest) => Duplex | HboneRejection | Promise<Duplex | HboneRejection>;
