import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { AnyConfigObject } from './config-object.js';
import type { ConfigProblem } from './config-problem.js';
import type { ConfigBatch, ConfigChange, ConfigListener, ConfigSource } from './config-source.js';
import { ConfigStore } from './config-store.js';
import type { DecodeOptions } from './decode.js';
import { ControlPlaneError } from './errors.js';
import { parseConfigText } from './parse-config.js';
import { type ScheduledTask, type Scheduler, timerScheduler } from './scheduler.js';

export interface DirectorySourceOptions extends DecodeOptions {
  /** The directory to read; every *.yaml / *.yml below it (subdirectories included, dot-entries skipped). */
  readonly dir: string;
  /**
   * Quiet time after the last event for a file before it is re-read (default 100 ms). Editors save in
   * several steps; re-reading only once they are done means a half-written file is rarely seen at all,
   * and when it is, its parse error keeps the last good version in force until the next write.
   */
  readonly debounceMs?: number;
  /** Injected in tests to drive the debounce without waiting. */
  readonly scheduler?: Scheduler;
  /** Set false for a one-shot read (the `validate` command). Default true. */
  readonly watch?: boolean;
}

const YAML_FILE = /\.ya?ml$/i;

/**
 * A {@link ConfigSource} over a directory of Kubernetes-style YAML files, watched for changes
 * (add, modify, delete, rename, directories appearing and disappearing).
 */
export class DirectorySource implements ConfigSource {
  readonly name: string;
  readonly #dir: string;
  readonly #debounceMs: number;
  readonly #scheduler: Scheduler;
  readonly #watchEnabled: boolean;
  readonly #decode: DecodeOptions;
  readonly #store = new ConfigStore();
  readonly #listeners = new Set<ConfigListener>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #dirty = new Set<string>();
  #debounceTask: ScheduledTask | undefined;
  #maxWaitTask: ScheduledTask | undefined;
  /** Updates run one at a time, in event order, so a slow read never overtakes a later one. */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #started = false;

