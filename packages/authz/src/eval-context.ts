import type { ConnectionAttributes, RequestAttributes } from './attributes.js';
import { type IpAddress, parseIp } from './ip.js';
import { normalizePath, type PathNormalization } from './path.js';

/** Thrown inside evaluation when the request itself is unusable; becomes a `deny` with reason `invalid-request`. */
export class InvalidRequest {
  constructor(readonly message: string) {}
}

const SPIFFE = 'spiffe://';

/**
 * Per-decision view of the attributes: each derived value (parsed identity, parsed address, normalized path,
 * lower-cased headers) is computed at most once, and only when some applicable rule asks for it.
 */
export class EvalContext {
  readonly attrs: RequestAttributes;
  readonly #normalization: PathNormalization;
  #idParsed = false;
  #principal = '';
  #namespace = '';
  #serviceAccount = '';
  #srcIp: IpAddress | undefined;
  #dstIp: IpAddress | undefined;
  #remoteIp: IpAddress | undefined;
  #path: string | undefined;
  #host: string | undefined;
  #headers: Map<string, string> | undefined;
  #auth: { principal: string; audiences: readonly string[]; presenter: string } | undefined;

  constructor(attrs: ConnectionAttributes | RequestAttributes, normalization: PathNormalization) {
    this.attrs = attrs as RequestAttributes;
    this.#normalization = normalization;
  }

  #parseIdentity(): void {
    this.#idParsed = true;
    const id = this.attrs.sourceIdentity;
    if (id === undefined || id === null || id === '') return;
    if (typeof id === 'object') {
      this.#principal = id.principal;
      this.#namespace = id.namespace;
      this.#serviceAccount = id.serviceAccount;
      return;
    }
    if (typeof id !== 'string') throw new InvalidRequest('source identity is neither a SpiffeId nor a string');
    const p = id.startsWith(SPIFFE) ? id.slice(SPIFFE.length) : id;
    // <td>/ns/<ns>/sa/<sa>, each segment non-empty.
    const a = p.indexOf('/');
    const ok =
      a > 0 &&
      p.startsWith('/ns/', a) &&
      (() => {
        const b = p.indexOf('/', a + 4);
        if (b <= a + 4 || !p.startsWith('/sa/', b)) return false;
        const sa = p.slice(b + 4);
        if (sa === '' || sa.includes('/')) return false;
        this.#namespace = p.slice(a + 4, b);
        this.#serviceAccount = sa;
        return true;
      })();
    if (!ok) throw new InvalidRequest(`source identity ${JSON.stringify(id)} is not spiffe://<td>/ns/<ns>/sa/<sa>`);
    this.#principal = p;
  }

  /** `td/ns/x/sa/y`, or '' without identity. */
  get principal(): string {
    if (!this.#idParsed) this.#parseIdentity();
    return this.#principal;
  }
  get sourceNamespace(): string {
    if (!this.#idParsed) this.#parseIdentity();
    return this.#namespace;
  }
  /** `ns/sa`, or '' without identity. */
  get namespacedServiceAccount(): string {
    if (!this.#idParsed) this.#parseIdentity();
    return this.#namespace === '' ? '' : `${this.#namespace}/${this.#serviceAccount}`;
  }

  #ip(value: string | undefined, what: string): IpAddress {
    if (value === undefined || value === '') {
      throw new InvalidRequest(`a policy matches on the ${what} but the ${what} was not given`);
    }
    const ip = parseIp(value);
    if (!ip) throw new InvalidRequest(`${what} ${JSON.stringify(value)} is not an IP address`);
    return ip;
  }
  get sourceIp(): IpAddress {
    if (this.#srcIp === undefined) this.#srcIp = this.#ip(this.attrs.sourceIp, 'source IP');
    return this.#srcIp;
  }
  get destinationIp(): IpAddress {
    if (this.#dstIp === undefined) this.#dstIp = this.#ip(this.attrs.destinationIp, 'destination IP');
    return this.#dstIp;
  }
  get remoteIp(): IpAddress {
    if (this.#remoteIp === undefined) {
      const r = this.attrs.remoteIp;
      this.#remoteIp = r === undefined || r === '' ? this.sourceIp : this.#ip(r, 'remote IP');
    }
    return this.#remoteIp;
  }
  get destinationPort(): number {
    const p = this.attrs.destinationPort;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 65535) {
      throw new InvalidRequest(
        p === undefined
          ? 'a policy matches on the destination port but none was given'
          : `destination port ${p} is invalid`,
      );
    }
    return p;
  }

  get method(): string {
    return this.attrs.method ?? '';
  }
  get host(): string {
    if (this.#host === undefined) this.#host = (this.attrs.host ?? '').toLowerCase();
    return this.#host;
  }
  get sni(): string {
    return this.attrs.sni ?? '';
  }
  /** The normalized path; a path the normalization rejects (e.g. `%00`) makes the request invalid. */
  get path(): string {
    if (this.#path === undefined) {
      const raw = this.attrs.path ?? '/';
      const p = normalizePath(raw, this.#normalization);
      if (p === undefined)
        throw new InvalidRequest(`path ${JSON.stringify(raw.slice(0, 200))} is rejected by path normalization`);
      this.#path = p;
    }
    return this.#path;
  }

  /** A header's value (repeated headers joined by `,`), or undefined when absent. `name` is lower-case. */
  header(name: string): string | undefined {
    const h = this.attrs.headers;
    if (!h) return undefined;
    if (this.#headers === undefined) {
      const m = new Map<string, string>();
      for (const k of Object.keys(h)) {
        const v = h[k];
        if (v === undefined) continue;
        const text = typeof v === 'string' ? v : v.join(',');
        const lk = k.toLowerCase();
        const prev = m.get(lk);
        m.set(lk, prev === undefined ? text : `${prev},${text}`);
      }
      this.#headers = m;
    }
    return this.#headers.get(name);
  }

  #authInfo(): { principal: string; audiences: readonly string[]; presenter: string } {
    if (this.#auth === undefined) {
      const a = this.attrs.auth;
      const claims = a?.claims ?? {};
      const iss = claims.iss;
      const sub = claims.sub;
      const principal =
        a?.principal ??
        (typeof iss === 'string' && typeof sub === 'string' && iss !== '' && sub !== '' ? `${iss}/${sub}` : '');
      const aud =
        a?.audiences ??
        (typeof claims.aud === 'string'
          ? [claims.aud]
          : Array.isArray(claims.aud)
            ? claims.aud.filter((x): x is string => typeof x === 'string')
            : []);
      const presenter = a?.presenter ?? (typeof claims.azp === 'string' ? claims.azp : '');
      this.#auth = { principal, audiences: aud, presenter };
    }
    return this.#auth;
  }
  get requestPrincipal(): string {
    return this.#authInfo().principal;
  }
  get audiences(): readonly string[] {
    return this.#authInfo().audiences;
  }
  get presenter(): string {
    return this.#authInfo().presenter;
  }
  /** A claim's values as strings (a list claim gives each element), following nested `[a][b]` paths. */
  claim(path: readonly string[]): string[] {
    let v: unknown = this.attrs.auth?.claims;
    for (const seg of path) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return [];
      v = (v as Record<string, unknown>)[seg];
    }
    if (typeof v === 'string') return [v];
    if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
    if (Array.isArray(v))
      return v.filter((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean').map(String);
    return [];
  }
}
