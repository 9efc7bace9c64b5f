import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SpiffeId } from '@ambient-ts/identity';
import { CORE_SCHEMA, load } from 'js-yaml';
import { ControlPlaneError } from './errors.js';

export type ProxyKind = 'ztunnel' | 'waypoint';

/** Who a bootstrap token belongs to. */
export interface ProxyCredential {
  readonly identity: SpiffeId;
  readonly kind: ProxyKind;
  /** Required for a ztunnel: the node whose workloads it serves. */
  readonly node?: string;
}

/** One entry of the --tokens file. Give `sha256` (hex of the token) instead of `token` to keep secrets out. */
export interface TokenFileEntry {
  token?: string;
  sha256?: string;
  identity: string;
  kind: ProxyKind;
  node?: string;
}

/**
 * The bootstrap tokens (the embedded stand-in for Kubernetes service-account tokens): token -> proxy
 * identity, kind and node. Looked up by SHA-256 so the table need not hold secrets in clear.
 */
export class TokenTable {
  readonly #byDigest = new Map<string, ProxyCredential>();
  readonly entries: readonly (ProxyCredential & { sha256: string })[];

  constructor(entries: readonly TokenFileEntry[], source = 'tokens') {
    const list: (ProxyCredential & { sha256: string })[] = [];
    entries.forEach((e, i) => {
      const where = `${source}: entry ${i + 1}`;
      if (!e || typeof e !== 'object') throw bad(`${where} must be a mapping`);
      let digest: string;
      if (typeof e.token === 'string' && e.token.length >= 16) digest = sha256(e.token);
      else if (typeof e.token === 'string') throw bad(`${where}: "token" must be at least 16 characters`);
      else if (typeof e.sha256 === 'string' && /^[0-9a-f]{64}$/i.test(e.sha256)) digest = e.sha256.toLowerCase();
      else throw bad(`${where} needs "token" (the secret) or "sha256" (its hex SHA-256)`);
      let identity: SpiffeId;
      try {
        identity = SpiffeId.parse(e.identity);
      } catch (err) {
        throw bad(`${where}: identity: ${(err as Error).message}`);
      }
      if (e.kind !== 'ztunnel' && e.kind !== 'waypoint') throw bad(`${where}: kind must be "ztunnel" or "waypoint"`);
      if (e.kind === 'ztunnel' && (typeof e.node !== 'string' || e.node === '')) {
        throw bad(`${where}: a ztunnel token needs "node" (the node name, as in Pod spec.nodeName)`);
      }
      if (this.#byDigest.has(digest)) throw bad(`${where}: the same token is listed twice`);
      const cred: ProxyCredential = { identity, kind: e.kind, ...(e.node ? { node: e.node } : {}) };
      this.#byDigest.set(digest, cred);
      list.push({ ...cred, sha256: digest });
    });
    this.entries = list;
  }

  /** Reads a YAML or JSON file: `tokens: [{token, identity, kind, node}]`. */
  static async fromFile(file: string): Promise<TokenTable> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw bad(`--tokens ${file} cannot be read: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = load(text, { schema: CORE_SCHEMA });
    } catch (err) {
      throw bad(`--tokens ${file} is not valid YAML/JSON: ${(err as Error).message}`);
    }
    const tokens = (doc as { tokens?: unknown } | null)?.tokens;
    if (!Array.isArray(tokens)) throw bad(`--tokens ${file} must contain "tokens: [{token, identity, kind, node}]"`);
    return new TokenTable(tokens as TokenFileEntry[], file);
  }

  /** Looked up by digest: no byte-by-byte comparison of secrets. */
  lookup(token: string): ProxyCredential | undefined {
    return this.#byDigest.get(sha256(token));
  }

  get size(): number {
    return this.#byDigest.size;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function bad(message: string): ControlPlaneError {
  return new ControlPlaneError('ERR_CP_TOKENS', message);
}
