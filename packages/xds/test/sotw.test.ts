import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  encodeSotwRequest,
  XdsClient,
  type XdsUpdate,
} from '../src/index.js';
import { type Harness, rawSotw, seedWorkloads, startServer, waitFor, workload } from './helpers.js';

let h: Harness;
const cleanups: (() => unknown)[] = [];
beforeEach(async () => {
  h = await startServer();
  cleanups.push(() => h.server.destroy());
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('state-of-the-world ADS end to end', () => {
  it('XdsClient in sotw mode: initial state, changes, removals (absence), readiness', async () => {
    seedWorkloads(h.cache, 3);
    h.cache.set(AUTHORIZATION_TYPE_URL, 'ns/deny-all', {
      name: 'deny-all',
      namespace: 'ns',
      action: 'DENY',
      rules: [{}],
    });
    const c = new XdsClient({ target: h.target, node: { id: 'sotw-1' }, protocol: 'sotw' })
      .subscribe(ADDRESS_TYPE_URL)
      .subscribe(AUTHORIZATION_TYPE_URL);
    cleanups.push(() => c.destroy());
    c.start();
    await c.ready();
    expect([...c.resources(ADDRESS_TYPE_URL).keys()].sort()).toEqual(['w0', 'w1', 'w2']);
    expect([...c.resources(AUTHORIZATION_TYPE_URL).keys()]).toEqual(['ns/deny-all']);

    const upd = waitFor<[XdsUpdate]>(c, 'update', (u) => u.typeUrl === ADDRESS_TYPE_URL);
    h.cache.transaction((tx) => {
      tx.set(ADDRESS_TYPE_URL, 'w1', workload('w1', '10.1.1.1'));
      tx.delete(ADDRESS_TYPE_URL, 'w2');
    });
    const [u] = await upd;
    expect(u.updated.map((r) => r.name)).toEqual(['w1']);
    expect(u.removed).toEqual(['w2']);
    expect(u.version).toBe(String(h.cache.seq));
  });

  it('raw peer: ACK, NACK keeps the last accepted version, stale nonces are ignored, names can change', async () => {
    seedWorkloads(h.cache, 3);
    const s = rawSotw(h.target);
    cleanups.push(() => s.close());
    s.write(encodeSotwRequest({ typeUrl: ADDRESS_TYPE_URL, resourceNames: ['w0'], node: { id: 'raw' } }));
    const r1 = await s.next();
    expect(r1.resources).toHaveLength(1);
    s.write(
      encodeSotwRequest({
        typeUrl: ADDRESS_TYPE_URL,
        resourceNames: ['w0'],
        versionInfo: r1.versionInfo,
        responseNonce: r1.nonce,
      }),
    );

    h.cache.set(ADDRESS_TYPE_URL, 'w0', workload('w0', '10.0.0.99'));
    const r2 = await s.next();
    expect(r2.versionInfo).toBe(String(h.cache.seq));
    s.write(
      encodeSotwRequest({
        typeUrl: ADDRESS_TYPE_URL,
        resourceNames: ['w0'],
        versionInfo: r1.versionInfo,
        responseNonce: r2.nonce,
        errorDetail: { code: 3, message: 'w0: no thanks' },
      }),
    );
    await waitFor(h.server, 'nack');
    const t = h.server.clients()[0]?.types[0];
    expect(t?.ackedVersion).toBe(r1.versionInfo);
    expect(t?.lastNack?.message).toBe('w0: no thanks');

    // A request carrying an old nonce is stale: it changes nothing.
    s.write(
      encodeSotwRequest({ typeUrl: ADDRESS_TYPE_URL, resourceNames: ['w0', 'w1', 'w2'], responseNonce: r1.nonce }),
    );
    // Changing names with the current nonce: a new response with the requested set.
    s.write(
      encodeSotwRequest({
        typeUrl: ADDRESS_TYPE_URL,
        resourceNames: ['w1', 'w2'],
        versionInfo: r1.versionInfo,
        responseNonce: r2.nonce,
      }),
    );
    const r3 = await s.next();
    expect(r3.resources).toHaveLength(2);
    expect(h.server.clients()[0]?.types[0]?.names.sort()).toEqual(['w1', 'w2']);
  });
});
