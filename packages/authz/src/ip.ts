/**
 * IPv4/IPv6 addresses and CIDR blocks, parsed once and matched with integer compares. An IPv4-mapped IPv6
 * address (`::ffff:10.1.2.3`, what a dual-stack Node socket reports for an IPv4 peer) is treated as the IPv4
 * address it carries, so `10.0.0.0/8` matches it; a mapped block of /96 or longer likewise becomes IPv4.
 */

/** An address as four 32-bit words, most significant first; IPv4 uses only `w3`. */
export interface IpAddress {
  readonly v6: boolean;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

export interface Cidr extends IpAddress {
  /** Prefix length in bits (0..32 for IPv4, 0..128 for IPv6). */
  readonly bits: number;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const BITS = /^(0|[1-9][0-9]{0,2})$/;

function parseV4(s: string): number | undefined {
  // Fast path without split/regex for the common case; strict: four decimal octets, no leading zeros.
  let value = 0;
  let octet = 0;
  let digits = 0;
  let parts = 0;
  let leadingZero = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || parts === 3) return undefined;
      value = value * 256 + octet;
      parts++;
      octet = 0;
      digits = 0;
      leadingZero = false;
      continue;
    }
    if (c < 48 || c > 57) return undefined;
    if (digits === 1 && leadingZero) return undefined;
    if (digits === 0) leadingZero = c === 48;
    octet = octet * 10 + (c - 48);
    digits++;
    if (octet > 255) return undefined;
  }
  if (digits === 0 || parts !== 3) return undefined;
  return value * 256 + octet;
}

function parseV6(input: string): [number, number, number, number] | undefined {
  let s = input;
  let tailV4: number | undefined;
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.indexOf('.', lastColon) >= 0) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  let groups: string[];
  if (dbl >= 0) {
    const head = s.slice(0, dbl);
    const tail = s.slice(dbl + 2);
    const h = head === '' ? [] : head.split(':');
    const t = tail === '' ? [] : tail.split(':');
    const missing = 8 - h.length - t.length;
    if (missing < 1) return undefined;
    groups = [...h, ...new Array<string>(missing).fill('0'), ...t];
  } else {
    groups = s.split(':');
  }
  if (groups.length !== 8) return undefined;
  const n: number[] = [];
  for (const g of groups) {
    if (!HEX_GROUP.test(g)) return undefined;
    n.push(Number.parseInt(g, 16));
  }
  const w = [0, 0, 0, 0] as [number, number, number, number];
  for (let i = 0; i < 4; i++) w[i] = ((n[2 * i] as number) * 0x10000 + (n[2 * i + 1] as number)) >>> 0;
  if (tailV4 !== undefined) w[3] = tailV4 >>> 0;
  return w;
}

function isV4Mapped(w: readonly number[]): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/** Parses `10.1.2.3`, `2001:db8::1`, `::ffff:10.1.2.3` (→ IPv4), `[::1]`, `fe80::1%eth0` (zone dropped). */
export function parseIp(input: string): IpAddress | undefined {
  if (typeof input !== 'string' || input.length === 0 || input.length > 64) return undefined;
  const v4 = parseV4(input);
  if (v4 !== undefined) return { v6: false, w0: 0, w1: 0, w2: 0, w3: v4 };
  let s = input;
  if (s.charCodeAt(0) === 91 /* [ */ && s.charCodeAt(s.length - 1) === 93) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.indexOf(':') < 0) return undefined;
  const w = parseV6(s);
  if (!w) return undefined;
  if (isV4Mapped(w)) return { v6: false, w0: 0, w1: 0, w2: 0, w3: w[3] };
  return { v6: true, w0: w[0], w1: w[1], w2: w[2], w3: w[3] };
}

/**
 * Parses a single address (a /32 or /128) or a CIDR `addr/bits`. Host bits may be set (`10.0.0.1/8` is
 * `10.0.0.0/8`), as Istio accepts. Returns a reason string when invalid.
 */
