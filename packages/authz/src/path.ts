/**
 * Request path normalization and path templates for `paths` / `notPaths`.
 *
 * Normalization (Istio's options; the normalized path is also what a proxy should forward upstream, so that the
 * policy and the application see the same path):
 * - `BASE` (default): drop the query and fragment; reject `%00` and control characters; decode percent-escapes of
 *   unreserved characters once (`%2e` → `.`, `%41` → `A`; never `%25`, so no double decoding); `\` → `/`;
 *   resolve `.` and `..` segments (RFC 3986 §5.2.4).
 * - `MERGE_SLASHES`: `BASE`, then merge runs of `/` (`//admin` → `/admin`).
 * - `DECODE_AND_MERGE_SLASHES`: also decode `%2F` → `/` and `%5C` → `\` first, then as `MERGE_SLASHES`.
 */
export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

export const PATH_NORMALIZATIONS: readonly PathNormalization[] = [
  'NONE',
  'BASE',
  'MERGE_SLASHES',
  'DECODE_AND_MERGE_SLASHES',
];

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is '' for an absolute path.
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] as string;
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(seg);
    }
  }
  return `/${out.join('/')}`;
}

/**
 * Normalizes a request path (`:path`, possibly with a query). Returns undefined when the request must be
 * rejected: `%00`, a control character, or a path that does not start with `/` (other than `*`).
 */
export function normalizePath(raw: string, option: PathNormalization = 'BASE'): string | undefined {
  if (typeof raw !== 'string') return undefined;
  let end = raw.length;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  let path = end === raw.length ? raw : raw.slice(0, end);
  let needsWork = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return undefined;
    if (c === 37 /* % */) {
      if (path.charCodeAt(i + 1) === 48 && path.charCodeAt(i + 2) === 48) return undefined;
      needsWork = true;
    } else if (c === 92 /* \ */ || c === 46 /* . */ || (c === 47 && path.charCodeAt(i + 1) === 47)) {
      needsWork = true;
    }
  }
  if (path === '*') return path;
  if (path === '') return '/';
  if (path.charCodeAt(0) !== 47 && path.charCodeAt(0) !== 92) return undefined;
  if (option === 'NONE' || !needsWork) return path;

  const decodeSlashes = option === 'DECODE_AND_MERGE_SLASHES';
  if (path.indexOf('%') >= 0) {
    let out = '';
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === 37 && i + 2 < path.length) {
        const h = hexValue(path.charCodeAt(i + 1));
        const l = hexValue(path.charCodeAt(i + 2));
        if (h >= 0 && l >= 0) {
          const v = h * 16 + l;
          if (isUnreserved(v) || (decodeSlashes && (v === 47 || v === 92))) {
            out += String.fromCharCode(v);
            i += 2;
            continue;
          }
        }
      }
      out += path[i];
    }
    path = out;
  }
  if (path.indexOf('\\') >= 0) path = path.replace(/\\/g, '/');
  path = removeDotSegments(path);
  if (option !== 'BASE' && path.indexOf('//') >= 0) path = path.replace(/\/{2,}/g, '/');
  return path;
}

const ONE_SEGMENT = "[A-Za-z0-9\\-._~%!$&'()+,;:@=]+";
const ANY_SEGMENTS = "[A-Za-z0-9\\-._~%!$&'()+,;:@=/]*";
const VALID_LITERAL = /^[A-Za-z0-9\-._~%!$&'()+,;:@=]+$/;

export function isPathTemplate(pattern: string): boolean {
  return pattern.includes('{*}') || pattern.includes('{**}');
}

/**
 * Checks a `paths` entry; returns a reason when invalid. Path templates: `{*}` is one segment, `{**}` any number
 * of segments and must be the last operator; other segments of a template must be plain path characters.
 */
export function checkPathPattern(pattern: string): string | undefined {
  const template = isPathTemplate(pattern);
  const segments = pattern.replace(/^\/+|\/+$/g, '').split('/');
  let sawAny = false;
  for (const seg of segments) {
    if (seg === '{*}' || seg === '{**}') {
      if (sawAny) return `${JSON.stringify(pattern)} is invalid: {**} must be the last operator of a path template`;
      if (seg === '{**}') sawAny = true;
      continue;
    }
    if (seg.includes('{') || seg.includes('}')) {
      return `${JSON.stringify(pattern)} is invalid: "{" and "}" are only allowed as the whole segments {*} and {**}`;
    }
    if (template && seg !== '' && !VALID_LITERAL.test(seg)) {
      return `${JSON.stringify(pattern)} is invalid: segment ${JSON.stringify(seg)} of a path template holds characters other than RFC 3986 path characters`;
    }
  }
  return undefined;
}

/** Compiles a path template to an anchored regular expression. */
export function compilePathTemplate(pattern: string): RegExp {
  let re = '^';
  let i = 0;
  while (i < pattern.length) {
    if (pattern.startsWith('{**}', i)) {
      re += ANY_SEGMENTS;
      i += 4;
    } else if (pattern.startsWith('{*}', i)) {
      re += ONE_SEGMENT;
      i += 3;
    } else {
      re += (pattern[i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
    }
  }
  return new RegExp(`${re}$`);
}
