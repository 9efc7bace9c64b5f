import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { H2Connection, H2HeaderList, H2Stream } from '../src/h2/types.js';
import { ConnectionPool, poolKey } from '../src/pool.js';
import { FakeClock } from './support/fake-clock.js';

/** Just enough of an H2Connection for pool bookkeeping: streams are PassThroughs closed on demand. */
class FakeConnection extends EventEmitter {
  activeStreams = 0;
  remoteMaxConcurrentStreams = Number.POSITIVE_INFINITY;
  draining = false;
  closed = false;
  readonly streams: H2Stream[] = [];
  request(_headers: H2HeaderList): H2Stream {
    if (this.draining) throw Object.assign(new Error('refused'), { code: 'ERR_H2_REFUSED' });
    this.activeStreams++;
    const s = new PassThrough() as unknown as H2Stream;
    s.once('close', () => this.activeStreams--);
    this.streams.push(s);
    return s;
  }
  async close(): Promise<void> {
    this.draining = true;
    this.closed = true;
    this.emit('close');
  }
  destroy(): void {
    void this.close();
  }
}

function setup(max = 100) {
  const clock = new FakeClock();
  const pool = new ConnectionPool({ maxStreamsPerConnection: max, idleTimeoutMs: 300_000, timers: clock });
  const made: FakeConnection[] = [];
  let creating = 0;
  let maxCreating = 0;
  const connect = async (): Promise<H2Connection> => {
    creating++;
    maxCreating = Math.max(maxCreating, creating);
    await new Promise((r) => setImmediate(r));
    creating--;
    const c = new FakeConnection();
    made.push(c);
    return c as unknown as H2Connection;
  };
  return { clock, pool, made, connect, maxCreating: () => maxCreating };
}

const KEY = poolKey({
  sourceIdentity: 'spiffe://td/ns/a/sa/b',
  destinationIdentities: ['spiffe://td/ns/x/sa/y'],
  destination: '10.0.0.1:15008',
  sourceAddress: undefined,
});

it('creates one connection per key at a time and opens another past the stream limit', async () => {
  const { pool, made, connect, maxCreating } = setup(100);
  const streams = await Promise.all(Array.from({ length: 250 }, () => pool.request(KEY, [], connect)));
  expect(streams).toHaveLength(250);
  expect(maxCreating()).toBe(1);
  expect(made.map((c) => c.activeStreams)).toEqual([100, 100, 50]);
  expect(pool.stats()).toEqual({ connections: 3, streams: 250 });
});

it('honours a peer concurrency limit lower than ours', async () => {
  const { pool, made, connect } = setup(100);
  await pool.request(KEY, [], connect);
  made[0]!.remoteMaxConcurrentStreams = 2;
  await pool.request(KEY, [], connect);
  await pool.request(KEY, [], connect);
  expect(made.map((c) => c.activeStreams)).toEqual([2, 1]);
});

it('sends no new streams to a connection that received GOAWAY', async () => {
  const { pool, made, connect } = setup();
  await pool.request(KEY, [], connect);
  made[0]!.draining = true;
  await pool.request(KEY, [], connect);
  expect(made).toHaveLength(2);
  expect(made[1]!.activeStreams).toBe(1);
});

it('keys connections apart by source identity, destination identities, destination and source IP', () => {
  const base = {
    sourceIdentity: 'a',
    destinationIdentities: ['x', 'y'],
    destination: '1.1.1.1:15008',
    sourceAddress: '2.2.2.2',
  };
  expect(poolKey(base)).toBe(poolKey({ ...base, destinationIdentities: ['y', 'x'] }));
  const variants = [
    { ...base, sourceIdentity: 'b' },
    { ...base, destinationIdentities: ['x'] },
    { ...base, destination: '1.1.1.1:15009' },
    { ...base, sourceAddress: '2.2.2.3' },
  ];
  for (const v of variants) expect(poolKey(v)).not.toBe(poolKey(base));
});

it('releases a connection idle for 5 minutes, and not one in use', async () => {
  const { pool, made, connect, clock } = setup();
  const s1 = await pool.request(KEY, [], connect);
  clock.advance(600_000);
  expect(made[0]!.closed).toBe(false);
  s1.destroy();
  await new Promise((r) => setImmediate(r));
  clock.advance(299_999);
  expect(made[0]!.closed).toBe(false);
  // A stream opened during the idle period cancels the release.
  const s2 = await pool.request(KEY, [], connect);
  clock.advance(300_000);
  expect(made[0]!.closed).toBe(false);
  s2.destroy();
  await new Promise((r) => setImmediate(r));
  clock.advance(300_000);
  expect(made[0]!.closed).toBe(true);
  expect(pool.stats().connections).toBe(0);
});

it('gives every waiter the error when the connection cannot be made, and tries again next time', async () => {
  const clock = new FakeClock();
  const pool = new ConnectionPool({ maxStreamsPerConnection: 100, idleTimeoutMs: 1000, timers: clock });
  let attempts = 0;
  const failing = async (): Promise<H2Connection> => {
    attempts++;
    throw Object.assign(new Error('refused'), { code: 'ERR_HBONE_CONNECT' });
  };
  const results = await Promise.allSettled([1, 2, 3].map(() => pool.request(KEY, [], failing)));
  expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  expect(attempts).toBe(1);
  await expect(pool.request(KEY, [], failing)).rejects.toMatchObject({ code: 'ERR_HBONE_CONNECT' });
  expect(attempts).toBe(2);
});

it('lets a waiter give up with its AbortSignal while the connection is being made', async () => {
  const { pool, connect } = setup();
  const ac = new AbortController();
  const waiting = pool.request(KEY, [], connect, ac.signal);
  ac.abort(new Error('caller gave up'));
  await expect(waiting).rejects.toThrow('caller gave up');
  // The connection made meanwhile serves the next caller.
  await pool.request(KEY, [], connect);
  expect(pool.stats().connections).toBe(1);
});

it('refuses requests after close()', async () => {
  const { pool, connect, made } = setup();
  await pool.request(KEY, [], connect);
  await pool.close();
  expect(made[0]!.closed).toBe(true);
  await expect(pool.request(KEY, [], connect)).rejects.toMatchObject({ code: 'ERR_HBONE_CLOSED' });
});
