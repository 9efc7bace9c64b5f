import { CORE_SCHEMA, load, type YAMLException } from 'js-yaml';
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

/**
 * Parses a multi-document YAML text (`---` separated; `kind: List` flattened) into typed objects.
 * js-yaml with the YAML 1.2 core schema (JSON types only: a timestamp stays a string, as Kubernetes has it);
 * documents are split here so every object knows the line it starts on.
 */
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
  const values: { value: unknown; line: number }[] = [];
  for (const chunk of splitDocuments(text)) {
    let value: unknown;
    try {
      value = load(chunk.text, { schema: CORE_SCHEMA, filename: file });
    } catch (err) {
      const e = err as YAMLException;
      const line = chunk.line + (e.mark?.line ?? 0);
      const column = e.mark ? ` (column ${e.mark.column + 1})` : '';
      return {
        objects: [],
        problems: [
          {
            code: 'yaml-syntax',
            severity: 'error',
            file,
            line,
            reason: `YAML syntax error: ${e.reason ?? e.message}${column}`,
          },
        ],
        rejectedKeys: new Set(),
        syntaxError: true,
      };
    }
    if (value === null || value === undefined) continue; // an empty document (e.g. a trailing `---`)
    values.push({ value, line: chunk.line + chunk.firstContent });
  }
  const objects: AnyConfigObject[] = [];
  const problems: ConfigProblem[] = [];
  const rejectedKeys = new Set<string>();
  values.forEach(({ value, line }, index) => {
    const items = isList(value) ? (value.items as unknown[]) : [value];
    for (const item of items) {
      const r = decodeObject(item, { file, document: index, line }, options);
      if (r.ok) objects.push(r.object);
      else {
        problems.push(r.problem);
        if (r.key) rejectedKeys.add(r.key);
      }
    }
  });
  return { objects, problems, rejectedKeys, syntaxError: false };
}

interface Chunk {
  text: string;
  /** 1-based line of the chunk's first line. */
  line: number;
  /** Lines from there to the first one with content (not blank, not a comment). */
  firstContent: number;
}

/** Splits at `---` (and `...`) lines; the rest of a `--- x` line belongs to the next document. */
function splitDocuments(text: string): Chunk[] {
  const lines = text.split(/\r?\n/);
  const chunks: Chunk[] = [];
  let current: string[] = [];
  let start = 1;
  const flush = () => {
    const firstContent = current.findIndex((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
    if (firstContent >= 0) chunks.push({ text: current.join('\n'), line: start, firstContent });
  };
  lines.forEach((l, i) => {
    if (/^---(?:[ \t]|$)/.test(l)) {
      flush();
      current = [`   ${l.slice(3)}`];
      start = i + 1;
    } else if (/^\.\.\.[ \t]*$/.test(l)) {
      flush();
      current = [];
      start = i + 2;
    } else current.push(l);
  });
  flush();
  return chunks;
}
function isList(v: unknown): v is { items: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.apiVersion === 'v1' && o.kind === 'List' && Array.isArray(o.items);
}
