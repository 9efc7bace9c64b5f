import { isIP } from 'node:net';
import { HboneError } from './errors.js';

/** A parsed CONNECT `:authority`: an IP socket address, or (fallback) a DNS name and port. */
export interface HboneAuthority {
  /** IP address (IPv6 without brackets) or DNS name. */
  host: string;
  port: number;
  /** 4 or 6 for an IP address, 0 for a DNS name. */
  family: 0 | 4 | 6;
}

const PORT_RE = /^[0-9]{1,5}$/;
// RFC 1123 host names: letters, digits and hyphens per label, labels <= 63, whole name <= 253.
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Formats a destination as HBONE's `:authority`: `10.0.0.1:8080`, `[fd00::1]:8080`.
 * Throws ERR_HBONE_BAD_HEADER when `host` is not an IP address or DNS name, or the port is out of range.
 */
export function formatAuthority(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw bad(`port ${String(port)} is out of range: use an integer 1..65535`);
  }
  const family = isIP(host);
  if (family === 6) return `[${host}]:${port}`;
  if (family === 4 || isHostname(host)) return `${host}:${port}`;
  throw bad(`host ${JSON.stringify(host)} is neither an IP address nor a DNS name`);
}

/**
 * Parses `:authority` as ztunnel does: first as a socket address (`ip:port`, `[ipv6]:port`), then as
 * `host:port`. Throws ERR_HBONE_BAD_HEADER on anything else (missing or bad port, IPv6 without brackets,
 * zone ids, userinfo, spaces…).
 */
export function parseAuthority(value: string): HboneAuthority {
  if (typeof value !== 'string' || value.length === 0) throw bad('authority is empty: expected <ip>:<port>');
  if (value.length > 300) throw bad(`authority is ${value.length} characters long: expected <ip>:<port>`);
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') throw bad(`authority ${quote(value)} must be [<ipv6>]:<port>`);
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    // Zone ids (fe80::1%eth0) name a local interface: meaningless to the receiver, so refused.
    if (isIP(host) !== 6 || host.includes('%')) {
      throw bad(`authority ${quote(value)}: ${quote(host)} is not an IPv6 address`);
    }
  } else {
    const colon = value.lastIndexOf(':');
    if (colon < 0) throw bad(`authority ${quote(value)} has no port: expected <ip>:<port>`);
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':'))
      throw bad(`authority ${quote(value)}: an IPv6 address must be in brackets, [<ipv6>]:<port>`);
    if (isIP(host) !== 4 && !isHostname(host)) {
      throw bad(`authority ${quote(value)}: ${quote(host)} is neither an IPv4 address nor a DNS name`);
    }
  }
  if (!PORT_RE.test(portText)) throw bad(`authority ${quote(value)} has no valid port`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(`authority ${quote(value)}: port ${port} is out of range 1..65535`);
  const ipFamily = isIP(host);
  return { host, port, family: ipFamily === 4 || ipFamily === 6 ? ipFamily : 0 };
}

function isHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  // An all-numeric dotted name would be a malformed IPv4 address, not a host name.
  if (labels.every((l) => /^[0-9]+$/.test(l))) return false;
  return labels.every((l) => LABEL_RE.test(l));
}

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function bad(message: string): HboneError {
  return new HboneError('ERR_HBONE_BAD_HEADER', message);
}
