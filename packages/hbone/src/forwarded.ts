import { isIP } from 'node:net';
import { HboneError } from './errors.js';

/** A node in a `forwarded` parameter (RFC 7239 §6): an IP address, `unknown` or an obfuscated `_name`. */
export interface ForwardedNode {
  /** IP address (IPv6 without brackets), `unknown`, or an obfuscated identifier starting with `_`. */
  address: string;
  /** Port, when given as a number (obfuscated ports are dropped). */
  port?: number;
}

/** One element of the `forwarded` header; HBONE sends exactly one: `for="<src ip>:<src port>"[;host=<svc>]`. */
export interface ForwardedElement {
  for?: ForwardedNode;
  by?: ForwardedNode;
  host?: string;
  proto?: string;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNQUOTED_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:[\]]+$/;
const OBF_RE = /^_[A-Za-z0-9._-]+$/;
const PORT_RE = /^[0-9]{1,5}$/;
const MAX_FORWARDED_BYTES = 8192;

/**
 * Builds `for="<ip>:<port>"` (IPv6 in brackets), with `;host=<host>` when given, as ztunnel does.
 * Throws ERR_HBONE_BAD_HEADER when the address is not an IP or the port/host is invalid.
 */
export function buildForwarded(e: { for: ForwardedNode; host?: string; proto?: string }): string {
  // ztunnel always quotes `for` (it carries ':' whenever a port is present).
  const parts = [`for=${quoted(formatNode(e.for))}`];
  if (e.host !== undefined) {
    if (typeof e.host !== 'string' || e.host.length === 0 || hasControlChar(e.host)) {
      throw bad('forwarded host must be a non-empty string without control characters');
    }
    parts.push(`host=${quoteValue(e.host)}`);
  }
  if (e.proto !== undefined) {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(e.proto))
      throw bad(`forwarded proto ${JSON.stringify(e.proto)} is not a URI scheme`);
    parts.push(`proto=${e.proto}`);
  }
  return parts.join(';');
}

/**
 * Parses a `forwarded` header (RFC 7239) into its elements, first (closest to the client) first.
 * Parameter names are case-insensitive; unknown parameters are ignored. Throws ERR_HBONE_BAD_HEADER on
 * bad syntax (unterminated quotes, missing `=`, repeated parameter) or a bad node in `for`/`by`.
 */
export function parseForwarded(value: string): ForwardedElement[] {
  if (typeof value !== 'string') throw bad('forwarded must be a string');
  if (value.length > MAX_FORWARDED_BYTES)
    throw bad(`forwarded is ${value.length} bytes; at most ${MAX_FORWARDED_BYTES} are accepted`);
  const elements: ForwardedElement[] = [];
  let current: ForwardedElement = {};
  let seen = new Set<string>();
  let i = 0;
  const n = value.length;
  const skipWs = (): void => {
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
  };
  for (;;) {
    skipWs();
    // A pair: token "=" (token | quoted-string); empty pairs between separators are allowed by the grammar.
    if (i < n && value[i] !== ';' && value[i] !== ',') {
      const eq = value.indexOf('=', i);
      if (eq < 0) throw bad(`forwarded ${short(value)}: parameter without "="`);
      const name = value.slice(i, eq).trim().toLowerCase();
      if (!TOKEN_RE.test(name)) throw bad(`forwarded ${short(value)}: bad parameter name ${JSON.stringify(name)}`);
      i = eq + 1;
      let v: string;
      if (value[i] === '"') {
        let out = '';
        i++;
        for (;;) {
          if (i >= n) throw bad(`forwarded ${short(value)}: unterminated quoted string`);
          const c = value[i]!;
          if (c === '"') break;
          if (c === '\\') {
            i++;
            if (i >= n) throw bad(`forwarded ${short(value)}: unterminated quoted string`);
          }
          out += value[i];
          i++;
        }
        i++;
        v = out;
      } else {
        const start = i;
        while (i < n && value[i] !== ';' && value[i] !== ',' && value[i] !== ' ' && value[i] !== '\t') i++;
        v = value.slice(start, i);
        // Lenient: an unquoted `for=1.2.3.4:80` (strictly it must be quoted) is accepted, nothing else.
        if (!UNQUOTED_RE.test(v))
          throw bad(`forwarded ${short(value)}: value of ${name} must be a token or a quoted string`);
      }
      if (seen.has(name)) throw bad(`forwarded ${short(value)}: parameter ${name} repeated in one element`);
      seen.add(name);
      assign(current, name, v, value);
      skipWs();
    }
    if (i >= n) break;
    const sep = value[i];
    i++;
    if (sep === ',') {
      elements.push(current);
      current = {};
      seen = new Set();
    } else if (sep !== ';') {
      throw bad(`forwarded ${short(value)}: expected ";" or "," at offset ${i - 1}`);
    }
  }
  elements.push(current);
  return elements.filter((e) => Object.keys(e).length > 0);
}

