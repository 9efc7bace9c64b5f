import type { Timers } from '../../src/index.js';

/** A virtual clock for timer-driven behaviour (PING deadlines, idle release): time moves only on advance(). */
export class FakeClock implements Timers {
  #now = 0;
  #seq = 0;
  readonly #pending = new Map<number, { due: number; fn: () => void }>();

  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.#seq;
    this.#pending.set(id, { due: this.#now + ms, fn });
    return id;
  };

  clearTimeout = (handle: unknown): void => {
    this.#pending.delete(handle as number);
  };

  /** Timers waiting now. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order (including ones they set). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { due: number; fn: () => void }] | undefined;
      for (const e of this.#pending) if (e[1].due <= target && (!next || e[1].due < next[1].due)) next = e;
      if (!next) break;
      this.#pending.delete(next[0]);
      this.#now = next[1].due;
      next[1].fn();
    }
    this.#now = target;
  }
}