export function parseCidr(input: string): Cidr | string {
  if (typeof input !== 'string' || input.length === 0) return 'is empty';
  const slash = input.indexOf('/');
  const addrText = slash < 0 ? input : input.slice(0, slash);
  if (addrText.indexOf('%') >= 0 || addrText.startsWith('[')) return 'is not an IP address or CIDR';
  const v4 = parseV4(addrText);
  let w: [number, number, number, number];
  let v6: boolean;
  if (v4 !== undefined) {
    w = [0, 0, 0, v4];
    v6 = false;
  } else {
    const p = addrText.indexOf(':') >= 0 ? parseV6(addrText) : undefined;
    if (!p) return slash < 0 ? 'is not an IP address' : 'is not a CIDR';
    w = p;
    v6 = true;
  }
  const max = v6 ? 128 : 32;
  let bits = max;
  if (slash >= 0) {
    const b = input.slice(slash + 1);
    if (!BITS.test(b) || Number(b) > max) return 'is not a CIDR';
    bits = Number(b);
  }
  if (v6 && isV4Mapped(w) && bits >= 96) return { v6: false, w0: 0, w1: 0, w2: 0, w3: w[3], bits: bits - 96 };
  return { v6, w0: w[0], w1: w[1], w2: w[2], w3: w[3], bits };
}

function maskWord(value: number, bitsInWord: number): number {
  if (bitsInWord <= 0) return 0;
  if (bitsInWord >= 32) return value >>> 0;
  return (value & (0xffffffff << (32 - bitsInWord))) >>> 0;
}

/**
 * True when `ip` lies inside `cidr`. Families never mix (as in ztunnel): an IPv6 block does not contain an IPv4
 * address. IPv4-mapped addresses and blocks were already turned into IPv4 by the parsers.
 */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (!cidr.v6) return !ip.v6 && maskWord(ip.w3, cidr.bits) === maskWord(cidr.w3, cidr.bits);
  if (!ip.v6) return false;
  const b = cidr.bits;
  return (
    maskWord(ip.w0, b) === maskWord(cidr.w0, b) &&
    maskWord(ip.w1, b - 32) === maskWord(cidr.w1, b - 32) &&
    maskWord(ip.w2, b - 64) === maskWord(cidr.w2, b - 64) &&
    maskWord(ip.w3, b - 96) === maskWord(cidr.w3, b - 96)
  );
}

/** Network bytes of a CIDR's address (4 or 16), for the workload API's `Address`. */
export function cidrToBytes(cidr: Cidr): Uint8Array {
  const words = cidr.v6 ? [cidr.w0, cidr.w1, cidr.w2, cidr.w3] : [cidr.w3];
  const out = new Uint8Array(words.length * 4);
  words.forEach((w, i) => {
    out[i * 4] = (w >>> 24) & 0xff;
    out[i * 4 + 1] = (w >>> 16) & 0xff;
    out[i * 4 + 2] = (w >>> 8) & 0xff;
    out[i * 4 + 3] = w & 0xff;
  });
  return out;
}

/** The CIDR carried by a workload-API `Address`, or a reason string. */
export function cidrFromBytes(bytes: Uint8Array, length: number): Cidr | string {
  if (!(bytes instanceof Uint8Array)) return 'address must be bytes';
  if (bytes.length !== 4 && bytes.length !== 16) return `address has ${bytes.length} bytes; 4 or 16 expected`;
  const max = bytes.length * 8;
  if (!Number.isInteger(length) || length < 0 || length > max) return `prefix length ${length} is outside 0..${max}`;
  const word = (i: number) =>
    (((bytes[i] as number) << 24) |
      ((bytes[i + 1] as number) << 16) |
      ((bytes[i + 2] as number) << 8) |
      (bytes[i + 3] as number)) >>>
    0;
  if (bytes.length === 4) return { v6: false, w0: 0, w1: 0, w2: 0, w3: word(0), bits: length };
  const w = [word(0), word(4), word(8), word(12)];
  if (isV4Mapped(w) && length >= 96) return { v6: false, w0: 0, w1: 0, w2: 0, w3: w[3] as number, bits: length - 96 };
  return { v6: true, w0: w[0] as number, w1: w[1] as number, w2: w[2] as number, w3: w[3] as number, bits: length };
}

/** Canonical text of a CIDR (`10.0.0.0/8`, `2001:db8::/32`), with host bits cleared. */
export function formatCidr(cidr: Cidr): string {
  if (!cidr.v6) {
    const w = maskWord(cidr.w3, cidr.bits);
    return `${w >>> 24}.${(w >>> 16) & 0xff}.${(w >>> 8) & 0xff}.${w & 0xff}/${cidr.bits}`;
  }
  const words = [
    maskWord(cidr.w0, cidr.bits),
    maskWord(cidr.w1, cidr.bits - 32),
    maskWord(cidr.w2, cidr.bits - 64),
    maskWord(cidr.w3, cidr.bits - 96),
  ];
  const groups: number[] = [];
  for (const w of words) groups.push(w >>> 16, w & 0xffff);
  // RFC 5952: compress the longest run (length >= 2) of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  const text = best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
  return `${text}/${cidr.bits}`;
}
