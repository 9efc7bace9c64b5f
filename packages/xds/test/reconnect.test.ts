import {
  ADDRESS_TYPE_URL,
  createIstioRegistry,
  ResourceCache,
  type Timers,
  XdsClient,
  XdsServer,
  type XdsUpdate,
} from '../src/index.js';
import { seedWorkloads, waitFor, workload } from './helpers.js';

/** Timers that only fire when the test says so, recording each requested delay. */
class ManualTimers implements Timers {
  readonly delays: number[] = [];
  #pending: (() => void) | undefined;
  setTimeout(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    this.#pending = fn;
    return fn;
  }
  clearTimeout(handle: unknown): void {
    if (this.#pending === handle) this.#pending = undefined;
  }
  fire(): void {
    const fn = this.#pending;
    this.#pending = undefined;
    if (!fn) throw new Error('no timer pending');
    fn();
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(cache: ResourceCache, port = 0): Promise<{ server: XdsServer; port: number }> {
  const server = new XdsServer({ cache });
  cleanups.push(() => server.destroy());
  return { server, port: await server.listen(`127.0.0.1:${port}`) };
}

describe('reconnect', () => {
  it('after a server restart: backoff 10 ms doubling, then only changed resources are resent', async () => {
    const cache = new ResourceCache({ registry: createIstioRegistry() });
    seedWorkloads(cache, 20);
    const first = await serve(cache);
    const timers = new ManualTimers();
    const c = new XdsClient({ target: `127.0.0.1:${first.port}`, node: { id: 'zt' }, timers }).subscribe(
      ADDRESS_TYPE_URL,
    );
    cleanups.push(() => c.destroy());
    c.start();
    await c.ready();
    expect(c.resources(ADDRESS_TYPE_URL).size).toBe(20);

    // Server goes away; the control plane's state moves on meanwhile (a fresh cache, as after a restart).
    const down = waitFor(c, 'state', (s) => s === 'backoff');
    first.server.destroy();
    await down;
    expect(timers.delays).toEqual([10]);
    for (const expected of [20, 40, 80]) {
      const again = waitFor(c, 'state', (s) => s === 'backoff');
      timers.fire();
      await again;
      expect(timers.delays.at(-1)).toBe(expected);
    }

    const restarted = new ResourceCache({ registry: createIstioRegistry() });
    seedWorkloads(restarted, 20);
    restarted.transaction((tx) => {
      tx.set(ADDRESS_TYPE_URL, 'w3', workload('w3', '10.3.3.3'));
      tx.set(ADDRESS_TYPE_URL, 'w-new', workload('w-new', '10.9.9.9'));
      tx.delete(ADDRESS_TYPE_URL, 'w7');
    });
    const second = await serve(restarted, first.port);
    const upd = waitFor<[XdsUpdate]>(c, 'update');
    timers.fire();
    const [u] = await upd;
    expect(u.updated.map((r) => r.name).sort()).toEqual(['w-new', 'w3']);
    expect(u.removed).toEqual(['w7']);
    expect(c.resources(ADDRESS_TYPE_URL).size).toBe(20);
    expect(c.state).toBe('connected');

    // A successful response resets the backoff.
    const down2 = waitFor(c, 'state', (s) => s === 'backoff');
    second.server.destroy();
    await down2;
    expect(timers.delays.at(-1)).toBe(10);
  });

  it('many clients survive a server restart and resynchronise', async () => {
    const cache = new ResourceCache({ registry: createIstioRegistry() });
    seedWorkloads(cache, 10);
    const first = await serve(cache);
    const clients = Array.from({ length: 8 }, (_, i) =>
      new XdsClient({ target: `127.0.0.1:${first.port}`, node: { id: `zt-${i}` } }).subscribe(ADDRESS_TYPE_URL).start(),
    );
    cleanups.push(() => Promise.all(clients.map((c) => c.close())));
    await Promise.all(clients.map((c) => c.ready()));
    const reconnected = clients.map((c) => waitFor(c, 'connected'));
    await first.server.close();
    cache.set(ADDRESS_TYPE_URL, 'w0', workload('w0', '10.100.0.1'));
    const second = await serve(cache, first.port);
    const updated = clients.map((c) =>
      waitFor<[XdsUpdate]>(c, 'update', (u) => u.updated.some((r) => r.name === 'w0')),
    );
    await Promise.all(reconnected);
    await Promise.all(updated);
    for (const c of clients) expect(c.resources(ADDRESS_TYPE_URL).size).toBe(10);
    expect(second.server.stats().connected).toBe(8);
  });
});
