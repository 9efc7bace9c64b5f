import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SpiffeId } from '@ambient-ts/identity';
import type { CertificateAuthority } from './certificate-authority.js';
import { CaError } from './errors.js';

/** What an authenticator sees of one call. */
export interface CallContext {
  /** First value of a gRPC metadata key (lowercase name), or undefined. */
  metadata(name: string): string | undefined;
  /** DER of the TLS client certificate, when the caller presented one. */
  peerCertificate?: Buffer;
  /** Remote address, `ip:port`. */
  peer: string;
}

/** Who the caller is. */
export interface AuthenticatedCaller {
  identity: SpiffeId;
  /** The node the caller runs on, when its credential says so: required to impersonate workloads. */
  node?: string;
  /** Name of the authenticator that accepted the caller (for logs and metrics). */
  authenticator: string;
}

/**
 * Turns a call's credentials into an identity. Return undefined when the call carries no credential of
 * this kind (the next authenticator is tried); throw a CaError ERR_UNAUTHENTICATED when it carries one
 * that is not valid.
 */
export interface Authenticator {
  readonly name: string;
  authenticate(call: CallContext): AuthenticatedCaller | undefined | Promise<AuthenticatedCaller | undefined>;
}

/** One accepted bearer token. Give `sha256` (hex of the token) instead of `token` to keep secrets out of the file. */
export interface TokenEntry {
  token?: string;
  sha256?: string;
  /** SPIFFE ID the token authenticates as. */
  identity: string;
  /** Node name, for node proxies (ztunnel) that may then impersonate workloads on that node. */
  node?: string;
}

const BEARER_RE = /^Bearer\s+(\S+)\s*$/i;

/** The bearer token of a call, or undefined when there is no authorization header. */
export function bearerToken(call: CallContext): string | undefined {
  const header = call.metadata('authorization');
  if (header === undefined) return undefined;
  const m = BEARER_RE.exec(header);
  if (!m) throw new CaError('ERR_UNAUTHENTICATED', 'authorization metadata must be "Bearer <token>"');
  return m[1];
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Bearer tokens from a table (the embedded stand-in for Kubernetes service-account tokens). Tokens are
 * looked up by their SHA-256, so the table never needs to hold them in clear and lookups do not compare
 * secrets byte by byte.
 */
export class TokenAuthenticator implements Authenticator {
  readonly name = 'token';
  #table = new Map<string, { identity: SpiffeId; node?: string }>();
  readonly #file: string | undefined;

  constructor(entries: TokenEntry[] = [], file?: string) {
    this.#file = file;
    this.#table = buildTable(entries, file ?? 'token table');
  }

  /**
   * Reads a JSON token file: `{ "tokens": [{ "token": "…", "identity": "spiffe://…", "node": "node-1" }] }`.
   * Call {@link TokenAuthenticator.reload} after the file changes.
   */
  static async fromFile(file: string): Promise<TokenAuthenticator> {
    return new TokenAuthenticator(await readTokenFile(file), file);
  }

  /** Re-reads the token file; on error the previous table stays in force and the error is thrown. */
  async reload(): Promise<void> {
    if (!this.#file) throw new CaError('ERR_TOKEN_FILE_INVALID', 'this TokenAuthenticator was not created from a file');
    this.#table = buildTable(await readTokenFile(this.#file), this.#file);
  }

  /** Adds or replaces one token at run time. */
  set(entry: TokenEntry): void {
    for (const [k, v] of buildTable([entry], 'token entry')) this.#table.set(k, v);
  }

  authenticate(call: CallContext): AuthenticatedCaller | undefined {
    const token = bearerToken(call);
    if (token === undefined) return undefined;
    const hit = this.#table.get(tokenDigest(token));
    if (!hit)
      throw new CaError(
        'ERR_UNAUTHENTICATED',
        'bearer token is not known to this CA: check the token file of the caller',
      );
    return hit.node === undefined
      ? { identity: hit.identity, authenticator: this.name }
      : { identity: hit.identity, node: hit.node, authenticator: this.name };
  }
}

/** Authenticates a caller by the mesh certificate it presents in TLS: an existing identity renews itself. */
export class ClientCertificateAuthenticator implements Authenticator {
  readonly name = 'client-certificate';
  readonly #ca: Pick<CertificateAuthority, 'verifyCertificate'>;

  constructor(ca: Pick<CertificateAuthority, 'verifyCertificate'>) {
    this.#ca = ca;
  }

  authenticate(call: CallContext): AuthenticatedCaller | undefined {
    if (!call.peerCertificate) return undefined;
    return { identity: this.#ca.verifyCertificate(call.peerCertificate), authenticator: this.name };
  }
}

async function readTokenFile(file: string): Promise<TokenEntry[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new CaError(
      'ERR_TOKEN_FILE_INVALID',
      `token file ${file} cannot be read as JSON: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const tokens = (doc as { tokens?: unknown })?.tokens;
  if (!Array.isArray(tokens)) {
    throw new CaError(
      'ERR_TOKEN_FILE_INVALID',
      `token file ${file} must be {"tokens": [{"token"|"sha256", "identity", "node"?}]}`,
    );
  }
  return tokens as TokenEntry[];
}

function buildTable(entries: TokenEntry[], source: string): Map<string, { identity: SpiffeId; node?: string }> {
  const table = new Map<string, { identity: SpiffeId; node?: string }>();
  entries.forEach((e, i) => {
    const where = `${source}, entry ${i + 1}`;
    if (!e || typeof e !== 'object') throw new CaError('ERR_TOKEN_FILE_INVALID', `${where} is not an object`);
    let digest: string;
    if (typeof e.token === 'string' && e.token.length > 0) digest = tokenDigest(e.token);
    else if (typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/i.test(e.sha256)) digest = e.sha256.toLowerCase();
    else throw new CaError('ERR_TOKEN_FILE_INVALID', `${where} needs "token" or a hex "sha256"`);
    let identity: SpiffeId;
    try {
      identity = SpiffeId.parse(e.identity);
    } catch (err) {
      throw new CaError('ERR_TOKEN_FILE_INVALID', `${where}: ${(err as Error).message}`, { cause: err });
    }
    if (e.node !== undefined && (typeof e.node !== 'string' || e.node.length === 0)) {
      throw new CaError('ERR_TOKEN_FILE_INVALID', `${where}: "node" must be a non-empty string`);
    }
    table.set(digest, e.node === undefined ? { identity } : { identity, node: e.node });
  });
  return table;
}
