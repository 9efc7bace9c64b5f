import * as grpc from '@grpc/grpc-js';
import { type DeltaRequest, decodeDeltaRequest } from './discovery-messages.js';
import type { CacheEntry } from './resource-cache.js';
import { newTypeState, Session, type TypeStateBase, type XdsClientTypeState } from './server-session.js';
import { TypeStateTable } from './type-state-table.js';
import { stringField } from './wire.js';

interface DeltaTypeState extends TypeStateBase {
  /** No response sent yet for this type. */
  initial: boolean;
  /** initial_resource_versions from the first request, consumed by the first response. */
  initialVersions: Record<string, string> | null;
  /**
   * What the client holds (name -> version), kept only when it cannot be derived from the cache's
   * sequence numbers: when the view hook filters this type or without a wildcard subscription. A plain
   * wildcard client costs one number (sentSeq) per type.
   */
  known: Map<string, string> | null;
  /** Names whose state must be (re)sent even if unchanged since sentSeq (new explicit subscriptions). */
  force: Set<string>;
  /** Re-run the view hook over everything on the next push. */
  recheck: boolean;
}

/** Incremental ADS (DeltaAggregatedResources) for one client. */
export class DeltaSession extends Session {
  readonly protocol = 'delta' as const;
  readonly #types = new TypeStateTable<DeltaTypeState>(this, this.host);

  protected handle(buf: Buffer): void {
    const req = decodeDeltaRequest(buf);
    if (req.typeUrl === '') throw new Error('type_url is required');
    if (req.node && this.node === undefined) this.node = req.node;
    let st = this.#types.get(req.typeUrl);
    if (st === undefined) {
      if (!this.checkTypeCount(this.#types.size + 1)) return;
      st = this.#first(req);
      this.#types.set(st);
    } else {
      this.recordAck(st, req.responseNonce, req.errorDetail);
      this.#subscriptionChange(st, req);
    }
    if (!this.checkNameCount(st.names.size + (st.known?.size ?? 0))) return;
    if (st.dirty) this.host.markDirty(this);
  }

  #first(req: DeltaRequest): DeltaTypeState {
    const st: DeltaTypeState = {
      ...newTypeState(req.typeUrl, this.viewFilters(req.typeUrl)),
      initial: true,
      initialVersions: Object.keys(req.initialResourceVersions).length > 0 ? { ...req.initialResourceVersions } : null,
      known: null,
      force: new Set(),
      recheck: false,
    };
    // An empty first subscription is the legacy wildcard; "*" is the explicit one.
    st.wildcard = req.resourceNamesSubscribe.length === 0 || req.resourceNamesSubscribe.includes('*');
    for (const n of req.resourceNamesSubscribe) if (n !== '*') st.names.add(n);
    for (const n of req.resourceNamesUnsubscribe) {
      if (n === '*') st.wildcard = false;
      else st.names.delete(n);
    }
    if (this.#needsKnown(st)) st.known = new Map();
    for (const n of st.names) st.force.add(n);
    return st;
  }

  #needsKnown(st: DeltaTypeState): boolean {
    return !st.wildcard || st.filtered;
  }

  #subscriptionChange(st: DeltaTypeState, req: DeltaRequest): void {
    for (const n of req.resourceNamesSubscribe) {
      if (n === '*') {
        if (!st.wildcard) {
          st.wildcard = true;
          st.recheck = true;
          st.dirty = true;
        }
      } else if (!st.names.has(n)) {
        st.names.add(n);
        if (!st.wildcard || st.known !== null) {
          st.force.add(n);
          st.dirty = true;
        }
      }
    }
    for (const n of req.resourceNamesUnsubscribe) {
      if (n === '*') {
        if (st.wildcard) {
          // The client drops what only the wildcard gave it; keep tracking the explicit names.
          st.known ??= this.#knownFromSeq(st);
          st.wildcard = false;
          for (const name of [...st.known.keys()]) if (!st.names.has(name)) st.known.delete(name);
        }
      } else {
        st.names.delete(n);
        st.force.delete(n);
        if (!st.wildcard) st.known?.delete(n);
      }
    }
  }

