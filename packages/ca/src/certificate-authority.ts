import { randomBytes, type X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { DEFAULT_TRUST_DOMAIN, type IdentityError, SpiffeId, validateTrustDomain } from '@ambient-ts/identity';
import { loadState, type RootRecord, type RootStatus, saveState } from './ca-state.js';
import { loadCacerts } from './cacerts.js';
import {
  authorityKeyIdentifier,
  basicConstraints,
  distinguishedName,
  extKeyUsageTls,
  keyIdentifier,
  keyUsage,
  randomSerial,
  signCertificate,
  subjectAltName,
  subjectKeyIdentifier,
} from './certificate-builder.js';
import { type CertificateInfo, issuedBy, parseCertificate } from './certificate-info.js';
import { type Clock, systemClock, type Timer } from './clock.js';
import { parseCsr } from './csr.js';
import { bitStringBytes, child, children, readWhole, TAG } from './der.js';
import { formatDuration } from './duration.js';
import { CaError } from './errors.js';
import { generateKey, type KeyType, privateKeyPem, spkiOf } from './keys.js';
import { certificateDers, toPem } from './pem.js';
import { KeySigner, type Signer } from './signer.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Leaves and roots start one minute in the past so a peer whose clock lags a little accepts them at once. */
const BACKDATE = 60_000;

export interface CertificateAuthorityOptions {
  /** Trust domain of every identity this CA signs. Default `cluster.local`. */
  trustDomain?: string;
  /**
   * Directory holding a self-signed CA's state (created with mode 0700 when missing). The same directory
   * loads the same CA after a restart; a corrupt one is an error, never silently replaced. Without it the
   * CA lives in memory only.
   */
  stateDir?: string;
  /** Plugged-in CA: a folder in Istio's `cacerts` layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem). */
  cacertsDir?: string;
  /** With `cacertsDir`: sign through this Signer (a KMS/HSM-held key) instead of reading ca-key.pem. */
  signer?: Signer;
  /** Key type of a self-signed root. Default `ec-p256`. */
  rootKeyType?: KeyType;
  /** Lifetime of a self-signed root, ms. Default 10 years. */
  rootTtl?: number;
  /** Introduce a new root when this fraction of the active root's life remains. Default 0.2. */
  rootRotationThreshold?: number;
  /**
   * Time between introducing a new root into the trust bundle and signing with it, ms, so every proxy
   * learns the new root before it meets a certificate issued under it. Default: `defaultTtl` (proxies
   * renew at half life, so within one default lifetime every live proxy has fetched the new bundle).
   */
  rootActivationDelay?: number;
  /** Leaf lifetime when the request does not say, ms. Default 24 h. */
  defaultTtl?: number;
  /** Largest leaf lifetime a request may ask for, ms; larger requests are refused. Default 90 days. */
  maxTtl?: number;
  /** Rotate a self-signed root automatically (on a timer). Default true. */
  autoRotate?: boolean;
  /** Organization (O) of a self-signed root's subject. Default: the trust domain. */
  organization?: string;
  clock?: Clock;
}

export interface SignOptions {
  /** The identity to put in the URI SAN: the one the caller was authenticated as. CSR SANs are ignored. */
  identity: SpiffeId | string;
  /** Lifetime in milliseconds; default `defaultTtl`, at most `maxTtl`. */
  ttl?: number;
}

export interface IssuedCertificate {
  /** The SPIFFE ID in the certificate (empty string for a certificate issued with DNS/IP names only). */
  identity: string;
  /** The leaf, PEM. */
  certificate: string;
  /** Leaf then intermediates (no roots), one PEM per element: what a TLS endpoint presents. */
  chain: string[];
  /** Every root of the trust bundle, concatenated PEM. */
  trustBundle: string;
  /** Istio's wire form: leaf first, intermediates, and the trust bundle as the last element. */
  certChain: string[];
  /** Serial, lowercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssueOptions {
  identity?: SpiffeId | string;
  dnsNames?: string[];
  ipAddresses?: string[];
  ttl?: number;
  keyType?: KeyType;
}

/** A certificate together with its private key (generated in this process). */
export interface IssuedKeyAndCertificate extends IssuedCertificate {
  /** PKCS#8 PEM private key. */
  key: string;
}

export interface RootInfo {
  certificate: string;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** `plugged` for a plugged-in CA's roots (rotated by the operator, not by this CA). */
  status: RootStatus | 'plugged';
  activateAt?: Date;
  retireAt?: Date;
}

/** Events: `root-introduced`, `root-activated`, `root-retired` (RootInfo), `trust-bundle-changed` (PEM string),
 * `maintenance-failed` (Error; the CA keeps signing with its current root and retries on the next timer). */
export interface CertificateAuthorityEvents {
  'root-introduced': [RootInfo];
  'root-activated': [RootInfo];
  'root-retired': [RootInfo];
  'trust-bundle-changed': [string];
  'maintenance-failed': [Error];
}

interface SigningContext {
  issuer: CertificateInfo;
  signer: Signer;
  intermediatePems: string[];
  bundlePem: string;
  /** No leaf may outlive any certificate above it. */
  chainNotAfter: number;
  akid: Uint8Array;
}

/**
 * The certificate authority: a self-signed root (persisted, rotated) or a plugged-in CA, signing workload
 * certificates for authenticated identities.
 */
export class CertificateAuthority extends EventEmitter<CertificateAuthorityEvents> {
  readonly trustDomain: string;
  readonly mode: 'self-signed' | 'plugged-in';
  readonly defaultTtl: number;
  readonly maxTtl: number;
  readonly #clock: Clock;
  readonly #stateDir: string | undefined;
  readonly #opts: CertificateAuthorityOptions;
  #roots: RootRecord[];
  #plugged: CertificateInfo[] | undefined;
  #ctx!: SigningContext;
  /** Latest notAfter of a leaf issued in this process, per issuing root fingerprint. */
  readonly #issuedUntil = new Map<string, number>();
  /** Leaves issued by earlier processes expire before this (they were at most maxTtl long). */
  readonly #earlierLeavesUntil: number;
  #op: Promise<unknown> = Promise.resolve();
  #timer: Timer | undefined;
  #closed = false;

  private constructor(
    opts: CertificateAuthorityOptions,
    mode: 'self-signed' | 'plugged-in',
    roots: RootRecord[],
    plugged: { ctx: SigningContext; roots: CertificateInfo[] } | undefined,
    loadedExisting: boolean,
  ) {
    super();
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#stateDir = opts.stateDir;
    this.trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.defaultTtl = opts.defaultTtl ?? DAY;
    this.maxTtl = opts.maxTtl ?? 90 * DAY;
    this.mode = mode;
    this.#roots = roots;
    this.#plugged = plugged?.roots;
    this.#earlierLeavesUntil = loadedExisting ? this.#clock.now() + this.maxTtl : 0;
    if (plugged) this.#ctx = plugged.ctx;
    else this.#refreshContext();
  }

  /** Loads the CA from `stateDir` or `cacertsDir`, or creates a new self-signed root. */
  static async create(options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    const opts = { ...options };
    const td = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    try {
      validateTrustDomain(td);
    } catch (err) {
      throw new CaError('ERR_CA_CONFIG_INVALID', (err as Error).message, { cause: err });
    }
    checkDurations(opts);
    const clock = opts.clock ?? systemClock;
    if (opts.cacertsDir) {
      const p = await loadCacerts(opts.cacertsDir, opts.signer);
      const ctx = makeContext(p.issuer, p.signer, p.intermediates, p.roots);
      return new CertificateAuthority(opts, 'plugged-in', [], { ctx, roots: p.roots }, true);
    }
    if (opts.signer) {
      throw new CaError(
        'ERR_CA_CONFIG_INVALID',
        'a Signer is used with cacertsDir (a plugged-in CA); a self-signed root keeps its own key',
      );
    }
    if (opts.stateDir) {
      const loaded = await loadState(opts.stateDir);
      if (loaded) {
        if (loaded.trustDomain !== td) {
          throw new CaError(
            'ERR_CA_CONFIG_INVALID',
            `CA state in ${opts.stateDir} is for trust domain ${loaded.trustDomain}, not ${td}: use a separate state directory per trust domain`,
          );
        }
        const ca = new CertificateAuthority(opts, 'self-signed', loaded.roots, undefined, true);
        await ca.maintain();
        return ca;
      }
      await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
    }
    const now = clock.now();
    const root = await createRoot(opts, td, now);
    const rec: RootRecord = { cert: root.cert, signer: root.signer, status: 'active', introducedAt: now };
    if (opts.stateDir) await saveState(opts.stateDir, td, [rec], []);
    const ca = new CertificateAuthority(opts, 'self-signed', [rec], undefined, false);
    ca.#schedule();
    return ca;
  }

  /** Every root of the trust bundle, concatenated PEM (what proxies verify peers against). */
  get trustBundle(): string {
    return this.#ctx.bundlePem;
  }

  /** The roots with their place in the rotation timeline. */
  roots(): RootInfo[] {
    if (this.#plugged) return this.#plugged.map((c) => rootInfo(c, 'plugged'));
    return this.#roots.map(recordInfo);
  }

  /** The certificate that signs leaves now (the active root, or a plugged-in ca-cert). */
  get signingCertificate(): string {
    return this.#ctx.issuer.pem;
  }

  /**
   * Signs a CSR for `identity`. The CSR's own signature must verify; its subject and SANs are ignored:
   * the certificate carries exactly one URI SAN, the identity given here, and an empty subject.
   */
  async sign(csr: string | Uint8Array, options: SignOptions): Promise<IssuedCertificate> {
    this.#checkOpen();
    const identity = this.#identity(options.identity);
    const ttl = this.#ttl(options.ttl);
    const parsed = parseCsr(csr);
    return this.#issueLeaf(parsed.spki, { uris: [identity] }, identity, ttl);
  }

  /**
   * Generates a key here and issues a certificate for it: for the CA's own serving certificate, for the
   * `ambient-ca issue` command, and for tests. Names may be a SPIFFE identity and/or DNS names and IPs.
   */
  async issue(options: IssueOptions): Promise<IssuedKeyAndCertificate> {
    this.#checkOpen();
    const identity = options.identity === undefined ? '' : this.#identity(options.identity);
    if (!identity && !options.dnsNames?.length && !options.ipAddresses?.length) {
      throw new CaError(
        'ERR_IDENTITY_INVALID',
        'issue() needs an identity, DNS names or IP addresses to name the certificate',
      );
    }
    const ttl = this.#ttl(options.ttl);
    const key = await generateKey(options.keyType ?? 'ec-p256');
    const spki = spkiOf(key);
    const names: { uris?: string[]; dnsNames?: string[]; ipAddresses?: string[] } = {
      dnsNames: options.dnsNames ?? [],
      ipAddresses: options.ipAddresses ?? [],
    };
    if (identity) names.uris = [identity];
    const issued = await this.#issueLeaf(spki, names, identity, ttl);
    return { ...issued, key: privateKeyPem(key) };
  }

  /**
   * Checks that `cert` was issued by this CA (by the signing certificate or any root of the bundle) and is
   * valid now; returns its SPIFFE identity. Used to authenticate callers by their mesh certificate.
   */
  verifyCertificate(cert: string | Uint8Array | X509Certificate): SpiffeId {
    let info: CertificateInfo;
    try {
      const der = typeof cert === 'string' ? certificateDers(cert)[0] : cert instanceof Uint8Array ? cert : cert.raw;
      if (!der) throw new Error('no PEM certificate');
      info = parseCertificate(der);
    } catch (err) {
      throw new CaError('ERR_UNAUTHENTICATED', `client certificate cannot be parsed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const candidates = [this.#ctx.issuer, ...this.#rootCerts()];
    if (!candidates.some((c) => issuedBy(info, c))) {
      throw new CaError('ERR_UNAUTHENTICATED', 'client certificate was not issued by this CA');
    }
    const now = this.#clock.now();
    if (now < info.notBefore.getTime() || now > info.notAfter.getTime()) {
      throw new CaError(
        'ERR_UNAUTHENTICATED',
        `client certificate is not valid now (valid ${info.notBefore.toISOString()} to ${info.notAfter.toISOString()})`,
      );
    }
    const first = info.uris[0];
    const id = first === undefined ? undefined : SpiffeId.tryParse(first);
    if (!id?.inTrustDomain(this.trustDomain)) {
      throw new CaError(
        'ERR_UNAUTHENTICATED',
        `client certificate carries no SPIFFE identity of trust domain ${this.trustDomain}`,
      );
    }
    return id;
  }

  /**
   * Starts a root rotation now: a new root joins the trust bundle at once and starts signing after
   * `activateAfter` ms (default `rootActivationDelay`); the old root leaves the bundle once every leaf it
   * signed has expired. Self-signed CAs only.
   */
  rotateRoot(options: { activateAfter?: number } = {}): Promise<RootInfo> {
    return this.#serial(async () => {
      this.#checkOpen();
      if (this.mode !== 'self-signed') {
        throw new CaError(
          'ERR_CA_CONFIG_INVALID',
          'a plugged-in CA is rotated by its operator: put the new root in root-cert.pem and reload',
        );
      }
      if (this.#roots.some((r) => r.status === 'next')) {
        throw new CaError('ERR_CA_CONFIG_INVALID', 'a root rotation is already in progress');
      }
      const rec = await this.#introduce(options.activateAfter ?? this.#activationDelay());
      await this.#advance();
      return recordInfo(this.#roots.find((r) => r.cert === rec.cert) ?? rec);
    });
  }

  /** Advances the root rotation timeline to the clock's now (also runs on its own timer). */
  maintain(): Promise<void> {
    return this.#serial(() => this.#advance());
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#timer?.cancel();
    }
    return this.#op.then(
      () => {},
      () => {},
    );
  }

  destroy(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- internals

  #checkOpen(): void {
    if (this.#closed) throw new CaError('ERR_CLOSED', 'the certificate authority is closed');
  }

  #identity(input: SpiffeId | string): string {
    let id: SpiffeId;
    try {
      id = typeof input === 'string' ? SpiffeId.parse(input) : input;
    } catch (err) {
      throw new CaError('ERR_IDENTITY_INVALID', (err as IdentityError).message, { cause: err });
    }
    if (!id.inTrustDomain(this.trustDomain)) {
      throw new CaError(
        'ERR_IDENTITY_INVALID',
        `identity ${id} is not in trust domain ${this.trustDomain}, which this CA serves`,
      );
    }
    return id.toString();
  }

  #ttl(ttl: number | undefined): number {
    if (ttl === undefined) return this.defaultTtl;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
      throw new CaError(
        'ERR_TTL_INVALID',
        `certificate lifetime must be a positive number of milliseconds, got ${String(ttl)}`,
      );
    }
    if (ttl > this.maxTtl) {
      throw new CaError(
        'ERR_TTL_INVALID',
        `requested certificate lifetime ${formatDuration(ttl)} exceeds the maximum of ${formatDuration(this.maxTtl)}: ask for ${formatDuration(this.maxTtl)} or less`,
      );
    }
    return ttl;
  }

  async #issueLeaf(
    spki: Uint8Array,
    names: { uris?: string[]; dnsNames?: string[]; ipAddresses?: string[] },
    identity: string,
    ttl: number,
  ): Promise<IssuedCertificate> {
    const ctx = this.#ctx;
    const now = this.#clock.now();
    const notAfter = Math.min(now + ttl, ctx.chainNotAfter);
    const serial = randomSerial();
    const der = await signCertificate(
      {
        serial,
        issuer: ctx.issuer.subjectName,
        subject: distinguishedName({}),
        notBefore: new Date(now - BACKDATE),
        notAfter: new Date(notAfter),
        spki,
        extensions: [
          keyUsage('leaf'),
          extKeyUsageTls(),
          basicConstraints(false),
          authorityKeyIdentifier(ctx.akid),
          subjectAltName(names, true),
        ],
      },
      ctx.signer,
    );
    const fp = ctx.issuer.fingerprint;
    if ((this.#issuedUntil.get(fp) ?? 0) < notAfter) this.#issuedUntil.set(fp, notAfter);
    const pem = toPem('CERTIFICATE', der);
    const chain = [pem, ...ctx.intermediatePems];
    return {
      identity,
      certificate: pem,
      chain,
      trustBundle: ctx.bundlePem,
      certChain: [...chain, ctx.bundlePem],
      serial: Buffer.from(serial)
        .toString('hex')
        .replace(/^0+(?=.)/, ''),
      notBefore: new Date(Math.floor((now - BACKDATE) / 1000) * 1000),
      notAfter: new Date(Math.floor(notAfter / 1000) * 1000),
    };
  }

  #rootCerts(): CertificateInfo[] {
    return this.#plugged ?? this.#roots.map((r) => r.cert);
  }

  #refreshContext(): void {
    const active = this.#roots.find((r) => r.status === 'active') as RootRecord;
    this.#ctx = makeContext(
      active.cert,
      active.signer as Signer,
      [],
      this.#roots.map((r) => r.cert),
    );
  }

  #activationDelay(): number {
    return this.#opts.rootActivationDelay ?? this.defaultTtl;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#op.then(fn, fn);
    this.#op = run.catch(() => {});
    return run;
  }

  async #introduce(activateAfter: number): Promise<RootRecord> {
    const now = this.#clock.now();
    const root = await createRoot(this.#opts, this.trustDomain, now);
    const rec: RootRecord = {
      cert: root.cert,
      signer: root.signer,
      status: 'next',
      introducedAt: now,
      activateAt: now + Math.max(0, activateAfter),
    };
    await this.#commit([...this.#roots, rec]);
    this.emit('root-introduced', recordInfo(rec));
    this.emit('trust-bundle-changed', this.trustBundle);
    return rec;
  }

  async #advance(): Promise<void> {
    if (this.mode !== 'self-signed' || this.#closed) return;
    const now = this.#clock.now();
    const active = this.#roots.find((r) => r.status === 'active') as RootRecord;
    const threshold = this.#opts.rootRotationThreshold ?? 0.2;
    const autoRotate = this.#opts.autoRotate ?? true;
    if (autoRotate && !this.#roots.some((r) => r.status === 'next') && now >= rotationDue(active.cert, threshold)) {
      await this.#introduce(this.#activationDelay());
    }
    const next = this.#roots.find((r) => r.status === 'next');
    if (next && now >= (next.activateAt as number)) {
      const old = this.#roots.find((r) => r.status === 'active') as RootRecord;
      const lastLeaf = Math.max(this.#issuedUntil.get(old.cert.fingerprint) ?? 0, this.#earlierLeavesUntil);
      const retired: RootRecord = {
        cert: old.cert,
        status: 'retiring',
        introducedAt: old.introducedAt,
        retireAt: Math.max(now, Math.min(old.cert.notAfter.getTime(), lastLeaf)),
      };
      const activated: RootRecord = { ...next, status: 'active' };
      delete activated.activateAt;
      await this.#commit(this.#roots.map((r) => (r === old ? retired : r === next ? activated : r)));
      this.emit('root-activated', recordInfo(activated));
    }
    const gone = this.#roots.filter((r) => r.status === 'retiring' && now >= (r.retireAt as number));
    if (gone.length) {
      await this.#commit(this.#roots.filter((r) => !gone.includes(r)));
      for (const r of gone) this.emit('root-retired', recordInfo(r));
      this.emit('trust-bundle-changed', this.trustBundle);
    }
    this.#schedule();
  }

  async #commit(roots: RootRecord[]): Promise<void> {
    if (this.#stateDir) {
      const previousKeys = this.#roots.flatMap((r) => (r.keyFile ? [r.keyFile] : []));
      await saveState(this.#stateDir, this.trustDomain, roots, previousKeys);
    }
    this.#roots = roots;
    this.#refreshContext();
  }

  #schedule(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#closed || this.mode !== 'self-signed') return;
    const threshold = this.#opts.rootRotationThreshold ?? 0.2;
    const due: number[] = [];
    const active = this.#roots.find((r) => r.status === 'active') as RootRecord;
    const next = this.#roots.find((r) => r.status === 'next');
    if (next) due.push(next.activateAt as number);
    else if (this.#opts.autoRotate ?? true) due.push(rotationDue(active.cert, threshold));
    for (const r of this.#roots) if (r.status === 'retiring') due.push(r.retireAt as number);
    if (!due.length) return;
    const delay = Math.max(0, Math.min(...due) - this.#clock.now());
    this.#timer = this.#clock.setTimer(delay, () => {
      this.maintain().catch((err: Error) => {
        this.emit('maintenance-failed', err);
        // Try again later rather than spinning on a persistent failure (e.g. a read-only state directory).
        this.#timer = this.#clock.setTimer(HOUR, () => void this.maintain().catch(() => {}));
      });
    });
  }
}

function rotationDue(cert: CertificateInfo, threshold: number): number {
  const from = cert.notBefore.getTime();
  const to = cert.notAfter.getTime();
  return to - (to - from) * threshold;
}

function makeContext(
  issuer: CertificateInfo,
  signer: Signer,
  intermediates: CertificateInfo[],
  roots: CertificateInfo[],
): SigningContext {
  const above = [issuer, ...intermediates];
  return {
    issuer,
    signer,
    intermediatePems: intermediates.map((c) => c.pem),
    bundlePem: roots.map((r) => r.pem).join(''),
    chainNotAfter: Math.min(...above.map((c) => c.notAfter.getTime())),
    akid: issuer.keyId,
  };
}

async function createRoot(
  opts: CertificateAuthorityOptions,
  trustDomain: string,
  now: number,
): Promise<{ cert: CertificateInfo; signer: KeySigner }> {
  const signer = new KeySigner(await generateKey(opts.rootKeyType ?? 'ec-p256'));
  const spki = spkiOf(signer.publicKey);
  const keyId = keyIdentifier(spkiKeyBits(spki));
  // A distinct CN per root keeps chain building unambiguous while two roots share the bundle.
  const name = distinguishedName({
    organization: opts.organization ?? trustDomain,
    commonName: `ambient-ts root CA ${randomBytes(4).toString('hex')}`,
  });
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date(now - BACKDATE),
      notAfter: new Date(now + (opts.rootTtl ?? 3650 * DAY)),
      spki,
      extensions: [basicConstraints(true), keyUsage('ca'), subjectKeyIdentifier(keyId), authorityKeyIdentifier(keyId)],
    },
    signer,
  );
  return { cert: parseCertificate(der), signer };
}

/** The subjectPublicKey bits of an SPKI DER (what the key identifier hashes). */
function spkiKeyBits(spki: Buffer): Uint8Array {
  return bitStringBytes(child(children(readWhole(spki, TAG.SEQUENCE)), 1, TAG.BIT_STRING));
}

function rootInfo(c: CertificateInfo, status: RootInfo['status']): RootInfo {
  return {
    certificate: c.pem,
    serial: c.serial,
    fingerprint: c.fingerprint,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    status,
  };
}

function recordInfo(r: RootRecord): RootInfo {
  const info = rootInfo(r.cert, r.status);
  if (r.activateAt !== undefined) info.activateAt = new Date(r.activateAt);
  if (r.retireAt !== undefined) info.retireAt = new Date(r.retireAt);
  return info;
}

function checkDurations(o: CertificateAuthorityOptions): void {
  for (const k of ['rootTtl', 'defaultTtl', 'maxTtl', 'rootActivationDelay'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isFinite(v) || v < 0 || (k !== 'rootActivationDelay' && v === 0))) {
      throw new CaError('ERR_CA_CONFIG_INVALID', `option ${k} must be a positive number of milliseconds, got ${v}`);
    }
  }
  const t = o.rootRotationThreshold;
  if (t !== undefined && !(t > 0 && t < 1)) {
    throw new CaError('ERR_CA_CONFIG_INVALID', `option rootRotationThreshold must be between 0 and 1, got ${t}`);
  }
  if ((o.defaultTtl ?? DAY) > (o.maxTtl ?? 90 * DAY)) {
    throw new CaError('ERR_CA_CONFIG_INVALID', 'option defaultTtl must not exceed maxTtl');
  }
}
