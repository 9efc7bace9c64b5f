/** Timer functions, injectable so tests can drive reconnect timing without sleeping. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export interface BackoffOptions {
  /** First delay (default 10 ms, as Istio's proxies). */
  initialMs?: number;
  /** Ceiling (default 15 s). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  multiplier?: number;
}

/** Exponential backoff: initial, ×multiplier per failure, capped; reset() after a success. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #multiplier: number;
  #next: number;

  constructor(options: BackoffOptions = {}) {
    this.#initial = options.initialMs ?? 10;
    this.#max = options.maxMs ?? 15_000;
    this.#multiplier = options.multiplier ?? 2;
    this.#next = this.#initial;
  }

  /** The delay to wait now; the following call returns the next step. */
  next(): number {
    const d = this.#next;
    this.#next = Math.min(this.#max, this.#next * this.#multiplier);
    return d;
  }

  reset(): void {
    this.#next = this.#initial;
  }
}
