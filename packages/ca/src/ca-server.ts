import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { SpiffeId } from '@ambient-ts/identity';
import { Server, type ServerCredentials, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import {
  type AuthenticatedCaller,
  type Authenticator,
  bearerToken,
  type CallContext,
  ClientCertificateAuthenticator,
  tokenDigest,
} from './authenticators.js';
import type { CertificateAuthority } from './certificate-authority.js';
import { type Clock, systemClock } from './clock.js';
import { CaError, type CaErrorCode } from './errors.js';
import {
  type CertificateRequestMessage,
  CREATE_CERTIFICATE_PATH,
  decodeRequest,
  encodeResponse,
  IMPERSONATED_IDENTITY,
} from './proto.js';
import { FailureRateLimiter, type RateLimitOptions } from './rate-limiter.js';
import { ServingCredentials } from './serving-credentials.js';

export interface CaServerOptions {
  ca: CertificateAuthority;
  /**
   * Tried in order; the first that recognises the call's credential decides. Default: client certificates
   * issued by `ca` only. Add a {@link TokenAuthenticator} for bootstrap tokens.
   */
  authenticators?: Authenticator[];
  /** Identities (node proxies, e.g. ztunnel's) allowed to ask for certificates of workloads on their node. */
  trustedNodeAccounts?: (SpiffeId | string)[];
  /** Whether `identity` has a workload on `node`; wired by the control plane to its workload registry. */
  isWorkloadOnNode?: (node: string, identity: SpiffeId) => boolean | Promise<boolean>;
  /**
   * An extra rule, consulted for every request once the built-in rules allowed it: may `caller` obtain a
   * certificate for `requested` (its own identity, or one it impersonates)? Return false to refuse with
   * PERMISSION_DENIED, or throw a CaError to refuse with its code and message. It can only narrow what the
   * built-in rules allow, never widen it.
   */
  authorize?: (caller: AuthenticatedCaller, requested: SpiffeId) => boolean | Promise<boolean>;
  /** When set, calls whose `clusterid` metadata names another cluster are refused. */
  clusterId?: string;
  /** Names in the CA's own serving certificate (used by {@link CaServer.listen}). Default DNS `localhost`, IPs 127.0.0.1 and ::1. */
  serving?: { dnsNames?: string[]; ipAddresses?: string[] };
  /** Per-caller limit on bad requests. */
  rateLimit?: RateLimitOptions;
  clock?: Clock;
}

export interface CaServerEvents {
  /** A certificate was issued. */
  issued: [{ identity: string; caller: string; authenticator: string; serial: string; notAfter: Date }];
  /** A request was refused (never includes credentials). */
  refused: [{ code: CaErrorCode | 'ERR_INTERNAL'; grpcCode: number; message: string; peer: string }];
}

type DecodedRequest = CertificateRequestMessage | { invalid: Error };

const GRPC_CODE: Partial<Record<CaErrorCode, number>> = {
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_PERMISSION_DENIED: status.PERMISSION_DENIED,
  ERR_CSR_INVALID: status.INVALID_ARGUMENT,
  ERR_TTL_INVALID: status.INVALID_ARGUMENT,
  ERR_IDENTITY_INVALID: status.INVALID_ARGUMENT,
  ERR_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  ERR_CLOSED: status.UNAVAILABLE,
};
const PENALISED = new Set<number>([status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.INVALID_ARGUMENT]);

/**
 * Istio's CA API (`istio.v1.auth.IstioCertificateService/CreateCertificate`) over TLS: on its own listener
 * ({@link CaServer.listen}) or as one more service of a grpc.Server someone else owns ({@link CaServer.attachTo}).
 */
export class CaServer extends EventEmitter<CaServerEvents> {
  readonly #ca: CertificateAuthority;
  readonly #authenticators: Authenticator[];
  readonly #trustedNodes: Set<string>;
  readonly #opts: CaServerOptions;
  readonly #clock: Clock;
  readonly #limiter: FailureRateLimiter;
  /** Our own listener; only created by listen(). */
  #server: Server | undefined;
  #credentials: ServingCredentials | undefined;
  #serverCredentials: Promise<ServerCredentials> | undefined;
  #port: number | undefined;
  #closed = false;
  /** Counters, for metrics and tests. */
  readonly stats = { issued: 0, refused: 0, rateLimited: 0 };

  constructor(options: CaServerOptions) {
    super();
    this.#opts = options;
    this.#ca = options.ca;
    this.#clock = options.clock ?? systemClock;
    this.#authenticators = options.authenticators ?? [new ClientCertificateAuthenticator(options.ca)];
    this.#trustedNodes = new Set(
      (options.trustedNodeAccounts ?? []).map((id) => SpiffeId.parse(String(id)).toString()),
    );
    this.#limiter = new FailureRateLimiter(this.#clock, options.rateLimit);
  }

  /**
   * Adds the CA service to `server`, which its owner binds and shuts down (e.g. a control plane serving xDS
   * and the CA on one port). Every rule applies as on our own listener, the per-caller rate limit included.
   * After {@link CaServer.close} calls on it are refused with UNAVAILABLE.
   */
  attachTo(server: Server): this {
    if (this.#closed) throw new CaError('ERR_CLOSED', 'the CA server is closed');
    server.addService(
      {
        CreateCertificate: {
          path: CREATE_CERTIFICATE_PATH,
          requestStream: false,
          responseStream: false,
          originalName: 'createCertificate',
          requestSerialize: () => Buffer.alloc(0),
          requestDeserialize: (b: Buffer): DecodedRequest => {
            try {
              return decodeRequest(b);
            } catch (err) {
              return { invalid: err as Error };
            }
          },
          responseSerialize: (chain: string[]) => encodeResponse(chain),
          responseDeserialize: () => [],
        },
      },
      {
        CreateCertificate: (call: ServerUnaryCall<DecodedRequest, string[]>, cb: sendUnaryData<string[]>) =>
          void this.#handle(call, cb),
      },
    );
    return this;
  }

  /** Starts serving on `host:port` (port 0 picks one); resolves to the bound port. */
  async listen(port = 15012, host = '0.0.0.0'): Promise<number> {
    if (this.#closed) throw new CaError('ERR_CLOSED', 'the CA server is closed');
    if (!this.#server || !this.#serverCredentials) {
      this.#server = new Server({ 'grpc.max_receive_message_length': 64 * 1024 });
      this.attachTo(this.#server);
      this.#credentials = new ServingCredentials({
        ca: this.#ca,
        clock: this.#clock,
        ...(this.#opts.serving?.dnsNames ? { dnsNames: this.#opts.serving.dnsNames } : {}),
        ...(this.#opts.serving?.ipAddresses ? { ipAddresses: this.#opts.serving.ipAddresses } : {}),
      });
      this.#serverCredentials = this.#credentials.start();
    }
    const server = this.#server;
    const creds = await this.#serverCredentials;
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.#port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(target, creds, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    return this.#port;
  }

  get port(): number | undefined {
    return this.#port;
  }

  /** The serving certificate chain (PEM) of our own listener, e.g. for clients that pin it. */
  get servingCertificate(): string | undefined {
    return this.#credentials?.certificateChain;
  }

  /**
   * Stops accepting calls and lets in-flight ones finish (forcing after 5 s). Idempotent. A server given to
   * {@link CaServer.attachTo} stays up (its owner closes it); this CA's service on it refuses further calls.
   */
  close(): Promise<void> {
    this.#closed = true;
    this.#credentials?.stop();
    const server = this.#server;
    if (!server) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 5000);
      force.unref();
      server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  destroy(): void {
    this.#closed = true;
    this.#credentials?.stop();
    this.#server?.forceShutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(call: ServerUnaryCall<DecodedRequest, string[]>, cb: sendUnaryData<string[]>): Promise<void> {
    const peerCertificate = call.getAuthContext?.()?.sslPeerCertificate?.raw;
    const ctx: CallContext = {
      metadata: (name) => {
        const v = call.metadata.get(name)[0];
        return v === undefined ? undefined : String(v);
      },
      peer: call.getPeer(),
      ...(peerCertificate ? { peerCertificate } : {}),
    };
    if (this.#closed) {
      this.#refuse(cb, ctx, 'ERR_CLOSED', status.UNAVAILABLE, 'the CA is shutting down: retry with another instance');
      return;
    }
    const key = rateKey(ctx);
    if (this.#limiter.limited(key)) {
      this.stats.rateLimited++;
      this.#refuse(
        cb,
        ctx,
        'ERR_RATE_LIMITED',
        status.RESOURCE_EXHAUSTED,
        'too many bad requests from this caller: slow down and fix the requests',
      );
      return;
    }
    try {
      const req = call.request;
      if ('invalid' in req)
        throw new CaError('ERR_CSR_INVALID', `request is not an IstioCertificateRequest: ${req.invalid.message}`);
      const caller = await this.#authenticate(ctx);
      const identity = await this.#authorize(caller, req);
      if (!Number.isSafeInteger(req.validityDuration) || req.validityDuration < 0) {
        throw new CaError(
          'ERR_TTL_INVALID',
          `validity_duration must be a non-negative number of seconds, got ${req.validityDuration}`,
        );
      }
      const issued = await this.#ca.sign(req.csr, {
        identity,
        ...(req.validityDuration > 0 ? { ttl: req.validityDuration * 1000 } : {}),
      });
      this.stats.issued++;
      cb(null, issued.certChain);
      this.emit('issued', {
        identity: issued.identity,
        caller: caller.identity.toString(),
        authenticator: caller.authenticator,
        serial: issued.serial,
        notAfter: issued.notAfter,
      });
    } catch (err) {
      const code = err instanceof CaError ? err.code : undefined;
      const grpcCode = (code && GRPC_CODE[code]) ?? status.INTERNAL;
      if (PENALISED.has(grpcCode)) this.#limiter.penalize(key);
      // Unexpected failures are not described to the caller: they may carry internal detail.
      const message =
        grpcCode === status.INTERNAL
          ? 'the CA failed to issue the certificate; see the CA logs'
          : (err as Error).message;
      this.#refuse(cb, ctx, code ?? 'ERR_INTERNAL', grpcCode, message);
    }
  }

  async #authenticate(ctx: CallContext): Promise<AuthenticatedCaller> {
    const clusterId = ctx.metadata('clusterid');
    if (this.#opts.clusterId && clusterId && clusterId !== this.#opts.clusterId) {
      throw new CaError(
        'ERR_PERMISSION_DENIED',
        `cluster ${JSON.stringify(clusterId)} is not served by this CA (it serves ${this.#opts.clusterId})`,
      );
    }
    for (const a of this.#authenticators) {
      const caller = await a.authenticate(ctx);
      if (caller) return caller;
    }
    throw new CaError(
      'ERR_UNAUTHENTICATED',
      'no credentials: send "authorization: Bearer <token>" metadata or a client certificate issued by this CA',
    );
  }

  async #authorize(caller: AuthenticatedCaller, req: CertificateRequestMessage): Promise<SpiffeId> {
    const requested = await this.#requestedIdentity(caller, req);
    const hook = this.#opts.authorize;
    if (hook && !(await hook(caller, requested))) {
      throw new CaError(
        'ERR_PERMISSION_DENIED',
        `${caller.identity} may not obtain a certificate for ${requested}: refused by this CA's authorization rules`,
      );
    }
    return requested;
  }

  /** The caller's own identity, or the one it may impersonate by the built-in rules. */
  async #requestedIdentity(caller: AuthenticatedCaller, req: CertificateRequestMessage): Promise<SpiffeId> {
    const wanted = req.metadata[IMPERSONATED_IDENTITY];
    if (wanted === undefined || wanted === '' || wanted === caller.identity.toString()) return caller.identity;
    const who = caller.identity.toString();
    if (!this.#trustedNodes.has(who)) {
      throw new CaError(
        'ERR_PERMISSION_DENIED',
        `${who} may not request certificates for other identities: it is not a trusted node account`,
      );
    }
    if (!caller.node) {
      throw new CaError('ERR_PERMISSION_DENIED', `${who} may impersonate only with a credential that names its node`);
    }
    let target: SpiffeId;
    try {
      target = SpiffeId.parse(wanted);
    } catch (err) {
      throw new CaError('ERR_IDENTITY_INVALID', `${IMPERSONATED_IDENTITY}: ${(err as Error).message}`, { cause: err });
    }
    const check = this.#opts.isWorkloadOnNode;
    if (!check || !(await check(caller.node, target))) {
      throw new CaError(
        'ERR_PERMISSION_DENIED',
        `no workload with identity ${target} runs on node ${caller.node}, so ${who} may not request its certificate`,
      );
    }
    return target;
  }

  #refuse(
    cb: sendUnaryData<string[]>,
    ctx: CallContext,
    code: CaErrorCode | 'ERR_INTERNAL',
    grpcCode: number,
    message: string,
  ): void {
    this.stats.refused++;
    cb({ code: grpcCode, details: message, name: 'CaError', message });
    this.emit('refused', { code, grpcCode, message, peer: ctx.peer });
  }
}

/** Bad requests are counted against the credential presented (so one bad token does not block a good one). */
function rateKey(ctx: CallContext): string {
  try {
    const token = bearerToken(ctx);
    if (token !== undefined) return `token:${tokenDigest(token)}`;
  } catch {
    // A malformed authorization header: fall through to the connection.
  }
  if (ctx.peerCertificate) return `cert:${createHash('sha256').update(ctx.peerCertificate).digest('hex')}`;
  return `peer:${ctx.peer}`;
}
