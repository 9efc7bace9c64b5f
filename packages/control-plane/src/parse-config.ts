import { LineCounter, parseAllDocuments } from 'yaml';
import type { AnyConfigObject } from './config-object.js';
import type { ConfigProblem } from './config-problem.js';
import { type DecodeOptions, decodeObject } from './decode.js';

export interface ParsedConfigText {
  /** Accepted objects, in document order (duplicates within the text included; the store reports them). */
  readonly objects: readonly AnyConfigObject[];
  readonly problems: readonly ConfigProblem[];
  /** Keys of objects that were recognised but rejected: their last good version stays in force. */
  readonly rejectedKeys: ReadonlySet<string>;
  /** The text is not valid YAML: nothing in it can be trusted, so the whole file keeps its last good state. */
  readonly syntaxError: boolean;
}

// A file bigger than this is almost certainly not hand-written mesh config; refuse it rather than stall.
const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/** Parses a multi-document YAML text (`---` separated; `kind: List` flattened) into typed objects. */
export function parseConfigText(text: string, file: string, options: DecodeOptions = {}): ParsedConfigText {
  if (text.length > MAX_TEXT_BYTES) {
    return {
      objects: [],
      problems: [
        { code: 'read-failed', severity: 'error', file, reason: `file is larger than ${MAX_TEXT_BYTES} bytes` },
      ],
      rejectedKeys: new Set(),
      syntaxError: true,
    };
  }
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line ?? lineCounter.linePos(err.pos[0]).line;
      return {
        objects: [],
        problems: [
          {
            code: 'yaml-syntax',
            severity: 'error',
            file,
            line,
            reason: `YAML syntax error: ${firstLine(err.message)}`,
          },
        ],
        rejectedKeys: new Set(),
        syntaxError: true,
      };
    }
  }
  const objects: AnyConfigObject[] = [];
  const problems: ConfigProblem[] = [];
  const rejectedKeys = new Set<string>();
  list.forEach((doc, index) => {
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing `---`)
    const line = doc.contents ? lineCounter.linePos(doc.contents.range[0]).line : undefined;
    const items = isList(value) ? (value.items as unknown[]) : [value];
    for (const item of items) {
      const r = decodeObject(item, { file, document: index, ...(line !== undefined ? { line } : {}) }, options);
      if (r.ok) objects.push(r.object);
      else {
        problems.push(r.problem);
        if (r.key) rejectedKeys.add(r.key);
      }
    }
  });
  return { objects, problems, rejectedKeys, syntaxError: false };
}

function isList(v: unknown): v is { items: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.apiVersion === 'v1' && o.kind === 'List' && Array.isArray(o.items);
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}
