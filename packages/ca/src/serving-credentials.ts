import { type experimental, experimental as grpcExperimental, type ServerCredentials } from '@grpc/grpc-js';
import type { CertificateAuthority } from './certificate-authority.js';
import { type Clock, systemClock, type Timer } from './clock.js';

export interface ServingCredentialsOptions {
  ca: CertificateAuthority;
  /** DNS names in the serving certificate. Default `localhost`. */
  dnsNames?: string[];
  /** IP addresses in the serving certificate. Default 127.0.0.1 and ::1. */
  ipAddresses?: string[];
  clock?: Clock;
}

/** Wait after a failed renewal before trying again. */
const RETRY_MS = 30_000;

/**
 * A gRPC server's TLS identity, issued by the CA itself and renewed at half life (and whenever the trust
 * bundle changes), fed to grpc-js as a certificate provider so the listener never restarts. Client
 * certificates are requested but optional (a caller may use a token instead); whoever relies on one must
 * verify it against the CA (ClientCertificateAuthenticator does).
 */
export class ServingCredentials implements experimental.CertificateProvider {
  readonly #ca: CertificateAuthority;
  readonly #clock: Clock;
  readonly #dnsNames: string[];
  readonly #ipAddresses: string[];
  readonly #caListeners = new Set<experimental.CaCertificateUpdateListener>();
  readonly #idListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  #current: { key: string; chain: string; bundle: string } | undefined;
  #timer: Timer | undefined;
  #stopped = false;
  readonly #onBundle = (): void => this.#renewNow();

  constructor(options: ServingCredentialsOptions) {
    this.#ca = options.ca;
    this.#clock = options.clock ?? systemClock;
    this.#dnsNames = options.dnsNames ?? ['localhost'];
    this.#ipAddresses = options.ipAddresses ?? ['127.0.0.1', '::1'];
  }

  /** Issues the first certificate and returns credentials for `grpc.Server.bindAsync`. */
  async start(): Promise<ServerCredentials> {
    await this.#renew();
    this.#ca.on('trust-bundle-changed', this.#onBundle);
    this.#ca.on('root-activated', this.#onBundle);
    // One object serves as both providers (grpc-js's argument order differs between releases).
    return grpcExperimental.createCertificateProviderServerCredentials(this, this, false);
  }

  /** The serving chain (PEM, leaf first), once started. */
  get certificateChain(): string | undefined {
    return this.#current?.chain;
  }

  /** Stops renewing. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#timer?.cancel();
    this.#ca.off('trust-bundle-changed', this.#onBundle);
    this.#ca.off('root-activated', this.#onBundle);
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    const issued = await this.#ca.issue({ dnsNames: this.#dnsNames, ipAddresses: this.#ipAddresses });
    const current = { key: issued.key, chain: issued.chain.join(''), bundle: issued.trustBundle };
    this.#current = current;
    for (const l of this.#caListeners) l(caUpdate(current));
    for (const l of this.#idListeners) l(identityUpdate(current));
    const half = (issued.notAfter.getTime() - issued.notBefore.getTime()) / 2;
    this.#renewSoon(issued.notBefore.getTime() + half - this.#clock.now());
  }

  #renewNow(): void {
    this.#renew().catch(() => this.#renewSoon(RETRY_MS));
  }

  #renewSoon(ms: number): void {
    if (this.#stopped) return;
    this.#timer?.cancel();
    this.#timer = this.#clock.setTimer(Math.max(0, ms), () => this.#renewNow());
  }

  // grpc-js registers its watcher only after adding these listeners: deliver the current value a tick later.
  addCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.#caListeners.add(l);
    queueMicrotask(() => {
      if (this.#current && this.#caListeners.has(l)) l(caUpdate(this.#current));
    });
  }
  removeCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.#caListeners.delete(l);
  }
  addIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.#idListeners.add(l);
    queueMicrotask(() => {
      if (this.#current && this.#idListeners.has(l)) l(identityUpdate(this.#current));
    });
  }
  removeIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.#idListeners.delete(l);
  }
}

function caUpdate(c: { bundle: string }): experimental.CaCertificateUpdate {
  return { caCertificate: Buffer.from(c.bundle) };
}

function identityUpdate(c: { key: string; chain: string }): experimental.IdentityCertificateUpdate {
  return { certificate: Buffer.from(c.chain), privateKey: Buffer.from(c.key) };
}
