/** Well-formedness of received field lists (RFC 9113 §8.2, §8.3): a malformed list is a stream error. */
import type { H2HeaderList } from './types.js';

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);
const CONNECTION_SPECIFIC = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

/** Returns what is wrong with the list, or null if it is well-formed. */
export function validateHeaders(headers: H2HeaderList, kind: 'request' | 'response' | 'trailers'): string | null {
  let regularSeen = false;
  const pseudo = new Map<string, string>();
  for (const [name, value] of headers) {
    if (name.length === 0) return 'empty field name';
    for (let i = 0; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x41 && c <= 0x5a) return `uppercase field name ${JSON.stringify(name)}`;
      if (c <= 0x20 || c >= 0x7f || (c === 0x3a && i > 0)) return `invalid field name ${JSON.stringify(name)}`;
    }
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c === 0 || c === 0x0a || c === 0x0d) return `field ${name} has a NUL, CR or LF in its value`;
    }
    if (name.charCodeAt(0) === 0x3a) {
      if (regularSeen) return `pseudo-header ${name} after a regular field`;
      if (kind === 'trailers') return `pseudo-header ${name} in trailers`;
      if (kind === 'response' ? name !== ':status' : !REQUEST_PSEUDO.has(name))
        return `unexpected pseudo-header ${name}`;
      if (pseudo.has(name)) return `duplicate ${name}`;
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    if (CONNECTION_SPECIFIC.has(name)) return `connection-specific field ${name}`;
    if (name === 'te' && value !== 'trailers') return 'te other than "trailers"';
  }
  if (kind === 'response') {
    const status = pseudo.get(':status');
    if (status === undefined || !/^[1-9]\d\d$/.test(status)) return 'response without a valid :status';
    if (headers[0]![0] !== ':status') return ':status is not first';
  } else if (kind === 'request') {
    const method = pseudo.get(':method');
    if (!method) return 'request without :method';
    if (method === 'CONNECT' && !pseudo.has(':protocol')) {
      if (!pseudo.get(':authority')) return 'CONNECT without :authority';
      if (pseudo.has(':scheme') || pseudo.has(':path')) return 'CONNECT with :scheme or :path';
    } else if (!pseudo.get(':scheme') || !pseudo.get(':path')) {
      return 'request without :scheme or :path';
    }
  }
  return null;
}
