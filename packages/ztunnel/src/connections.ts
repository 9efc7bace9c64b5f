/**
 * Every open proxied connection, so the ztunnel can re-evaluate inbound ones when policy changes, wait for
 * them on drain, and cut the rest at the deadline.
 */
import type { ConnectionInfo } from './telemetry.js';

export interface TrackedConnection {
  readonly info: ConnectionInfo;
  /** Inbound only: is this connection still allowed under the current policies? */
  stillAllowed?: () => { allowed: boolean; reason: string };
  /** Cut the connection now. */
  destroy(reason: string): void;
}

export class ConnectionTracker {
  private readonly open = new Set<TrackedConnection>();
  private waiters: Array<() => void> = [];

  get size(): number {
    return this.open.size;
  }

  add(c: TrackedConnection): () => void {
    this.open.add(c);
    return () => {
      this.open.delete(c);
      if (this.open.size === 0) {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      }
    };
  }

  /** Re-check inbound connections; returns those closed because they are now denied. */
  reevaluate(): Array<{ connection: TrackedConnection; reason: string }> {
    const closed: Array<{ connection: TrackedConnection; reason: string }> = [];
    for (const c of [...this.open]) {
      if (!c.stillAllowed) continue;
      const r = c.stillAllowed();
      if (!r.allowed) {
        closed.push({ connection: c, reason: r.reason });
        c.destroy(`denied after a policy change: ${r.reason}`);
      }
    }
    return closed;
  }

  /** Resolves when no connection is open, or when the signal aborts (then the rest are destroyed). */
  drain(deadlineMs: number): Promise<{ cut: number }> {
    if (this.open.size === 0) return Promise.resolve({ cut: 0 });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const cut = this.open.size;
        for (const c of [...this.open]) c.destroy('drain deadline reached');
        resolve({ cut });
      }, deadlineMs);
      timer.unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve({ cut: 0 });
      });
    });
  }

  destroyAll(reason: string): void {
    for (const c of [...this.open]) c.destroy(reason);
  }

  list(): TrackedConnection[] {
    return [...this.open];
  }
}