  /** Reconstructs what a wildcard fast-mode client holds: every entry not changed after sentSeq. */
  #knownFromSeq(st: DeltaTypeState): Map<string, string> {
    const known = new Map<string, string>();
    for (const e of this.host.cache.entries(st.typeUrl).values()) {
      known.set(e.name, e.seq <= st.sentSeq ? e.version : '');
    }
    return known;
  }

  /** Every commit to a subscribed type is looked at: the push works out what this client must hear of it. */
  onCacheChange(changed: Map<string, string[]>): void {
    this.#types.onCacheChange(changed);
  }

  revalidateViews(): void {
    this.#types.revalidateViews(recheck);
  }

  flush(): void {
    this.#types.flush((st) => this.#push(st));
  }

  #visible(st: DeltaTypeState, entry: CacheEntry): boolean {
    const view = this.host.view;
    return !st.filtered || view === undefined || view(this, entry);
  }

  /** Returns whether a response was written. */
  #push(st: DeltaTypeState): boolean {
    const cache = this.host.cache;
    const seq = cache.seq;
    const typeUrl = st.typeUrl;
    const version = String(cache.typeSeq(typeUrl));
    const entries = cache.entries(typeUrl);
    st.dirty = false;

    let body: Buffer | undefined;
    const resources: CacheEntry[] = [];
    const removed: string[] = [];

    if (st.known === null) {
      if (st.initial && st.initialVersions === null) {
        body = this.host.sharedBody(`delta|full|${typeUrl}|${seq}`, () =>
          this.#body(version, typeUrl, [...entries.values()], []),
        );
      } else if (st.initial) {
        const init = st.initialVersions ?? {};
        for (const e of entries.values()) if (init[e.name] !== e.version) resources.push(e);
        for (const name of Object.keys(init)) if (!entries.has(name)) removed.push(name);
      } else {
        const changed = cache.changedSince(typeUrl, st.sentSeq);
        if (changed === undefined) {
          this.fail(grpc.status.ABORTED, 'client fell too far behind the change history; reconnect to resynchronise');
          return false;
        }
        if (changed.length === 0 && st.force.size === 0) {
          st.sentSeq = seq;
          return false;
        }
        const from = st.sentSeq;
        body = this.host.sharedBody(`delta|${typeUrl}|${from}|${seq}`, () => {
          const res: CacheEntry[] = [];
          const rem: string[] = [];
          for (const name of changed) {
            const e = entries.get(name);
            if (e) res.push(e);
            else rem.push(name);
          }
          return this.#body(version, typeUrl, res, rem);
        });
      }
    } else {
      const known = st.known;
      let candidates: Iterable<string>;
      if (st.initial || st.recheck) {
        if (st.initial && st.initialVersions) for (const [k, v] of Object.entries(st.initialVersions)) known.set(k, v);
        const all = new Set<string>(known.keys());
        if (st.wildcard) for (const name of entries.keys()) all.add(name);
        for (const name of st.names) all.add(name);
        candidates = all;
      } else {
        const changed = cache.changedSince(typeUrl, st.sentSeq);
        const all = new Set<string>(st.force);
        if (changed === undefined) {
          for (const name of known.keys()) all.add(name);
          if (st.wildcard) for (const name of entries.keys()) all.add(name);
          for (const name of st.names) all.add(name);
        } else {
          for (const name of changed) all.add(name);
        }
        candidates = all;
      }
      for (const name of candidates) {
        const e = entries.get(name);
        const wanted = e !== undefined && (st.wildcard || st.names.has(name)) && this.#visible(st, e);
        const have = known.get(name);
        if (wanted) {
          if (have !== e.version) {
            resources.push(e);
            known.set(name, e.version);
          }
        } else if (have !== undefined) {
          removed.push(name);
          known.delete(name);
        } else if (st.force.has(name) && st.names.has(name)) {
          // Tells the client that a resource it asked for by name does not exist (or is not visible).
          removed.push(name);
        }
      }
      // A view-filtered wildcard client that can no longer see anything must still be tracked.
      if (!this.checkNameCount(known.size)) return false;
    }
    const first = st.initial;
    st.initial = false;
    st.initialVersions = null;
    st.recheck = false;
    st.force.clear();
    if (body === undefined) {
      if (!first && resources.length === 0 && removed.length === 0) {
        st.sentSeq = seq;
        return false;
      }
      body = this.#body(version, typeUrl, resources, removed);
    }
    st.sentSeq = seq;
    const nonce = this.nextNonce();
    this.send(st, body, stringField(5, nonce), nonce, version);
    return true;
  }

  #body(version: string, typeUrl: string, resources: CacheEntry[], removed: string[]): Buffer {
    const parts: Buffer[] = [stringField(1, version), stringField(4, typeUrl)];
    for (const e of resources) parts.push(e.deltaField);
    for (const name of removed) parts.push(stringField(6, name));
    return Buffer.concat(parts);
  }

  typeStates(): XdsClientTypeState[] {
    return this.#types.snapshot((st) => st.known?.size ?? 0);
  }
}

/** A changed view decision re-runs the view hook over everything on the next push. */
function recheck(st: DeltaTypeState): void {
  st.recheck = true;
}
