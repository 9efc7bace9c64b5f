import type { Duplex } from 'node:stream';
import type { SpiffeId } from '@ambient-ts/identity';
import type { HboneAuthority } from './authority.js';
import { type HboneBaggage, parseBaggage } from './baggage.js';
import { type ForwardedElement, parseForwarded } from './forwarded.js';
import { parseTraceparent, type Traceparent } from './traceparent.js';

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
  /** The address the client dialled: the original destination when the server's `originalDestination` gave one
   * (an iptables REDIRECT rewrote it to a local address), else the local address. */
  readonly destinationAddress: string;
  readonly destinationPort: number;
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

interface ParsedTelemetry {
  baggage?: HboneBaggage;
  forwarded?: ForwardedElement;
  traceparent?: Traceparent;
}

/** The server's HboneRequest: telemetry headers are parsed and the AbortSignal made only when read. */
export class IncomingRequest implements HboneRequest {
  readonly authority: HboneAuthority;
  readonly peerIdentity: SpiffeId;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
  readonly #raw: { baggage?: string; forwarded?: string; traceparent?: string };
  #parsed: ParsedTelemetry | undefined;
  #controller: AbortController | undefined;
  #abortReason: Error | undefined;

  constructor(
    authority: HboneAuthority,
    peer: {
      peerIdentity: SpiffeId;
      remoteAddress: string;
      remotePort: number;
      localAddress: string;
      localPort: number;
      destinationAddress: string;
      destinationPort: number;
    },
    headers: ReadonlyArray<readonly [string, string]>,
    raw: { baggage?: string; forwarded?: string; traceparent?: string },
  ) {
    this.authority = authority;
    this.peerIdentity = peer.peerIdentity;
    this.headers = headers;
    this.remoteAddress = peer.remoteAddress;
    this.remotePort = peer.remotePort;
    this.localAddress = peer.localAddress;
    this.localPort = peer.localPort;
    this.destinationAddress = peer.destinationAddress;
    this.destinationPort = peer.destinationPort;
    this.#raw = raw;
  }

  get baggage(): HboneBaggage | undefined {
    return this.#parse().baggage;
  }

  get forwarded(): ForwardedElement | undefined {
    return this.#parse().forwarded;
  }

  get traceparent(): Traceparent | undefined {
    return this.#parse().traceparent;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  reject(status: HboneRejectStatus, reason?: string): HboneRejection {
    return new HboneRejection(status, reason ?? `rejected with ${status}`);
  }

  /** Internal: the client went away or the upstream deadline passed. */
  abort(reason: Error): void {
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }

  #parse(): ParsedTelemetry {
    if (!this.#parsed) {
      const p: ParsedTelemetry = {};
      const b = tryParse(this.#raw.baggage, parseBaggage);
      if (b) p.baggage = b;
      const f = tryParse(this.#raw.forwarded, parseForwarded)?.[0];
      if (f) p.forwarded = f;
      const t = tryParse(this.#raw.traceparent, parseTraceparent);
      if (t) p.traceparent = t;
      this.#parsed = p;
    }
    return this.#parsed;
  }
}

function tryParse<T>(text: string | undefined, parse: (v: string) => T): T | undefined {
  if (text === undefined) return undefined;
  try {
    return parse(text);
  } catch {
    // Telemetry headers are best effort: a malformed value is ignored (and stays visible in `headers`).
    return undefined;
  }
}
