/**
 * Time source for everything time-driven here (leaf validity, renewal, backoff, root rotation), so tests
 * can drive a timeline of days or years with {@link ManualClock} instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` after `ms`; the timer never keeps the process alive. */
  setTimer(ms: number, fn: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

// setTimeout's limit: longer delays fire immediately, so long timers are chained.
const MAX_DELAY = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    let handle: NodeJS.Timeout;
    const due = Date.now() + ms;
    const arm = (delay: number): void => {
      handle = setTimeout(
        () => {
          const left = due - Date.now();
          if (left > 0) arm(left);
          else fn();
        },
        Math.max(0, Math.min(delay, MAX_DELAY)),
      );
      handle.unref();
    };
    arm(ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

interface ManualTimer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A clock that moves only when told to; timers fire in due order as {@link ManualClock.advance} passes them. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  constructor(start: number | Date = Date.now()) {
    this.#now = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const t: ManualTimer = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(t);
    return {
      cancel: () => {
        t.cancelled = true;
        this.#timers = this.#timers.filter((x) => x !== t);
      },
    };
  }

  /** Moves time forward by `ms`, firing every timer that falls due, each with the clock set to its due time. */
  advance(ms: number): void {
    this.set(this.#now + ms);
  }

  /** Moves time to `at` (never backwards), firing due timers in order. */
  set(at: number | Date): void {
    const target = typeof at === 'number' ? at : at.getTime();
    for (;;) {
      const next = this.#nextTimer();
      if (!next || next.due > target) break;
      this.#timers = this.#timers.filter((x) => x !== next);
      this.#now = Math.max(this.#now, next.due);
      if (!next.cancelled) next.fn();
    }
    this.#now = Math.max(this.#now, target);
  }

  /** When the earliest pending timer is due, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    return this.#nextTimer()?.due;
  }

  /** Fires the earliest pending timer (moving the clock to it); returns false when there is none. */
  runNext(): boolean {
    const next = this.#nextTimer();
    if (!next) return false;
    this.set(next.due);
    return true;
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  #nextTimer(): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.#timers) if (!best || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    return best;
  }
}