function assign(e: ForwardedElement, name: string, v: string, whole: string): void {
  switch (name) {
    case 'for':
      e.for = parseNode(v, whole);
      return;
    case 'by':
      e.by = parseNode(v, whole);
      return;
    case 'host':
      if (v.length === 0) throw bad(`forwarded ${short(whole)}: empty host`);
      e.host = v;
      return;
    case 'proto':
      e.proto = v;
      return;
  }
}

function parseNode(v: string, whole: string): ForwardedNode {
  let name: string;
  let port: string | undefined;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0) throw bad(`forwarded ${short(whole)}: unterminated IPv6 address`);
    name = v.slice(1, close);
    if (isIP(name) !== 6 || name.includes('%'))
      throw bad(`forwarded ${short(whole)}: ${JSON.stringify(name)} is not an IPv6 address`);
    const rest = v.slice(close + 1);
    if (rest.length > 0) {
      if (rest[0] !== ':') throw bad(`forwarded ${short(whole)}: junk after IPv6 address`);
      port = rest.slice(1);
    }
  } else {
    const colon = v.indexOf(':');
    name = colon < 0 ? v : v.slice(0, colon);
    port = colon < 0 ? undefined : v.slice(colon + 1);
    if (isIP(name) !== 4 && name !== 'unknown' && !OBF_RE.test(name)) {
      throw bad(
        `forwarded ${short(whole)}: node ${JSON.stringify(v)} is not an IPv4 address, [IPv6], "unknown" or "_obfuscated"`,
      );
    }
  }
  if (port === undefined) return { address: name };
  if (OBF_RE.test(port)) return { address: name };
  if (!PORT_RE.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw bad(`forwarded ${short(whole)}: bad port ${JSON.stringify(port)}`);
  }
  return { address: name, port: Number(port) };
}

function formatNode(node: ForwardedNode): string {
  const family = isIP(node.address);
  if (family === 0 && node.address !== 'unknown' && !OBF_RE.test(node.address)) {
    throw bad(`forwarded node ${JSON.stringify(node.address)} is not an IP address, "unknown" or "_obfuscated"`);
  }
  const name = family === 6 ? `[${node.address}]` : node.address;
  if (node.port === undefined) return name;
  if (!Number.isInteger(node.port) || node.port < 1 || node.port > 65535) {
    throw bad(`forwarded port ${String(node.port)} is out of range 1..65535`);
  }
  return `${name}:${node.port}`;
}

function quoteValue(v: string): string {
  // RFC 7239: a value that is not a token (e.g. contains ':' or '[') must be a quoted-string.
  return TOKEN_RE.test(v) ? v : quoted(v);
}

function quoted(v: string): string {
  return `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function short(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function bad(message: string): HboneError {
  return new HboneError('ERR_HBONE_BAD_HEADER', message);
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
