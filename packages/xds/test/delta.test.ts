import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  encodeDeltaRequest,
  formatIp,
  XdsClient,
  type XdsUpdate,
} from '../src/index.js';
import { type Harness, rawDelta, seedWorkloads, startServer, waitFor, workload } from './helpers.js';

let h: Harness;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function client(extra: Partial<ConstructorParameters<typeof XdsClient>[0]> = {}): XdsClient {
  const c = new XdsClient({
    target: h.target,
    node: { id: 'ztunnel~10.0.0.1~zt-1.istio-system~istio-system.svc.cluster.local' },
    ...extra,
  });
  cleanups.push(() => c.destroy());
  return c;
}

beforeEach(async () => {
  h = await startServer();
  cleanups.push(() => h.server.destroy());
});

describe('Delta ADS end to end', () => {
  it('syncs wildcard types, becomes ready, then receives changes and removals', async () => {
    seedWorkloads(h.cache, 5);
    const c = client().subscribe(ADDRESS_TYPE_URL).subscribe(AUTHORIZATION_TYPE_URL);
    const firstUpdate = waitFor<[XdsUpdate]>(c, 'update', (u) => u.typeUrl === ADDRESS_TYPE_URL);
    c.start();
    await c.ready();
    const [u] = await firstUpdate;
    expect(u.updated.map((r) => r.name).sort()).toEqual(['w0', 'w1', 'w2', 'w3', 'w4']);
    expect(c.resources(AUTHORIZATION_TYPE_URL).size).toBe(0);
    const w0 = c.get<Address>(ADDRESS_TYPE_URL, 'w0')?.value;
    expect(w0?.type).toBe('workload');
    if (w0?.type === 'workload') expect(formatIp(w0.workload.addresses[0] as Uint8Array)).toBe('10.0.0.0');

    const change = waitFor<[XdsUpdate]>(c, 'update');
    h.cache.set(ADDRESS_TYPE_URL, 'w9', workload('w9', '10.9.9.9'));
    const [u2] = await change;
    expect(u2.updated.map((r) => r.name)).toEqual(['w9']);
    expect(u2.removed).toEqual([]);

    const removal = waitFor<[XdsUpdate]>(c, 'update');
    h.cache.delete(ADDRESS_TYPE_URL, 'w1');
    const acked = waitFor<[{ version: string }]>(h.server, 'ack', (a) => a.version === String(h.cache.seq));
    const [u3] = await removal;
    await acked;
    expect(u3.removed).toEqual(['w1']);
    expect(u3.updated).toEqual([]);
    expect(c.resources(ADDRESS_TYPE_URL).has('w1')).toBe(false);

    // The server tracks what was ACKed.
    const [state] = h.server.clients();
    const t = state?.types.find((x) => x.typeUrl === ADDRESS_TYPE_URL);
    expect(t?.pendingNonce).toBeNull();
    expect(t?.wildcard).toBe(true);
    expect(t?.trackedNames).toBe(0);
    expect(state?.node?.id).toContain('ztunnel~');
  });

  it('named subscriptions: subscribe and unsubscribe on a live stream, non-existent names reported removed', async () => {
    seedWorkloads(h.cache, 3);
    const c = client().subscribe(ADDRESS_TYPE_URL, ['w0', 'nope']);
    const first = waitFor<[XdsUpdate]>(c, 'update');
    c.start();
    const [u] = await first;
    expect(u.updated.map((r) => r.name)).toEqual(['w0']);
    expect([...c.resources(ADDRESS_TYPE_URL).keys()]).toEqual(['w0']);

    const more = waitFor<[XdsUpdate]>(c, 'update', (x) => x.updated.length > 0);
    c.subscribe(ADDRESS_TYPE_URL, ['w2']);
    const [u2] = await more;
    expect(u2.updated.map((r) => r.name)).toEqual(['w2']);

    // Changes to names not subscribed are not sent; to subscribed ones they are.
    const next = waitFor<[XdsUpdate]>(c, 'update', (x) => x.updated.length > 0);
    h.cache.set(ADDRESS_TYPE_URL, 'w1', workload('w1', '10.1.1.1'));
    h.cache.set(ADDRESS_TYPE_URL, 'w2', workload('w2', '10.2.2.2'));
    const [u3] = await next;
    expect(u3.updated.map((r) => r.name)).toEqual(['w2']);

    c.unsubscribe(ADDRESS_TYPE_URL, ['w2']);
    expect(c.resources(ADDRESS_TYPE_URL).has('w2')).toBe(false);
    const next2 = waitFor<[XdsUpdate]>(c, 'update', (x) => x.updated.length > 0);
    h.cache.set(ADDRESS_TYPE_URL, 'w2', workload('w2', '10.2.2.3'));
    h.cache.set(ADDRESS_TYPE_URL, 'w0', workload('w0', '10.0.0.9'));
    const [u4] = await next2;
    expect(u4.updated.map((r) => r.name)).toEqual(['w0']);
  });

  it('a raw peer sees nonces, per-type versions and ACK-gated pushes', async () => {
    seedWorkloads(h.cache, 2);
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, node: { id: 'raw' } }));
    const r1 = await s.next();
    expect(r1.resources).toHaveLength(2);
    expect(r1.nonce).not.toBe('');
    expect(r1.systemVersionInfo).toBe(String(h.cache.seq));
    // Without an ACK, changes wait and coalesce.
    h.cache.set(ADDRESS_TYPE_URL, 'w5', workload('w5', '10.5.5.5'));
    h.cache.set(ADDRESS_TYPE_URL, 'w5', workload('w5', '10.5.5.6'));
    h.cache.delete(ADDRESS_TYPE_URL, 'w0');
    await new Promise((r) => setImmediate(r));
    expect(s.queued).toBe(0);
    expect(h.server.clients()[0]?.types[0]?.pendingNonce).toBe(r1.nonce);
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, responseNonce: r1.nonce }));
    const r2 = await s.next();
    expect(r2.resources.map((r) => r.name)).toEqual(['w5']);
    expect(r2.removedResources).toEqual(['w0']);
    expect(r2.nonce).not.toBe(r1.nonce);
  });
});
