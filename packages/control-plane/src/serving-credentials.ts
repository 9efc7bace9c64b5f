import type { CertificateAuthority } from '@ambient-ts/ca';
import { experimental, type ServerCredentials } from '@grpc/grpc-js';

/**
 * The control plane's own TLS identity on 15012, issued by its CA for the names proxies dial, renewed at
 * half life and whenever the trust bundle changes, fed to grpc-js as a certificate provider so the
 * listener never restarts. Client certificates are requested but optional (a proxy may use a token);
 * a presented one is verified against the CA before it counts.
 */
export class ServingCredentials implements experimental.CertificateProvider {
  readonly #ca: CertificateAuthority;
  readonly #dnsNames: string[];
  readonly #ipAddresses: string[];
  readonly #caListeners = new Set<experimental.CaCertificateUpdateListener>();
  readonly #idListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  #current: { key: string; chain: string; bundle: string } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #onBundle = (): void => void this.#renew().catch(() => this.#retryLater());

  constructor(ca: CertificateAuthority, names: { dnsNames: string[]; ipAddresses: string[] }) {
    this.#ca = ca;
    this.#dnsNames = names.dnsNames;
    this.#ipAddresses = names.ipAddresses;
  }

  async start(): Promise<ServerCredentials> {
    await this.#renew();
    this.#ca.on('trust-bundle-changed', this.#onBundle);
    this.#ca.on('root-activated', this.#onBundle);
    return experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  /** The serving chain, PEM. */
  get certificateChain(): string | undefined {
    return this.#current?.chain;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ca.off('trust-bundle-changed', this.#onBundle);
    this.#ca.off('root-activated', this.#onBundle);
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    const issued = await this.#ca.issue({ dnsNames: this.#dnsNames, ipAddresses: this.#ipAddresses });
    this.#current = { key: issued.key, chain: issued.chain.join(''), bundle: issued.trustBundle };
    for (const l of this.#caListeners) l({ caCertificate: Buffer.from(issued.trustBundle) });
    for (const l of this.#idListeners)
      l({ certificate: Buffer.from(this.#current.chain), privateKey: Buffer.from(issued.key) });
    clearTimeout(this.#timer);
    const half = (issued.notAfter.getTime() - issued.notBefore.getTime()) / 2;
    this.#schedule(issued.notBefore.getTime() + half - Date.now());
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    // setTimeout caps at 2^31-1 ms; a longer wait simply re-arms.
    this.#timer = setTimeout(
      () => void this.#renew().catch(() => this.#retryLater()),
      Math.min(Math.max(0, ms), 2 ** 31 - 1),
    );
    this.#timer.unref();
  }

  #retryLater(): void {
    clearTimeout(this.#timer);
    this.#schedule(30_000);
  }

  // grpc-js registers its watcher only after adding these listeners: deliver the current value a tick later.
  addCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.#caListeners.add(l);
    queueMicrotask(() => {
      if (this.#current && this.#caListeners.has(l)) l({ caCertificate: Buffer.from(this.#current.bundle) });
    });
  }
  removeCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.#caListeners.delete(l);
  }
  addIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.#idListeners.add(l);
    queueMicrotask(() => {
      if (this.#current && this.#idListeners.has(l)) {
        l({ certificate: Buffer.from(this.#current.chain), privateKey: Buffer.from(this.#current.key) });
      }
    });
  }
  removeIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.#idListeners.delete(l);
  }
}
