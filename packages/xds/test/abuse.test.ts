import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ADDRESS_TYPE_URL, DELTA_METHOD, encodeDeltaRequest, XdsClient, type XdsUpdate } from '../src/index.js';
import { type Harness, rawDelta, seedWorkloads, startServer, waitFor, workload } from './helpers.js';

let h: Harness;
let good: XdsClient;
let clock = 0;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeEach(async () => {
  clock = 0;
  h = await startServer({
    maxRequestBytes: 64 * 1024,
    requestBurst: 50,
    requestsPerSecond: 10,
    maxTypesPerStream: 3,
    now: () => clock,
  });
  cleanups.push(() => h.server.destroy());
  seedWorkloads(h.cache, 3);
  good = new XdsClient({ target: h.target, node: { id: 'good' } }).subscribe(ADDRESS_TYPE_URL).start();
  cleanups.push(() => good.destroy());
  await good.ready();
});

/** The well-behaved client still receives changes after the bad one was thrown out. */
async function goodClientUnaffected(): Promise<void> {
  const upd = waitFor<[XdsUpdate]>(good, 'update');
  h.cache.set(ADDRESS_TYPE_URL, 'after', workload('after', '10.8.8.8'));
  const [u] = await upd;
  expect(u.updated.map((r) => r.name)).toEqual(['after']);
  expect(h.server.stats().connected).toBe(1);
}

describe('malicious clients are disconnected without affecting others', () => {
  it('a huge message', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, resourceNamesSubscribe: [`x${'y'.repeat(200_000)}`] }));
    const status = await s.status;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await goodClientUnaffected();
  });

  it('garbage bytes', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    const status = await s.status;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toMatch(/undecodable or invalid request/);
    await goodClientUnaffected();
  });

  it('a request flood', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    for (let i = 0; i < 200; i++)
      s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, resourceNamesSubscribe: [`n${i}`] }));
    const status = await s.status;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(status.details).toMatch(/flood/);
    await goodClientUnaffected();
  });

  it('the rate limit refills with time (injected clock)', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, node: { id: 'steady' } }));
    let r = await s.next();
    // 40 requests per simulated 4 s (10/s) for 5 rounds: 200 requests, never more than the refill.
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 40; i++) s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, responseNonce: r.nonce }));
      h.cache.set(ADDRESS_TYPE_URL, 'tick', workload('tick', `10.7.7.${round}`));
      r = await s.next();
      clock += 4000;
    }
    expect(h.server.stats().connected).toBe(2);
  });

  it('too many resource types on one stream', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    for (let i = 0; i < 4; i++) s.write(encodeDeltaRequest({ typeUrl: `type.googleapis.com/junk.T${i}` }));
    const status = await s.status;
    expect(status.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await goodClientUnaffected();
  });
});

describe('slow client', () => {
  it('gets one coalesced response with the latest state once it ACKs; nothing queues meanwhile', async () => {
    const s = rawDelta(h.target);
    cleanups.push(() => s.close());
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, node: { id: 'slow' } }));
    const r1 = await s.next();
    // Let the good client ACK the final state so we know the server has pushed all it will push.
    let finished = false;
    const goodDone = waitFor<[{ peer: { node?: { id: string } }; version: string }]>(
      h.server,
      'ack',
      (a) => finished && a.peer.node?.id === 'good' && a.version === String(h.cache.seq),
    );
    for (let i = 0; i < 100; i++) {
      h.cache.set(ADDRESS_TYPE_URL, `w${i % 5}`, workload(`w${i % 5}`, `10.6.${i >> 8}.${i & 255}`));
      // Yield now and then so pushes to the good client interleave with the changes.
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    finished = true;
    h.cache.delete(ADDRESS_TYPE_URL, 'w2');
    await goodDone;
    const slow = h.server.clients().find((c) => c.node?.id === 'slow');
    expect(slow?.responses).toBe(1);
    expect(s.queued).toBe(0);
    s.write(encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL, responseNonce: r1.nonce }));
    const r2 = await s.next();
    expect(r2.resources.map((r) => r.name).sort()).toEqual(['w0', 'w1', 'w3', 'w4']);
    expect(r2.removedResources).toEqual(['w2']);
    for (const r of r2.resources) expect(r.version).toBe(h.cache.get(ADDRESS_TYPE_URL, r.name)?.version);
    expect(h.server.clients().find((c) => c.node?.id === 'slow')?.responses).toBe(2);
  });

  it('a client that stops reading is disconnected after the send timeout', async () => {
    const h2 = await startServer({ sendTimeoutMs: 200 });
    cleanups.push(() => h2.server.destroy());
    seedWorkloads(h2.cache, 5000);
    // A bare HTTP/2 peer that sends one request and never reads: flow control stalls the response.
    const session = http2.connect(`http://${h2.target}`, { settings: { initialWindowSize: 16 * 1024 } });
    cleanups.push(() => session.destroy());
    session.on('error', () => {});
    const stream = session.request({
      ':method': 'POST',
      ':path': DELTA_METHOD,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    stream.on('error', () => {});
    stream.pause();
    const msg = encodeDeltaRequest({ typeUrl: ADDRESS_TYPE_URL });
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    stream.write(frame);
    const [peer] = await waitFor<[{ id: number }]>(h2.server, 'disconnect');
    expect(peer.id).toBeGreaterThan(0);
    expect(h2.server.stats().connected).toBe(0);
  });
});
