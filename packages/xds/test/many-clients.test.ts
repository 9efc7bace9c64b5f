import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  type CacheEntry,
  XdsClient,
  type XdsPeer,
  type XdsUpdate,
} from '../src/index.js';
import { type Harness, seedWorkloads, startServer, waitFor, workload } from './helpers.js';

let h: Harness;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('many clients at once', () => {
  it('50 Delta and SotW clients sync, and one change reaches every one of them', async () => {
    h = await startServer();
    cleanups.push(() => h.server.destroy());
    seedWorkloads(h.cache, 200);
    const clients = Array.from({ length: 50 }, (_, i) =>
      new XdsClient({ target: h.target, node: { id: `zt-${i}` }, protocol: i % 2 === 0 ? 'delta' : 'sotw' })
        .subscribe(ADDRESS_TYPE_URL)
        .subscribe(AUTHORIZATION_TYPE_URL)
        .start(),
    );
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    await Promise.all(clients.map((c) => c.ready()));
    for (const c of clients) expect(c.resources(ADDRESS_TYPE_URL).size).toBe(200);
    const got = clients.map((c) => waitFor<[XdsUpdate]>(c, 'update', (u) => u.updated.some((r) => r.name === 'w7')));
    h.cache.set(ADDRESS_TYPE_URL, 'w7', workload('w7', '10.77.0.7'));
    await Promise.all(got);
    expect(h.server.stats().connected).toBe(50);
  });

  it('per-node views: each client sees only what the hook allows, and revalidation moves resources', async () => {
    let allowed = new Set(['w0', 'w1']);
    h = await startServer({
      view: (peer: XdsPeer, entry: CacheEntry) => peer.node?.id !== 'zt-limited' || allowed.has(entry.name),
    });
    cleanups.push(() => h.server.destroy());
    seedWorkloads(h.cache, 5);
    const limited = new XdsClient({ target: h.target, node: { id: 'zt-limited' } }).subscribe(ADDRESS_TYPE_URL).start();
    const full = new XdsClient({ target: h.target, node: { id: 'zt-full' } }).subscribe(ADDRESS_TYPE_URL).start();
    cleanups.push(
      () => limited.close(),
      () => full.close(),
    );
    await Promise.all([limited.ready(), full.ready()]);
    expect([...limited.resources(ADDRESS_TYPE_URL).keys()].sort()).toEqual(['w0', 'w1']);
    expect(full.resources(ADDRESS_TYPE_URL).size).toBe(5);
    expect(h.server.clients().find((c) => c.node?.id === 'zt-limited')?.types[0]?.trackedNames).toBe(2);

    const moved = waitFor<[XdsUpdate]>(limited, 'update');
    allowed = new Set(['w1', 'w4']);
    h.server.revalidateViews();
    const [u] = await moved;
    expect(u.updated.map((r) => r.name)).toEqual(['w4']);
    expect(u.removed).toEqual(['w0']);
  });

  it('per-type views: only the (client, type) pairs the scope selects are filtered; the rest stay on the shared fast path', async () => {
    let allowed = new Set(['ns/p0']);
    const askedAbout = new Set<string>();
    h = await startServer({
      view: (_peer: XdsPeer, entry: CacheEntry) => {
        askedAbout.add(entry.typeUrl);
        return allowed.has(entry.name);
      },
      viewApplies: (peer: XdsPeer, typeUrl: string) =>
        typeUrl === AUTHORIZATION_TYPE_URL && peer.node?.id !== 'waypoint',
    });
    cleanups.push(() => h.server.destroy());
    seedWorkloads(h.cache, 5);
    h.cache.transaction((tx) => {
      for (let i = 0; i < 3; i++)
        tx.set(AUTHORIZATION_TYPE_URL, `ns/p${i}`, { name: `p${i}`, namespace: 'ns', action: 'DENY', rules: [{}] });
    });
    const make = (id: string, protocol: 'delta' | 'sotw') =>
      new XdsClient({ target: h.target, node: { id }, protocol })
        .subscribe(ADDRESS_TYPE_URL)
        .subscribe(AUTHORIZATION_TYPE_URL)
        .start();
    const ztDelta = make('zt-delta', 'delta');
    const ztSotw = make('zt-sotw', 'sotw');
    const waypoint = make('waypoint', 'delta');
    const all = [ztDelta, ztSotw, waypoint];
    cleanups.push(() => Promise.all(all.map((c) => c.close())));
    await Promise.all(all.map((c) => c.ready()));
    for (const c of all) expect(c.resources(ADDRESS_TYPE_URL).size).toBe(5);
    expect([...ztDelta.resources(AUTHORIZATION_TYPE_URL).keys()]).toEqual(['ns/p0']);
    expect([...ztSotw.resources(AUTHORIZATION_TYPE_URL).keys()]).toEqual(['ns/p0']);
    expect([...waypoint.resources(AUTHORIZATION_TYPE_URL).keys()].sort()).toEqual(['ns/p0', 'ns/p1', 'ns/p2']);
    // The hook was never asked about an Address, and only the filtered type is tracked name by name.
    expect([...askedAbout]).toEqual([AUTHORIZATION_TYPE_URL]);
    const tracked = (id: string) =>
      Object.fromEntries(
        (h.server.clients().find((c) => c.node?.id === id)?.types ?? []).map((t) => [t.typeUrl, t.trackedNames]),
      );
    expect(tracked('zt-delta')).toEqual({ [ADDRESS_TYPE_URL]: 0, [AUTHORIZATION_TYPE_URL]: 1 });
    expect(tracked('waypoint')).toEqual({ [ADDRESS_TYPE_URL]: 0, [AUTHORIZATION_TYPE_URL]: 0 });

    // Revalidation moves the filtered type only.
    const moved = [ztDelta, ztSotw].map((c) =>
      waitFor<[XdsUpdate]>(c, 'update', (u) => u.typeUrl === AUTHORIZATION_TYPE_URL),
    );
    allowed = new Set(['ns/p2']);
    h.server.revalidateViews();
    const [[d], [so]] = (await Promise.all(moved)) as [[XdsUpdate], [XdsUpdate]];
    expect(d.updated.map((r) => r.name)).toEqual(['ns/p2']);
    expect(d.removed).toEqual(['ns/p0']);
    expect(so.removed).toEqual(['ns/p0']);
    expect([...ztSotw.resources(AUTHORIZATION_TYPE_URL).keys()]).toEqual(['ns/p2']);

    // A change to an unfiltered type reaches every client.
    const got = all.map((c) => waitFor<[XdsUpdate]>(c, 'update', (u) => u.updated.some((r) => r.name === 'w3')));
    h.cache.set(ADDRESS_TYPE_URL, 'w3', workload('w3', '10.9.9.9'));
    await Promise.all(got);
    expect([...askedAbout]).toEqual([AUTHORIZATION_TYPE_URL]);
  });
});
