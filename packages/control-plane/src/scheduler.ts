/** A cancellable delayed task. */
export interface ScheduledTask {
  cancel(): void;
}

/**
 * Runs tasks after a delay. The directory source debounces file events through it, so tests can drive
 * the debounce deterministically (no sleeping) by injecting their own.
 */
export interface Scheduler {
  schedule(delayMs: number, task: () => void): ScheduledTask;
}

/** setTimeout-based scheduler; timers are unref()ed so a pending debounce never keeps the process alive. */
export const timerScheduler: Scheduler = {
  schedule(delayMs, task) {
    const t = setTimeout(task, delayMs);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
