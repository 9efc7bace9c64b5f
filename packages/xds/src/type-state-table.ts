import type { Session, SessionHost, TypeStateBase, XdsClientTypeState } from './server-session.js';

/**
 * The per-type states of one ADS stream and what Delta and SotW do with them alike: mark types dirty after
 * a cache commit or a view change, and push dirty types one at a time within the server's push budget. What
 * a push sends, and which changes touch a type, stays with each protocol.
 */
export class TypeStateTable<S extends TypeStateBase> {
  readonly #states = new Map<string, S>();
  readonly #session: Session;
  readonly #host: SessionHost;

  constructor(session: Session, host: SessionHost) {
    this.#session = session;
    this.#host = host;
  }

  get size(): number {
    return this.#states.size;
  }

  get(typeUrl: string): S | undefined {
    return this.#states.get(typeUrl);
  }

  set(st: S): void {
    this.#states.set(st.typeUrl, st);
  }

  /** Marks dirty each type of `changed` that `touches` (every one by default); the session is flushed if any was. */
  onCacheChange(changed: Map<string, string[]>, touches?: (st: S, names: string[]) => boolean): void {
    let any = false;
    for (const [typeUrl, names] of changed) {
      const st = this.#states.get(typeUrl);
      if (st && (touches === undefined || touches(st, names))) {
        st.dirty = true;
        any = true;
      }
    }
    if (any) this.#host.markDirty(this.#session);
  }

  /** The view hook's answers may have changed: `reset` every view-filtered type so its next push re-decides, and mark it dirty. */
  revalidateViews(reset: (st: S) => void): void {
    let any = false;
    for (const st of this.#states.values()) {
      if (!st.filtered) continue;
      reset(st);
      st.dirty = true;
      any = true;
    }
    if (any) this.#host.markDirty(this.#session);
  }

  /**
   * Pushes each dirty type whose previous response was answered, taking one server push slot per type;
   * `push` returns whether it wrote a response (if not, the slot is given back). Stops when the session
   * closes or the server has no slot free (it calls flush again later).
   */
  flush(push: (st: S) => boolean): void {
    for (const st of this.#states.values()) {
      if (this.#session.closed) return;
      if (!st.dirty || st.pendingNonce !== null) continue;
      if (!this.#host.acquirePush(this.#session)) return;
      if (!push(st)) this.#host.releasePush();
    }
  }

  /** Debug view of every type; `trackedNames` says how many names the protocol tracks for it. */
  snapshot(trackedNames: (st: S) => number): XdsClientTypeState[] {
    return [...this.#states.values()].map((st) => ({
      typeUrl: st.typeUrl,
      wildcard: st.wildcard,
      names: [...st.names],
      ackedVersion: st.ackedVersion,
      pendingNonce: st.pendingNonce,
      sentSeq: st.sentSeq,
      nacks: st.nacks,
      lastNack: st.lastNack,
      trackedNames: trackedNames(st),
    }));
  }
}
