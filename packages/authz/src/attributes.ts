import type { SpiffeId } from '@ambient-ts/identity';

/**
 * What ztunnel knows about a connection (L4). Addresses are strings as Node reports them (`10.0.0.1`,
 * `::ffff:10.0.0.1`, `fd00::1`).
 */
export interface ConnectionAttributes {
  /** The peer's verified identity: a SpiffeId, `spiffe://td/ns/x/sa/y`, or the principal `td/ns/x/sa/y`. None for plaintext. */
  sourceIdentity?: SpiffeId | string | null;
  /** The peer's address (the downstream connection's remote address). */
  sourceIp?: string;
  /** The destination workload address the connection is for. */
  destinationIp?: string;
  /** The destination port. */
  destinationPort?: number;
}

/** JWT-derived attributes, as the request authentication filter established them. */
export interface RequestAuth {
  /** `<iss>/<sub>`; derived from `claims.iss` and `claims.sub` when absent. */
  principal?: string;
  /** Defaults to `claims.aud`. */
  audiences?: readonly string[];
  /** Defaults to `claims.azp`. */
  presenter?: string;
  claims?: Readonly<Record<string, unknown>>;
}

/** What a waypoint (or any HTTP gateway) knows about a request (L7): the connection plus HTTP. */
export interface RequestAttributes extends ConnectionAttributes {
  method?: string;
  /** The raw `:path` (with query); normalized by the engine's `pathNormalization` before matching. */
  path?: string;
  /** `:authority` / Host. Matched case-insensitively. */
  host?: string;
  /** Header names in any case; a repeated header may be an array (joined with `,` as Envoy does). */
  headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The original client address (from X-Forwarded-For or PROXY protocol); defaults to `sourceIp`. */
  remoteIp?: string;
  /** TLS SNI of the downstream connection, when any. */
  sni?: string;
  auth?: RequestAuth;
}
