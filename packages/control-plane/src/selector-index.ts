/**
 * Finds the selectors (of Services or policies) in a namespace that may match a set of labels without
 * testing every one: each selector is filed under one of its `key=value` pairs, so a workload only looks
 * at the selectors filed under one of its own labels. Callers still confirm with a full match.
 */
export class SelectorIndex {
  /** namespace -> "key=value" -> owner keys. */
  readonly #byPair = new Map<string, Map<string, Set<string>>>();
  /** namespace -> owners whose selector is empty (they match every workload there). */
  readonly #matchAll = new Map<string, Set<string>>();
  readonly #filed = new Map<string, { ns: string; pair: string | undefined }>();

  set(owner: string, ns: string, selector: Readonly<Record<string, string>> | undefined): void {
    this.delete(owner);
    if (!selector) return;
    const keys = Object.keys(selector);
    if (keys.length === 0) {
      add(this.#matchAll, ns, owner);
      this.#filed.set(owner, { ns, pair: undefined });
      return;
    }
    // File under the lexically smallest key: stable, and any one pair is enough to be found.
    const k = keys.sort()[0] as string;
    const pair = `${k}=${selector[k]}`;
    let byPair = this.#byPair.get(ns);
    if (!byPair) {
      byPair = new Map();
      this.#byPair.set(ns, byPair);
    }
    add(byPair, pair, owner);
    this.#filed.set(owner, { ns, pair });
  }

  delete(owner: string): void {
    const f = this.#filed.get(owner);
    if (!f) return;
    this.#filed.delete(owner);
    if (f.pair === undefined) remove(this.#matchAll, f.ns, owner);
    else {
      const byPair = this.#byPair.get(f.ns);
      if (byPair) {
        remove(byPair, f.pair, owner);
        if (byPair.size === 0) this.#byPair.delete(f.ns);
      }
    }
  }

  /** Owners in `ns` whose selector might match `labels` (a superset of the real matches). */
  *candidates(ns: string, labels: Readonly<Record<string, string>>): Iterable<string> {
    const all = this.#matchAll.get(ns);
    if (all) yield* all;
    const byPair = this.#byPair.get(ns);
    if (!byPair) return;
    for (const k in labels) {
      const owners = byPair.get(`${k}=${labels[k]}`);
      if (owners) yield* owners;
    }
  }
}

function add(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) {
    s = new Set();
    m.set(k, s);
  }
  s.add(v);
}

function remove(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}
