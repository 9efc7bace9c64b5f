import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIp } from '@ambient-ts/xds';
import type { AnyConfigObject } from '../src/config-object.js';
import { keyOf } from '../src/config-object.js';
import type { ConfigChange } from '../src/config-source.js';
import { parseConfigText } from '../src/parse-config.js';
import type { ScheduledTask, Scheduler } from '../src/scheduler.js';
/** A scheduler the test drives: tasks run only when the test says so. */
export class ManualScheduler implements Scheduler {
  readonly #tasks = new Set<() => void>();
  #waiters: Array<() => void> = [];
  scheduledCount = 0;

  schedule(_delayMs: number, task: () => void): ScheduledTask {
    const entry = () => task();
    this.#tasks.add(entry);
    this.scheduledCount++;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
    return { cancel: () => this.#tasks.delete(entry) };
  }

  get pending(): number {
    return this.#tasks.size;
  }

  /** Resolves on the next schedule() call. */
  nextSchedule(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Resolves once at least one task is pending (i.e. a file event arrived and was debounced). */
  nextTask(): Promise<void> {
    if (this.#tasks.size > 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  runAll(): void {
    const tasks = [...this.#tasks];
    this.#tasks.clear();
    for (const t of tasks) t();
  }
}

export function tempDir(prefix = 'cp-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

let markers = 0;

/**
 * Plays the role of the debounce's quiet period without waiting on time: writes a marker file and waits
 * until the source has seen its event. File events arrive in order, so every earlier event has arrived too.
 */
export async function quiesce(
  scheduler: ManualScheduler,
  source: { pending(): readonly string[] },
  dir: string,
): Promise<void> {
  const marker = join(dir, `.quiesce-${process.pid}-${++markers}`);
  const seen = scheduler.nextSchedule();
  writeFileSync(marker, '');
  await seen;
  while (!source.pending().includes(marker)) await scheduler.nextSchedule();
}

/** Drives file events through the manual scheduler until `done()` holds: waits on events, never on time. */
export async function settle(
  scheduler: ManualScheduler,
  source: { settled(): Promise<void>; pending(): readonly string[] },
  done: () => boolean,
  dir?: string,
): Promise<void> {
  for (;;) {
    await source.settled();
    if (done()) return;
    if (dir) await quiesce(scheduler, source, dir);
    else await scheduler.nextTask();
    scheduler.runAll();
  }
}

export const yaml = (s: string): string => s.replace(/^\n/, '');

/** Parses YAML into objects, failing the test on any problem. */
export function objects(text: string, file = 'test.yaml'): AnyConfigObject[] {
  const parsed = parseConfigText(text, file);
  if (parsed.problems.length > 0) throw new Error(`unexpected problems: ${JSON.stringify(parsed.problems)}`);
  return [...parsed.objects];
}

export function added(text: string): ConfigChange[] {
  return objects(text).map((o) => ({ type: 'added', key: keyOf(o), object: o }));
}

export function modified(previous: AnyConfigObject, text: string): ConfigChange {
  const [o] = objects(text);
  if (!o) throw new Error('no object');
  return { type: 'modified', key: keyOf(o), object: o, previous };
}

export function deleted(o: AnyConfigObject): ConfigChange {
  return { type: 'deleted', key: keyOf(o), object: o, previous: o };
}

/** Rendered JSON, navigated freely by the golden tests. */
// biome-ignore lint/suspicious/noExplicitAny: goldens index into rendered JSON; a wrong path fails the assertion.
export type Rendered = any;

/** Renders resources for readable goldens: IP bytes as text. */
export function render(value: unknown): Rendered {
  if (value instanceof Uint8Array) return formatIp(value);
  if (Array.isArray(value)) return value.map(render);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, render(v)]));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v)]));
  return value;
}
