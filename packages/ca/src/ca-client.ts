import { readFile } from 'node:fs/promises';
import { SpiffeId } from '@ambient-ts/identity';
import { type CallOptions, Client, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { type CertificateInfo, issuedBy, parseCertificate } from './certificate-info.js';
import { type Clock, systemClock } from './clock.js';
import { createCsr } from './csr.js';
import { CaError } from './errors.js';
import { generateKey, type KeyType, privateKeyPem, spkiOf } from './keys.js';
import { certificateDers } from './pem.js';
import { CREATE_CERTIFICATE_PATH, decodeResponse, encodeRequest, IMPERSONATED_IDENTITY } from './proto.js';
import { TlsChannelCredentials, targetHost } from './tls-channel-credentials.js';
import type { TlsCredentials, WorkloadCertificate } from './workload-certificate.js';

type Source<T> = T | (() => T | Promise<T>);

export interface CaClientOptions {
  /** `host:port` of the CA (the control plane listens on 15012). */
  address: string;
  /** Roots that verify the CA's serving certificate; a function is asked before each call, so a rotated bundle is picked up. */
  trustBundle: Source<string | Buffer>;
  /** Bearer token, or a function returning it per call. */
  token?: Source<string>;
  /** File holding the bearer token, re-read on every call (tokens are rotated on disk). */
  tokenFile?: string;
  /** Sent as `clusterid` metadata. */
  clusterId?: string;
  /** Name to verify in the CA's certificate when it differs from the address host. */
  serverName?: string;
  /** Mesh credentials to present as a TLS client certificate (an existing identity renewing itself). */
  clientCertificate?: () => TlsCredentials | undefined | Promise<TlsCredentials | undefined>;
  /** Ask as a node proxy: put the requested identity in `ImpersonatedIdentity` metadata. Default false. */
  impersonate?: boolean;
  /** Per-call deadline, ms. Default 10 s. */
  timeout?: number;
  clock?: Clock;
}

export interface CreateCertificateOptions {
  /** Requested lifetime, ms (sent in whole seconds); omitted: the CA's default. */
  ttl?: number;
  /** Identity to ask for on behalf of a workload (node proxies only). */
  impersonatedIdentity?: string;
  signal?: AbortSignal;
}

export interface FetchCertificateOptions {
  ttl?: number;
  /** Override the client's `impersonate` setting for this call. */
  impersonate?: boolean;
  keyType?: KeyType;
  signal?: AbortSignal;
}

/** A leaf may start a little in the future when the CA's clock runs ahead of ours. */
const CLOCK_SKEW = 5 * 60_000;

/** Client for Istio's CA API: sends a CSR, verifies the chain it gets back. */
export class CaClient {
  readonly #opts: CaClientOptions;
  readonly #clock: Clock;
  #client: Client | undefined;
  #clientKey = '';
  #closed = false;

  constructor(options: CaClientOptions) {
    if (!options.address)
      throw new CaError('ERR_CA_CONFIG_INVALID', 'CaClient: address is required (host:port of the CA)');
    this.#opts = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Sends one CreateCertificate call; returns the raw chain (leaf first, trust bundle last). */
  async createCertificate(csr: string, options: CreateCertificateOptions = {}): Promise<string[]> {
    if (this.#closed) throw new CaError('ERR_CLOSED', 'the CA client is closed');
    if (options.signal?.aborted) throw aborted(options.signal);
    const metadata = new Metadata();
    const token = await this.#token();
    if (token) metadata.set('authorization', `Bearer ${token}`);
    if (this.#opts.clusterId) metadata.set('clusterid', this.#opts.clusterId);
    const request = encodeRequest({
      csr,
      validityDuration: options.ttl === undefined ? 0 : Math.ceil(options.ttl / 1000),
      metadata: options.impersonatedIdentity ? { [IMPERSONATED_IDENTITY]: options.impersonatedIdentity } : {},
    });
    const client = await this.#connect();
    const callOptions: CallOptions = { deadline: Date.now() + (this.#opts.timeout ?? 10_000) };
    const response = await new Promise<Buffer>((resolve, reject) => {
      const call = client.makeUnaryRequest(
        CREATE_CERTIFICATE_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        request,
        metadata,
        callOptions,
        (err: ServiceError | null, value?: Buffer) => {
          options.signal?.removeEventListener('abort', onAbort);
          if (err) reject(options.signal?.aborted ? aborted(options.signal) : fromStatus(err));
          else resolve(value ?? Buffer.alloc(0));
        },
      );
      const onAbort = (): void => call.cancel();
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return decodeResponse(response);
    } catch (err) {
      throw new CaError(
        'ERR_CA_RESPONSE_INVALID',
        `CA response is not an IstioCertificateResponse: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /**
   * Generates a key here (it never leaves the process), asks the CA for a certificate for `identity`, and
   * verifies the answer: the chain must lead to a root of the returned trust bundle, and the leaf must carry
   * `identity` and our public key.
   */
  async fetchCertificate(
    identity: SpiffeId | string,
    options: FetchCertificateOptions = {},
  ): Promise<WorkloadCertificate> {
    const id = typeof identity === 'string' ? SpiffeId.parse(identity) : identity;
    const key = await generateKey(options.keyType ?? 'ec-p256');
    const csr = createCsr(key, id.toString());
    const impersonate = options.impersonate ?? this.#opts.impersonate ?? false;
    const chain = await this.createCertificate(csr, {
      ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
      ...(impersonate ? { impersonatedIdentity: id.toString() } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const verified = verifyIssuedChain(chain, id.toString(), spkiOf(key), this.#clock.now());
    return {
      identity: id.toString(),
      key: privateKeyPem(key),
      certChain: verified.chain.map((c) => c.pem).join(''),
      trustBundle: verified.roots.map((c) => c.pem).join(''),
      serial: verified.leaf.serial,
      notBefore: verified.leaf.notBefore,
      notAfter: verified.leaf.notAfter,
    };
  }

  close(): void {
    this.#closed = true;
    this.#client?.close();
    this.#client = undefined;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  async #token(): Promise<string | undefined> {
    if (this.#opts.tokenFile) {
      try {
        return (await readFile(this.#opts.tokenFile, 'utf8')).trim();
      } catch (err) {
        throw new CaError(
          'ERR_TOKEN_FILE_INVALID',
          `cannot read token file ${this.#opts.tokenFile}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const t = this.#opts.token;
    return typeof t === 'function' ? await t() : t;
  }

  /** One channel, rebuilt when the trust bundle or the client certificate changes. */
  async #connect(): Promise<Client> {
    const b = this.#opts.trustBundle;
    const bundle = Buffer.from(typeof b === 'function' ? await b() : b);
    const mine = await this.#opts.clientCertificate?.();
    const key = `${bundle.toString('base64')}|${mine ? String(mine.certChain) : ''}`;
    if (this.#client && key === this.#clientKey) return this.#client;
    this.#client?.close();
    // Our own credentials rather than createSsl: the same verification, but no SNI for an IP address (DEP0123).
    const creds = new TlsChannelCredentials({
      serverName: this.#opts.serverName || targetHost(this.#opts.address),
      trustBundle: bundle,
      ...(mine ? { clientCertificate: { key: mine.key, certChain: mine.certChain } } : {}),
    });
    const channelOptions: Record<string, string | number> = {};
    if (this.#opts.serverName) channelOptions['grpc.default_authority'] = this.#opts.serverName;
    this.#client = new Client(this.#opts.address, creds, channelOptions);
    this.#clientKey = key;
    return this.#client;
  }
}

export interface VerifiedChain {
  leaf: CertificateInfo;
  /** Leaf then intermediates. */
  chain: CertificateInfo[];
  roots: CertificateInfo[];
}

/**
 * Verifies an Istio-form chain (leaf, intermediates…, trust bundle): each certificate is signed by the next,
 * the last by a root of the bundle, all valid at `now`; the leaf names `identity` and holds `spki`.
 */
export function verifyIssuedChain(
  certChain: string[],
  identity: string,
  spki: Uint8Array | undefined,
  now: number,
): VerifiedChain {
  const bad = (why: string, cause?: unknown): CaError =>
    new CaError('ERR_CA_RESPONSE_INVALID', `CA returned an unusable certificate chain: ${why}`, { cause });
  if (certChain.length < 2) throw bad(`expected the leaf and the trust bundle, got ${certChain.length} element(s)`);
  let parsed: CertificateInfo[][];
  try {
    parsed = certChain.map((pem) => certificateDers(pem).map((d) => parseCertificate(d)));
  } catch (err) {
    throw bad((err as Error).message, err);
  }
  const roots = parsed[parsed.length - 1] as CertificateInfo[];
  const chain = parsed.slice(0, -1).flat();
  const leaf = chain[0];
  if (!leaf || roots.length === 0) throw bad('the leaf or the trust bundle is empty');
  if (leaf.uris[0] !== identity) throw bad(`the leaf is for ${leaf.uris[0] ?? 'no identity'}, not ${identity}`);
  if (spki && !leaf.spki.equals(Buffer.from(spki))) throw bad('the leaf does not hold the public key of our request');
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i] as CertificateInfo;
    if (now + CLOCK_SKEW < c.notBefore.getTime() || now >= c.notAfter.getTime()) {
      throw bad(`certificate ${i} (serial ${c.serial}) is not valid now`);
    }
    const parent = chain[i + 1];
    if (parent ? !issuedBy(c, parent) : !roots.some((r) => issuedBy(c, r))) {
      throw bad(
        parent
          ? `certificate ${i} is not signed by certificate ${i + 1}`
          : 'the chain does not lead to a root of the trust bundle',
      );
    }
  }
  return { leaf, chain, roots };
}

function fromStatus(err: ServiceError): CaError {
  const refused = [
    status.UNAUTHENTICATED,
    status.PERMISSION_DENIED,
    status.INVALID_ARGUMENT,
    status.RESOURCE_EXHAUSTED,
    status.FAILED_PRECONDITION,
  ].includes(err.code);
  return refused
    ? new CaError('ERR_CA_REFUSED', `CA refused the request (${status[err.code]}): ${err.details}`, {
        cause: err,
        grpcCode: err.code,
      })
    : new CaError('ERR_CA_UNAVAILABLE', `CA call failed (${status[err.code]}): ${err.details}`, {
        cause: err,
        grpcCode: err.code,
      });
}

function aborted(signal: AbortSignal): CaError {
  return new CaError('ERR_ABORTED', 'the CA request was aborted', { cause: signal.reason });
}
