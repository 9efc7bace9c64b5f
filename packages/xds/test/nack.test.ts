import {
  ADDRESS_TYPE_URL,
  type Address,
  defineResourceType,
  lookupType,
  parseIp,
  ResourceCache,
  TypeRegistry,
  XdsClient,
  type XdsRejection,
  type XdsUpdate,
} from '../src/index.js';
import { type Harness, startServer, waitFor, workload } from './helpers.js';

// The server side uses a permissive definition of the same type URL (no validator), standing in
// for a buggy or hostile control plane; the client validates with Istio's rules.
const permissive = new TypeRegistry([
  defineResourceType({ typeUrl: ADDRESS_TYPE_URL, messageType: lookupType('istio.workload.Address') }),
]);

let h: Harness;
let c: XdsClient;
afterEach(async () => {
  c?.destroy();
  h?.server.destroy();
});

describe('client validation, NACK and the server side of it', () => {
  it('applies valid resources, NACKs bad ones with names and reasons, and keeps the last good version', async () => {
    h = await startServer({}, new ResourceCache({ registry: permissive }));
    h.cache.transaction((tx) => {
      tx.set(ADDRESS_TYPE_URL, 'good', workload('good', '10.0.0.1'));
      tx.set(ADDRESS_TYPE_URL, 'no-uid', { workload: { name: 'x', addresses: [parseIp('10.0.0.2')] } });
      tx.set(ADDRESS_TYPE_URL, 'bad-ip', { workload: { uid: 'bad-ip', addresses: [Buffer.from([1, 2, 3])] } });
    });
    c = new XdsClient({ target: h.target, node: { id: 'n1' } }).subscribe(ADDRESS_TYPE_URL);
    const nack = waitFor<[XdsRejection]>(c, 'nack');
    const serverNack = waitFor<[{ typeUrl: string; message: string }]>(h.server, 'nack');
    c.start();
    const [rej] = await nack;
    expect(rej.errors.map((e) => e.name).sort()).toEqual(['bad-ip', 'no-uid']);
    expect(rej.errors.find((e) => e.name === 'no-uid')?.reason).toMatch(/uid is required/);
    expect(rej.errors.find((e) => e.name === 'bad-ip')?.reason).toMatch(/4 or 16 bytes, got 3/);
    expect([...c.resources(ADDRESS_TYPE_URL).keys()]).toEqual(['good']);
    await c.ready();

    const [sn] = await serverNack;
    expect(sn.message).toMatch(/no-uid/);
    const t = h.server.clients()[0]?.types[0];
    expect(t?.nacks).toBe(1);
    expect(t?.lastNack?.message).toMatch(/bad-ip/);
    expect(t?.ackedVersion).toBe('');
    expect(h.server.stats().nacks).toBe(1);

    // A bad new version of a good resource does not replace it.
    const nack2 = waitFor<[XdsRejection]>(c, 'nack');
    h.cache.set(ADDRESS_TYPE_URL, 'good', { workload: { uid: 'good', addresses: [Buffer.alloc(5)] } });
    await nack2;
    const kept = c.get<Address>(ADDRESS_TYPE_URL, 'good')?.value;
    expect(kept?.type === 'workload' && kept.workload.addresses[0]?.length).toBe(4);

    // The next good version is applied and ACKed.
    const upd = waitFor<[XdsUpdate]>(c, 'update', (u) => u.updated.length > 0);
    const ack = waitFor<[{ version: string }]>(h.server, 'ack');
    h.cache.set(ADDRESS_TYPE_URL, 'good', workload('good', '10.0.0.7'));
    await upd;
    const [a] = await ack;
    expect(a.version).toBe(String(h.cache.seq));
    expect(h.server.clients()[0]?.types[0]?.ackedVersion).toBe(String(h.cache.seq));
  });
});
