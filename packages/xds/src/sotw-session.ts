import { decodeSotwRequest } from './discovery-messages.js';
import type { CacheEntry } from './resource-cache.js';
import { newTypeState, Session, type TypeStateBase, type XdsClientTypeState } from './server-session.js';
import { TypeStateTable } from './type-state-table.js';
import { stringField } from './wire.js';

interface SotwTypeState extends TypeStateBase {
  /** Nonce of the last response sent; requests carrying an older one are stale and ignored. */
  lastNonce: string;
  /** Set when subscriptions changed: the next response goes out even if no resource changed. */
  force: boolean;
}

/** State-of-the-world ADS (StreamAggregatedResources) for one client. */
export class SotwSession extends Session {
  readonly protocol = 'sotw' as const;
  readonly #types = new TypeStateTable<SotwTypeState>(this, this.host);

  protected handle(buf: Buffer): void {
    const req = decodeSotwRequest(buf);
    if (req.typeUrl === '') throw new Error('type_url is required');
    if (req.node && this.node === undefined) this.node = req.node;
    let st = this.#types.get(req.typeUrl);
    if (st === undefined) {
      if (!this.checkTypeCount(this.#types.size + 1)) return;
      st = { ...newTypeState(req.typeUrl, this.viewFilters(req.typeUrl)), lastNonce: '', force: true };
      st.wildcard = req.resourceNames.length === 0 || req.resourceNames.includes('*');
      for (const n of req.resourceNames) if (n !== '*') st.names.add(n);
      this.#types.set(st);
    } else {
      // A request that answers an older response than the last one sent is stale (xDS spec).
      if (req.responseNonce !== '' && req.responseNonce !== st.lastNonce) return;
      this.recordAck(st, req.responseNonce, req.errorDetail);
      // Legacy wildcard: a client that subscribed with an empty list keeps sending an empty list.
      const wildcard = req.resourceNames.includes('*') || (st.wildcard && req.resourceNames.length === 0);
      const names = new Set(req.resourceNames.filter((n) => n !== '*'));
      if (wildcard !== st.wildcard || names.size !== st.names.size || [...names].some((n) => !st?.names.has(n))) {
        st.wildcard = wildcard;
        st.names = names;
        st.force = true;
        st.dirty = true;
      }
    }
    if (!this.checkNameCount(st.names.size)) return;
    if (st.dirty) this.host.markDirty(this);
  }

  onCacheChange(changed: Map<string, string[]>): void {
    this.#types.onCacheChange(changed, watches);
  }

  revalidateViews(): void {
    this.#types.revalidateViews(forceResend);
  }

  flush(): void {
    this.#types.flush((st) => this.#push(st));
  }

  #push(st: SotwTypeState): boolean {
    const cache = this.host.cache;
    const seq = cache.seq;
    const typeUrl = st.typeUrl;
    st.dirty = false;
    if (!st.force) {
      // Coalesced changes may all concern names this client does not watch.
      const changed = cache.changedSince(typeUrl, st.sentSeq);
      if (changed !== undefined && !st.wildcard && !changed.some((n) => st.names.has(n))) {
        st.sentSeq = seq;
        return false;
      }
    }
    const version = String(cache.typeSeq(typeUrl));
    const entries = cache.entries(typeUrl);
    const view = st.filtered ? this.host.view : undefined;
    let body: Buffer;
    if (st.wildcard && view === undefined) {
      body = this.host.sharedBody(`sotw|${typeUrl}|${seq}`, () => this.#body(version, typeUrl, entries.values()));
    } else {
      const selected: CacheEntry[] = [];
      const source = st.wildcard ? entries.keys() : st.names;
      for (const name of source) {
        const e = entries.get(name);
        if (e && (view === undefined || view(this, e))) selected.push(e);
      }
      body = this.#body(version, typeUrl, selected);
    }
    st.force = false;
    st.sentSeq = seq;
    const nonce = this.nextNonce();
    st.lastNonce = nonce;
    this.send(st, body, stringField(5, nonce), nonce, version);
    return true;
  }

  #body(version: string, typeUrl: string, entries: Iterable<CacheEntry>): Buffer {
    const parts: Buffer[] = [stringField(1, version), stringField(4, typeUrl)];
    for (const e of entries) parts.push(e.sotwField);
    return Buffer.concat(parts);
  }

  typeStates(): XdsClientTypeState[] {
    return this.#types.snapshot((st) => st.names.size);
  }
}

/** A commit touches a SotW type when the client takes every name or watches one that changed. */
function watches(st: SotwTypeState, changed: string[]): boolean {
  return st.wildcard || changed.some((n) => st.names.has(n));
}

/** A changed view decision is sent even if no resource changed. */
function forceResend(st: SotwTypeState): void {
  st.force = true;
}
