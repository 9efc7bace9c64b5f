import { type AnyConfigObject, keyOf } from './config-object.js';
import type { ConfigProblem } from './config-problem.js';
import type { ConfigChange } from './config-source.js';
import type { ParsedConfigText } from './parse-config.js';

interface FileState {
  /** Objects this file currently contributes (a rejected object's last good version included). */
  objects: Map<string, AnyConfigObject>;
  problems: readonly ConfigProblem[];
  /** Keys this file defines more than once: only the first definition counts. */
  innerDuplicates: ConfigProblem[];
}

/**
 * The accepted objects of a file-based source, with "last good version" and duplicate handling:
 * a file with a YAML syntax error keeps everything it had; a rejected object keeps its last good version;
 * when two files define the same object, the one that defined it first wins and the other is reported.
 */
export class ConfigStore {
  readonly #files = new Map<string, FileState>();
  /** key -> files defining it, in the order they claimed it; the first one is in force. */
  readonly #owners = new Map<string, string[]>();
  readonly #fingerprints = new WeakMap<AnyConfigObject, string>();

  /** Applies a fresh parse of `file`; returns the changes to the accepted set. */
  update(file: string, parsed: ParsedConfigText): ConfigChange[] {
    const before = this.#snapshotKeys(file);
    const previous = this.#files.get(file);
    if (parsed.syntaxError) {
      this.#files.set(file, {
        objects: previous?.objects ?? new Map(),
        problems: parsed.problems,
        innerDuplicates: previous?.innerDuplicates ?? [],
      });
      return [];
    }
    const objects = new Map<string, AnyConfigObject>();
    const innerDuplicates: ConfigProblem[] = [];
    for (const obj of parsed.objects) {
      const key = keyOf(obj);
      const first = objects.get(key);
      if (first) {
        innerDuplicates.push(duplicateProblem(obj, file, `${file} (document ${first.origin.document + 1})`));
        continue;
      }
      objects.set(key, obj);
    }
    for (const key of parsed.rejectedKeys) {
      const lastGood = previous?.objects.get(key);
      if (lastGood && !objects.has(key)) objects.set(key, lastGood);
    }
    this.#files.set(file, { objects, problems: parsed.problems, innerDuplicates });
    return this.#reconcile(file, before, objects);
  }

  /** The file is gone: everything it defined goes with it. */
  remove(file: string): ConfigChange[] {
    const state = this.#files.get(file);
    if (!state) return [];
    const before = this.#snapshotKeys(file);
    this.#files.delete(file);
    return this.#reconcile(file, before, new Map());
  }

  hasFile(file: string): boolean {
    return this.#files.has(file);
  }

  files(): string[] {
    return [...this.#files.keys()];
  }

  list(): AnyConfigObject[] {
    const out: AnyConfigObject[] = [];
    for (const [key, owners] of this.#owners) {
      const obj = this.#active(key, owners);
      if (obj) out.push(obj);
    }
    return out;
  }

  get(key: string): AnyConfigObject | undefined {
    const owners = this.#owners.get(key);
    return owners ? this.#active(key, owners) : undefined;
  }

  problems(): ConfigProblem[] {
    const out: ConfigProblem[] = [];
    for (const state of this.#files.values()) out.push(...state.problems, ...state.innerDuplicates);
    for (const [key, owners] of this.#owners) {
      if (owners.length < 2) continue;
      const winner = owners[0] as string;
      for (const other of owners.slice(1)) {
        const obj = this.#files.get(other)?.objects.get(key);
        if (obj) out.push(duplicateProblem(obj, other, winner));
      }
    }
    return out;
  }

  #active(key: string, owners: string[]): AnyConfigObject | undefined {
    const first = owners[0];
    return first === undefined ? undefined : this.#files.get(first)?.objects.get(key);
  }

  /** The active object of every key `file` touches, before the update. */
  #snapshotKeys(file: string): Map<string, AnyConfigObject | undefined> {
    const snap = new Map<string, AnyConfigObject | undefined>();
    const state = this.#files.get(file);
    if (state) for (const key of state.objects.keys()) snap.set(key, this.get(key));
    return snap;
  }

  #reconcile(
    file: string,
    before: Map<string, AnyConfigObject | undefined>,
    now: Map<string, AnyConfigObject>,
  ): ConfigChange[] {
    for (const key of before.keys()) {
      if (now.has(key)) continue;
      const owners = this.#owners.get(key);
      if (!owners) continue;
      const i = owners.indexOf(file);
      if (i >= 0) owners.splice(i, 1);
      if (owners.length === 0) this.#owners.delete(key);
    }
    for (const key of now.keys()) {
      if (!before.has(key)) {
        before.set(key, this.get(key));
        const owners = this.#owners.get(key);
        if (!owners) this.#owners.set(key, [file]);
        else if (!owners.includes(file)) owners.push(file);
      }
    }
    const changes: ConfigChange[] = [];
    for (const [key, old] of before) {
      const cur = this.get(key);
      if (old === cur) continue;
      if (!old && cur) changes.push({ type: 'added', key, object: cur });
      else if (old && !cur) changes.push({ type: 'deleted', key, object: old, previous: old });
      else if (old && cur && this.#fingerprint(old) !== this.#fingerprint(cur)) {
        changes.push({ type: 'modified', key, object: cur, previous: old });
      }
    }
    return changes;
  }

  #fingerprint(obj: AnyConfigObject): string {
    let f = this.#fingerprints.get(obj);
    if (f === undefined) {
      f = JSON.stringify(obj.raw);
      this.#fingerprints.set(obj, f);
    }
    return f;
  }
}

function duplicateProblem(obj: AnyConfigObject, file: string, winner: string): ConfigProblem {
  const m = obj.metadata;
  return {
    code: 'duplicate',
    severity: 'error',
    file,
    ...(obj.origin.line !== undefined ? { line: obj.origin.line } : {}),
    object: `${obj.kind} ${m.namespace ? `${m.namespace}/` : ''}${m.name}`,
    reason: `already defined in ${winner}; this definition is ignored (rename it or delete one)`,
  };
}
