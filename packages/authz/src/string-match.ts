/**
 * Istio's string forms in AuthorizationPolicy: `abc` exact, `abc*` prefix, `*abc` suffix, `*` presence (any
 * non-empty value). A list matches when any entry matches; it is compiled into a set plus prefix/suffix arrays.
 */
export type StringMatchKind = 'exact' | 'prefix' | 'suffix' | 'presence';

export interface StringPattern {
  readonly kind: StringMatchKind;
  /** The literal part (empty for presence). */
  readonly value: string;
}

export function parseStringPattern(text: string): StringPattern {
  if (text === '*') return { kind: 'presence', value: '' };
  if (text.startsWith('*')) return { kind: 'suffix', value: text.slice(1) };
  if (text.endsWith('*')) return { kind: 'prefix', value: text.slice(0, -1) };
  return { kind: 'exact', value: text };
}

export function formatStringPattern(p: StringPattern): string {
  switch (p.kind) {
    case 'presence':
      return '*';
    case 'prefix':
      return `${p.value}*`;
    case 'suffix':
      return `*${p.value}`;
    default:
      return p.value;
  }
}

/** A compiled list of patterns: `matches(s)` is true when any pattern matches `s`. */
export class StringMatcherList {
  readonly patterns: readonly StringPattern[];
  readonly #exact: Set<string>;
  readonly #prefixes: string[] = [];
  readonly #suffixes: string[] = [];
  readonly #presence: boolean;
  readonly #ignoreCase: boolean;

  constructor(patterns: readonly StringPattern[], ignoreCase = false) {
    this.patterns = patterns;
    this.#ignoreCase = ignoreCase;
    this.#exact = new Set();
    let presence = false;
    for (const p of patterns) {
      const v = ignoreCase ? p.value.toLowerCase() : p.value;
      if (p.kind === 'presence') presence = true;
      else if (p.kind === 'exact') this.#exact.add(v);
      else if (p.kind === 'prefix') this.#prefixes.push(v);
      else this.#suffixes.push(v);
    }
    this.#presence = presence;
  }

  static fromIstio(values: readonly string[], ignoreCase = false): StringMatcherList {
    return new StringMatcherList(values.map(parseStringPattern), ignoreCase);
  }

  matches(input: string): boolean {
    const s = this.#ignoreCase ? input.toLowerCase() : input;
    if (this.#presence && s.length > 0) return true;
    if (this.#exact.size > 0 && this.#exact.has(s)) return true;
    for (let i = 0; i < this.#prefixes.length; i++) if (s.startsWith(this.#prefixes[i] as string)) return true;
    for (let i = 0; i < this.#suffixes.length; i++) if (s.endsWith(this.#suffixes[i] as string)) return true;
    return false;
  }
}
