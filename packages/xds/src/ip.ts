import { isIP } from 'node:net';
import { XdsError } from './errors.js';

/**
 * Istio's workload API carries IPs as raw network-order bytes: 4 for IPv4, 16 for IPv6.
 * These helpers convert between those bytes and the usual text forms.
 */
export function parseIp(text: string): Buffer {
  const kind = isIP(text);
  if (kind === 4) return Buffer.from(text.split('.').map((p) => Number(p)));
  if (kind === 6) return parseIpv6(text);
  throw new XdsError('ERR_XDS_INVALID_IP', `"${text}" is not an IPv4 or IPv6 address (give e.g. 10.0.0.1 or fd00::1)`);
}

function parseIpv6(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes the last two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIp(tail);
    s = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head = '', rest] = s.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? headGroups
      : [...headGroups, ...new Array<string>(8 - headGroups.length - restGroups.length).fill('0'), ...restGroups];
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

/** Formats 4 or 16 address bytes; IPv6 in RFC 5952 canonical form (longest zero run compressed). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) {
    throw new XdsError('ERR_XDS_INVALID_IP', `an IP address has 4 or 16 bytes, got ${bytes.length}`);
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** True when the byte string is a well-formed IP address (IPv4 or IPv6). */
export function isIpBytes(bytes: Uint8Array): boolean {
  return bytes.length === 4 || bytes.length === 16;
}

/** A CIDR prefix as the authorization API carries it: address bytes plus prefix length. */
export interface IpPrefix {
  address: Uint8Array;
  length: number;
}

/** Parses `10.0.0.0/8`, `fd00::/64`, or a bare address (full-length prefix). */
export function parseCidr(text: string): IpPrefix {
  const slash = text.indexOf('/');
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  const max = address.length * 8;
  if (slash < 0) return { address, length: max };
  const lenText = text.slice(slash + 1);
  const length = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || length > max) {
    throw new XdsError('ERR_XDS_INVALID_IP', `"${text}": the prefix length must be 0..${max}`);
  }
  return { address, length };
}

export function formatCidr(prefix: IpPrefix): string {
  return `${formatIp(prefix.address)}/${prefix.length}`;
}
