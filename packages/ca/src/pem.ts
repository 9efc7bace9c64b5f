/** PEM (RFC 7468) encoding and splitting. */

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  label: string;
  der: Buffer;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`;
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** Every PEM block in `text`, in order; text outside blocks (comments, blank lines) is ignored. */
export function pemBlocks(text: string | Buffer): PemBlock[] {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  const out: PemBlock[] = [];
  for (const m of s.matchAll(BLOCK_RE)) {
    const body = (m[2] as string).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) continue;
    out.push({ label: m[1] as string, der: Buffer.from(body, 'base64') });
  }
  return out;
}

/** The DER of every `CERTIFICATE` block in `text`. */
export function certificateDers(text: string | Buffer): Buffer[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** Normalises a list of PEM certificates (each possibly holding several) to one PEM string. */
export function joinPem(certs: Iterable<string | Uint8Array>): string {
  let out = '';
  for (const c of certs) out += typeof c === 'string' ? c : toPem('CERTIFICATE', c);
  return out;
}
