import type { Clock } from './clock.js';

export interface RateLimitOptions {
  /** Bad requests a caller may make in a burst before it is refused. Default 20. */
  burst?: number;
  /** Bad requests per second a caller earns back. Default 2. */
  perSecond?: number;
  /** Callers tracked at most; the least recently penalised are forgotten first. Default 10,000. */
  maxCallers?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token bucket per caller that only bad requests drain. A caller over its budget is refused before any
 * expensive work (CSR verification, signing), so a flood of bad requests costs little and callers with
 * good requests, who never spend tokens, are not slowed.
 */
export class FailureRateLimiter {
  readonly #burst: number;
  readonly #rate: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();

  constructor(clock: Clock, options: RateLimitOptions = {}) {
    this.#clock = clock;
    this.#burst = options.burst ?? 20;
    this.#rate = options.perSecond ?? 2;
    this.#max = options.maxCallers ?? 10_000;
  }

  /** True when `key` has no budget left for another request. */
  limited(key: string): boolean {
    const b = this.#buckets.get(key);
    return b !== undefined && this.#refill(b) < 1;
  }

  /** Records a bad request by `key`. */
  penalize(key: string): void {
    let b = this.#buckets.get(key);
    if (b) {
      this.#refill(b);
      this.#buckets.delete(key);
    } else {
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: this.#burst, at: this.#clock.now() };
    }
    b.tokens = Math.max(0, b.tokens - 1);
    this.#buckets.set(key, b);
  }

  get trackedCallers(): number {
    return this.#buckets.size;
  }

  #refill(b: Bucket): number {
    const now = this.#clock.now();
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
    b.at = now;
    return b.tokens;
  }
}
