import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { splice } from '@ambient-ts/hbone';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
});

/** A connected TCP pair on 127.0.0.1: `accepted` is the server side, paused by the caller from the start. */
async function pausedPair(): Promise<{ accepted: Socket; peer: Socket }> {
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
  cleanups.push(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepting = once(server, 'connection') as Promise<[Socket]>;
  const peer = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  cleanups.push(() => peer.destroy());
  const [accepted] = await accepting;
  cleanups.push(() => accepted.destroy());
  // As a caller that looked at the connection before deciding where to send it would have.
  accepted.pause();
  return { accepted, peer };
}

function readAll(s: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return once(s, 'end').then(() => Buffer.concat(chunks).toString());
}

describe('splice', () => {
  it('resumes streams that were paused before splicing and carries bytes both ways', async () => {
    const left = await pausedPair();
    const right = await pausedPair();
    expect(left.accepted.isPaused()).toBe(true);
    const done = splice(left.accepted, right.accepted);
    expect(left.accepted.readableFlowing).toBe(true);
    expect(right.accepted.readableFlowing).toBe(true);

    const atRight = readAll(right.peer);
    const atLeft = readAll(left.peer);
    left.peer.end('hello from the left');
    right.peer.end('and from the right');
    expect(await atRight).toBe('hello from the left');
    expect(await atLeft).toBe('and from the right');
    expect(await done).toEqual({ aToB: 19, bToA: 18 });
  });
});