  constructor(options: DirectorySourceOptions) {
    this.#dir = options.dir;
    this.name = `dir:${options.dir}`;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#scheduler = options.scheduler ?? timerScheduler;
    this.#watchEnabled = options.watch ?? true;
    this.#decode = options.validatePolicy ? { validatePolicy: options.validatePolicy } : {};
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(this.#dir);
    } catch (err) {
      throw new ControlPlaneError(
        'ERR_CP_CONFIG_DIR',
        `config directory ${this.#dir} cannot be read: ${(err as Error).message}`,
        { cause: err },
      );
    }
    if (!st.isDirectory())
      throw new ControlPlaneError('ERR_CP_CONFIG_DIR', `config path ${this.#dir} is not a directory`);
    // Watch before the first scan so no change between scan and watch is lost.
    if (this.#watchEnabled) this.#watchDir(this.#dir);
    const files: string[] = [];
    await this.#walk(this.#dir, files, signal);
    files.sort();
    for (const file of files) {
      signal?.throwIfAborted();
      await this.#readFile(file);
    }
    this.#lastProblems = JSON.stringify(this.#store.problems());
  }

  list(): readonly AnyConfigObject[] {
    return this.#store.list();
  }

  problems(): readonly ConfigProblem[] {
    return this.#store.problems();
  }

  watch(listener: ConfigListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Paths with events waiting for their quiet period (for /debug and tests). */
  pending(): readonly string[] {
    return [...this.#dirty];
  }

  /** Resolves once every update queued so far has been applied (for tests and orderly shutdown). */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** Re-reads everything now (e.g. on SIGHUP or after events were lost). */
  rescan(): Promise<void> {
    this.#enqueue(async () => {
      const files: string[] = [];
      await this.#walk(this.#dir, files);
      const seen = new Set(files.map((f) => this.#rel(f)));
      const changes: ConfigChange[] = [];
      for (const rel of this.#store.files()) if (!seen.has(rel)) changes.push(...this.#store.remove(rel));
      for (const f of files.sort()) changes.push(...(await this.#readFile(f)));
      this.#emit(netChanges(changes));
    });
    return this.#queue;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#debounceTask?.cancel();
    this.#maxWaitTask?.cancel();
    this.#dirty.clear();
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    this.#listeners.clear();
    await this.#queue;
  }

  #rel(abs: string): string {
    return relative(this.#dir, abs).split(sep).join('/');
  }

  async #walk(dir: string, out: string[], signal?: AbortSignal): Promise<void> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // vanished while walking: its files are handled as deletions by the caller
    }
    for (const e of entries) {
      signal?.throwIfAborted();
      if (e.name.startsWith('.')) continue; // editor swap files, ..data symlink farms, hidden dirs
      const abs = join(dir, e.name);
      if (e.isDirectory()) {
        if (this.#watchEnabled && !this.#closed) this.#watchDir(abs);
        await this.#walk(abs, out, signal);
      } else if (YAML_FILE.test(e.name) && (e.isFile() || e.isSymbolicLink())) out.push(abs);
    }
  }

  #watchDir(abs: string): void {
    if (this.#watchers.has(abs) || this.#closed) return;
    let w: FSWatcher;
    try {
      w = fsWatch(abs, { persistent: false }, (_event, filename) => {
        this.#schedule(filename ? join(abs, filename.toString()) : abs);
      });
    } catch {
      return; // the directory vanished between readdir and watch
    }
    w.on('error', () => {
      w.close();
      this.#watchers.delete(abs);
      this.#schedule(abs);
    });
    this.#watchers.set(abs, w);
  }

  /**
   * Debounces: each event marks its path dirty and restarts the quiet period; when it ends (or, under a
   * constant stream of events, after maxWait) every dirty path is re-checked in ONE update, so a rename
   * (old name gone + new name present) or a multi-file save reaches the proxies as one net change.
   */
  #schedule(abs: string): void {
    if (this.#closed) return;
    this.#dirty.add(abs);
    this.#debounceTask?.cancel();
    this.#debounceTask = this.#scheduler.schedule(this.#debounceMs, () => this.#flush());
    this.#maxWaitTask ??= this.#scheduler.schedule(Math.max(1000, this.#debounceMs * 10), () => this.#flush());
  }

  #flush(): void {
    this.#debounceTask?.cancel();
    this.#maxWaitTask?.cancel();
    this.#debounceTask = undefined;
    this.#maxWaitTask = undefined;
    const paths = [...this.#dirty].sort();
    this.#dirty.clear();
    if (paths.length === 0) return;
    this.#enqueue(async () => {
      const changes: ConfigChange[] = [];
      for (const p of paths) changes.push(...(await this.#check(p)));
      this.#emit(netChanges(changes));
    });
  }

  #enqueue(task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch(() => {
      // #check reports its own failures as problems; nothing may break the chain.
    });
  }

  /** Brings the store in line with what is at `abs` now: a file, a directory, or nothing. */
  async #check(abs: string): Promise<ConfigChange[]> {
    if (this.#closed) return [];
    let st: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      st = await stat(abs);
    } catch {
      st = undefined;
    }
    const rel = this.#rel(abs);
    if (st?.isDirectory()) {
      if (abs !== this.#dir) this.#watchDir(abs);
      const files: string[] = [];
      await this.#walk(abs, files);
      const prefix = abs === this.#dir ? '' : `${rel}/`;
      const seen = new Set(files.map((f) => this.#rel(f)));
      const changes: ConfigChange[] = [];
      for (const known of this.#store.files()) {
        if (known.startsWith(prefix) && !seen.has(known) && (prefix !== '' || !known.includes('/'))) {
          changes.push(...this.#store.remove(known));
        }
      }
      for (const f of files.sort())
        if (!this.#store.hasFile(this.#rel(f)) || prefix === '') changes.push(...(await this.#readFile(f)));
      return changes;
    }
    if (st?.isFile() && YAML_FILE.test(abs) && !rel.split('/').some((p) => p.startsWith('.'))) {
      return this.#readFile(abs);
    }
    // Gone (deleted, or renamed away): drop the file, or every file under a vanished directory.
    const changes: ConfigChange[] = [...this.#store.remove(rel)];
    for (const known of this.#store.files())
      if (known.startsWith(`${rel}/`)) changes.push(...this.#store.remove(known));
    const w = this.#watchers.get(abs);
    if (w) {
      w.close();
      this.#watchers.delete(abs);
      for (const [dir, watcher] of this.#watchers) {
        if (dir.startsWith(`${abs}${sep}`)) {
          watcher.close();
          this.#watchers.delete(dir);
        }
      }
    }
    return changes;
  }

  async #readFile(abs: string): Promise<ConfigChange[]> {
    const rel = this.#rel(abs);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return this.#store.remove(rel);
      return this.#store.update(rel, {
        objects: [],
        problems: [
          { code: 'read-failed', severity: 'error', file: rel, reason: `cannot read: ${(err as Error).message}` },
        ],
        rejectedKeys: new Set(),
        syntaxError: true,
      });
    }
    return this.#store.update(rel, parseConfigText(text, rel, this.#decode));
  }

  #lastProblems = '';

  /** Tells the watchers, when something changed: an object, or the list of problems. */
  #emit(changes: ConfigChange[]): void {
    const problems = this.#store.problems();
    const fingerprint = JSON.stringify(problems);
    if (changes.length === 0 && fingerprint === this.#lastProblems) return;
    this.#lastProblems = fingerprint;
    const batch: ConfigBatch = { changes, problems };
    for (const l of this.#listeners) l(batch);
  }
}

/** Folds the changes of one update per key into its net effect (a rename's delete + add becomes nothing). */
export function netChanges(changes: readonly ConfigChange[]): ConfigChange[] {
  if (changes.length < 2) return [...changes];
  const first = new Map<string, ConfigChange>();
  const last = new Map<string, ConfigChange>();
  for (const c of changes) {
    if (!first.has(c.key)) first.set(c.key, c);
    last.set(c.key, c);
  }
  const out: ConfigChange[] = [];
  for (const [key, f] of first) {
    const l = last.get(key) as ConfigChange;
    const before = f.type === 'added' ? undefined : f.previous;
    const after = l.type === 'deleted' ? undefined : l.object;
    if (!before && after) out.push({ type: 'added', key, object: after });
    else if (before && !after) out.push({ type: 'deleted', key, object: before, previous: before });
    else if (before && after && JSON.stringify(before.raw) !== JSON.stringify(after.raw)) {
      out.push({ type: 'modified', key, object: after, previous: before });
    }
  }
  return out;
}
