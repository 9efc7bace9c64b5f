/**
 * A hand-driven peer sends what a broken or hostile HTTP/2 implementation would: every violation must end
 * in a clean connection error (GOAWAY with the RFC 9113 code, 'error' with ERR_H2_PROTOCOL, socket closed)
 * or a stream error (RST_STREAM) — never an exception, never a hang.
 */
import type { HboneError } from '../src/errors.js';
import { CLIENT_PREFACE } from '../src/h2/constants.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';
import { createH2Connection, H2_ERROR, type H2Connection, type H2HeaderList, type H2Stream } from '../src/h2/index.js';
import { cleanupAll, connectHeaders, digestOf, RawPeer, socketPair } from './h2-support.js';

afterEach(cleanupAll);

const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST: 3, SETTINGS: 4, PUSH: 5, PING: 6, GOAWAY: 7, WU: 8, CONT: 9 };
const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4, PADDED: 8, PRIORITY: 0x20 };

interface ServerUnderTest {
  server: H2Connection;
  peer: RawPeer;
  errors: HboneError[];
  streams: Array<{ stream: H2Stream; headers: H2HeaderList }>;
  hpack: HpackEncoder;
  headers(streamId: number, list: H2HeaderList, flags?: number): Buffer;
}

/** Our server, facing a raw client that already sent the preface and an empty SETTINGS. */
async function rawClient(preface = true, connectionWindowSize?: number): Promise<ServerUnderTest> {
  const { a, b } = await socketPair();
  const server = createH2Connection({ role: 'server', socket: b, connectionWindowSize });
  const errors: HboneError[] = [];
  const streams: ServerUnderTest['streams'] = [];
  server.on('error', (e) => errors.push(e as HboneError));
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    streams.push({ stream, headers });
  });
  const peer = new RawPeer(a);
  if (preface) peer.send(CLIENT_PREFACE, RawPeer.settings());
  const hpack = new HpackEncoder();
  return {
    server,
    peer,
    errors,
    streams,
    hpack,
    headers: (streamId, list, flags = F.END_HEADERS) => RawPeer.frame(T.HEADERS, flags, streamId, hpack.encode(list)),
  };
}

async function expectConnectionError(t: ServerUnderTest, h2Code: number | number[]): Promise<void> {
  const codes = Array.isArray(h2Code) ? h2Code : [h2Code];
  const goaway = await t.peer.waitFor((f) => f.type === T.GOAWAY);
  expect(goaway).toBeDefined();
  expect(codes).toContain(goaway!.payload.readUInt32BE(4));
  await t.peer.waitClosed();
  expect(t.errors).toHaveLength(1);
  expect(t.errors[0]).toMatchObject({ code: 'ERR_H2_PROTOCOL' });
  expect(codes).toContain(t.errors[0]!.h2Code);
  expect(t.server.closed).toBe(true);
}

const request = (authority = '127.0.0.1:9'): H2HeaderList => connectHeaders(authority);

describe('connection errors from a raw client', () => {
  it('garbage instead of the preface (an HTTP/1.1 request)', async () => {
    const t = await rawClient(false);
    t.peer.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('a first frame that is not SETTINGS', async () => {
    const t = await rawClient(false);
    t.peer.send(CLIENT_PREFACE, RawPeer.frame(T.PING, 0, 0, Buffer.alloc(8)));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('a frame larger than our SETTINGS_MAX_FRAME_SIZE', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.DATA, 0, 1, Buffer.alloc(16385)));
    await expectConnectionError(t, H2_ERROR.FRAME_SIZE_ERROR);
  });

  it('a corrupt HPACK block', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.HEADERS, F.END_HEADERS, 1, [0xff, 0xff, 0xff]));
    await expectConnectionError(t, H2_ERROR.COMPRESSION_ERROR);
  });

  it('DATA on stream 0', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.DATA, 0, 0, Buffer.from('x')));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('DATA on an idle stream', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.DATA, 0, 5, Buffer.from('x')));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('a connection WINDOW_UPDATE that overflows 2^31-1', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.WU, 0, 0, RawPeer.u32(0x7fffffff)));
    await expectConnectionError(t, H2_ERROR.FLOW_CONTROL_ERROR);
  });

  it('a WINDOW_UPDATE with increment 0 on the connection', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.WU, 0, 0, RawPeer.u32(0)));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('HEADERS without END_HEADERS followed by another frame (CONTINUATION expected)', async () => {
    const t = await rawClient();
    t.peer.send(
      RawPeer.frame(T.HEADERS, 0, 1, t.hpack.encode(request())),
      RawPeer.frame(T.PING, 0, 0, Buffer.alloc(8)),
    );
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('CONTINUATION on another stream than the open header block', async () => {
    const t = await rawClient();
    const block = t.hpack.encode(request());
    t.peer.send(
      RawPeer.frame(T.HEADERS, 0, 1, block.subarray(0, 2)),
      RawPeer.frame(T.CONT, F.END_HEADERS, 3, block.subarray(2)),
    );
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('CONTINUATION without a header block', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.CONT, F.END_HEADERS, 1, [0x82]));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('an endless CONTINUATION sequence (flood) is cut off', async () => {
    const t = await rawClient();
    const frames = [RawPeer.frame(T.HEADERS, 0, 1, Buffer.alloc(16000, 0x20))];
    for (let i = 0; i < 6; i++) frames.push(RawPeer.frame(T.CONT, 0, 1, Buffer.alloc(16000, 0x20)));
    t.peer.send(...frames);
    await expectConnectionError(t, H2_ERROR.ENHANCE_YOUR_CALM);
  });

  it('PUSH_PROMISE from a client', async () => {
    const t = await rawClient();
    t.peer.send(RawPeer.frame(T.PUSH, F.END_HEADERS, 1, [0, 0, 0, 2, 0x82]));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('a stream id from the server range (even)', async () => {
    const t = await rawClient();
    t.peer.send(t.headers(2, request()));
    await expectConnectionError(t, H2_ERROR.PROTOCOL_ERROR);
  });

  it('a stream id lower than one already used', async () => {
    const t = await rawClient();
    t.peer.send(t.headers(5, request()), t.headers(3, request()));
    await expectConnectionError(t, [H2_ERROR.PROTOCOL_ERROR, H2_ERROR.STREAM_CLOSED]);
  });

  const badSettings: Array<[string, Buffer, number]> = [
    ['ENABLE_PUSH=2', RawPeer.settings([[2, 2]]), H2_ERROR.PROTOCOL_ERROR],
    ['INITIAL_WINDOW_SIZE=2^31', RawPeer.settings([[4, 2 ** 31]]), H2_ERROR.FLOW_CONTROL_ERROR],
    ['MAX_FRAME_SIZE=100', RawPeer.settings([[5, 100]]), H2_ERROR.PROTOCOL_ERROR],
    ['MAX_FRAME_SIZE=2^24', RawPeer.settings([[5, 2 ** 24]]), H2_ERROR.PROTOCOL_ERROR],
    [
      'a length that is not a multiple of 6',
      RawPeer.frame(T.SETTINGS, 0, 0, [0, 3, 0, 0, 0]),
      H2_ERROR.FRAME_SIZE_ERROR,
    ],
    ['an ACK with a payload', RawPeer.frame(T.SETTINGS, F.ACK, 0, [0, 3, 0, 0, 0, 1]), H2_ERROR.FRAME_SIZE_ERROR],
    ['SETTINGS on a stream', RawPeer.frame(T.SETTINGS, 0, 1, []), H2_ERROR.PROTOCOL_ERROR],
  ];
  for (const [what, frame, code] of badSettings) {
    it(`SETTINGS: ${what}`, async () => {
      const t = await rawClient();
      t.peer.send(frame);
      await expectConnectionError(t, code);
    });
  }

  it('PING with a bad length, RST_STREAM on stream 0, GOAWAY on a stream', async () => {
    for (const frame of [
      RawPeer.frame(T.PING, 0, 0, Buffer.alloc(7)),
      RawPeer.frame(T.RST, 0, 0, RawPeer.u32(0)),
      RawPeer.frame(T.GOAWAY, 0, 1, Buffer.alloc(8)),
    ]) {
      const t = await rawClient();
      t.peer.send(frame);
      await expectConnectionError(t, [H2_ERROR.FRAME_SIZE_ERROR, H2_ERROR.PROTOCOL_ERROR]);
    }
  });
});

describe('stream errors and tolerated input from a raw client', () => {
  it('ignores unknown frame types and settings, answers PING and SETTINGS, and accepts padded/priority frames', async () => {
    const t = await rawClient();
    const block = t.hpack.encode(request('10.1.2.3:80'));
    const padded = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), block, Buffer.alloc(3)]);
    t.peer.send(
      RawPeer.frame(0xfa, 0, 0, Buffer.from('unknown frame type')),
      RawPeer.settings([[0x99, 12345]]),
      RawPeer.frame(T.PING, 0, 0, Buffer.from('pingpong')),
      RawPeer.frame(T.HEADERS, F.END_HEADERS | F.PADDED | F.PRIORITY, 1, padded),
      RawPeer.frame(T.PRIORITY, 0, 1, [0, 0, 0, 0, 1]),
      RawPeer.frame(
        T.DATA,
        F.PADDED | F.END_STREAM,
        1,
        Buffer.concat([Buffer.from([4]), Buffer.from('hello'), Buffer.alloc(4)]),
      ),
    );
    const pong = await t.peer.waitFor((f) => f.type === T.PING && f.flags === F.ACK);
    expect(pong!.payload.toString()).toBe('pingpong');
    expect(await t.peer.waitFor((f) => f.type === T.SETTINGS && f.flags === F.ACK)).toBeDefined();
    while (t.streams.length === 0) await new Promise((r) => setImmediate(r));
    expect(t.streams[0]!.headers).toEqual(request('10.1.2.3:80'));
    expect((await digestOf(t.streams[0]!.stream)).bytes).toBe(5);
    expect(t.errors).toEqual([]);
  });

  it('malformed requests (uppercase name, CONNECT without :authority) get RST_STREAM PROTOCOL_ERROR; the connection lives', async () => {
    const t = await rawClient();
    t.peer.send(
      t.headers(1, [...request(), ['X-Upper', 'v']]),
      t.headers(3, [[':method', 'CONNECT']]),
      t.headers(5, request()),
    );
    const rst1 = await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 1);
    const rst3 = await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 3);
    expect(rst1!.payload.readUInt32BE(0)).toBe(H2_ERROR.PROTOCOL_ERROR);
    expect(rst3!.payload.readUInt32BE(0)).toBe(H2_ERROR.PROTOCOL_ERROR);
    while (t.streams.length === 0) await new Promise((r) => setImmediate(r));
    expect(t.streams.map((s) => s.stream.id)).toEqual([5]);
    expect(t.errors).toEqual([]);
  });

  it('DATA beyond the stream window gets RST_STREAM FLOW_CONTROL_ERROR', async () => {
    const t = await rawClient(true, 1 << 20);
    t.peer.send(t.headers(1, request()));
    // 65535 is the window; five 16 KiB frames exceed it.
    for (let i = 0; i < 5; i++) t.peer.send(RawPeer.frame(T.DATA, 0, 1, Buffer.alloc(16384)));
    const rst = await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 1);
    expect(rst!.payload.readUInt32BE(0)).toBe(H2_ERROR.FLOW_CONTROL_ERROR);
    expect(t.errors).toEqual([]);
  });

  it('HEADERS whose priority depends on the stream itself is refused; HPACK stays in sync', async () => {
    const t = await rawClient();
    const block = t.hpack.encode(request('10.9.9.9:1'));
    t.peer.send(
      RawPeer.frame(
        T.HEADERS,
        F.END_HEADERS | F.PRIORITY,
        1,
        Buffer.concat([RawPeer.u32(1), Buffer.from([16]), block]),
      ),
      t.headers(3, request('10.9.9.9:1')),
    );
    const rst = await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 1);
    expect(rst!.payload.readUInt32BE(0)).toBe(H2_ERROR.PROTOCOL_ERROR);
    while (t.streams.length === 0) await new Promise((r) => setImmediate(r));
    expect(t.streams.map((s) => [s.stream.id, s.headers])).toEqual([[3, request('10.9.9.9:1')]]);
  });

  it('a stream WINDOW_UPDATE overflow resets only that stream', async () => {
    const t = await rawClient();
    t.peer.send(t.headers(1, request()), RawPeer.frame(T.WU, 0, 1, RawPeer.u32(0x7fffffff)));
    const rst = await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 1);
    expect(rst!.payload.readUInt32BE(0)).toBe(H2_ERROR.FLOW_CONTROL_ERROR);
    expect(t.server.closed).toBe(false);
  });

  it('frames for a stream we reset are ignored; DATA after END_STREAM is STREAM_CLOSED', async () => {
    const t = await rawClient();
    t.peer.send(t.headers(1, request()));
    while (t.streams.length === 0) await new Promise((r) => setImmediate(r));
    t.streams[0]!.stream.reset(H2_ERROR.CANCEL);
    await t.peer.waitFor((f) => f.type === T.RST && f.streamId === 1);
    const seen = t.peer.frames.length;
    t.peer.send(
      RawPeer.frame(T.DATA, 0, 1, Buffer.from('late')),
      RawPeer.frame(T.WU, 0, 1, RawPeer.u32(10)),
      t.headers(3, request(), F.END_HEADERS | F.END_STREAM),
      RawPeer.frame(T.DATA, 0, 3, Buffer.from('after end')),
      RawPeer.frame(T.PING, 0, 0, Buffer.from('12345678')),
    );
    await t.peer.waitFor((f) => f.type === T.PING && f.flags === F.ACK, seen);
    const after = t.peer.frames.slice(seen);
    expect(after.some((f) => f.type === T.RST && f.streamId === 1)).toBe(false);
    const rst3 = after.find((f) => f.type === T.RST && f.streamId === 3);
    expect(rst3!.payload.readUInt32BE(0)).toBe(H2_ERROR.STREAM_CLOSED);
    expect(t.errors).toEqual([]);
  });

  it('refuses streams beyond SETTINGS_MAX_CONCURRENT_STREAMS with REFUSED_STREAM', async () => {
    const { a, b } = await socketPair();
    const server = createH2Connection({ role: 'server', socket: b, settings: { maxConcurrentStreams: 1 } });
    server.on('error', () => undefined);
    server.on('stream', (s) => s.on('error', () => undefined));
    const peer = new RawPeer(a);
    const hpack = new HpackEncoder();
    peer.send(
      CLIENT_PREFACE,
      RawPeer.settings(),
      RawPeer.frame(T.HEADERS, F.END_HEADERS, 1, hpack.encode(request())),
      RawPeer.frame(T.HEADERS, F.END_HEADERS, 3, hpack.encode(request())),
    );
    const settings = await peer.waitFor((f) => f.type === T.SETTINGS && f.flags === 0);
    expect(settings!.payload.readUInt16BE(0)).toBe(3); // MAX_CONCURRENT_STREAMS advertised
    const rst = await peer.waitFor((f) => f.type === T.RST);
    expect([rst!.streamId, rst!.payload.readUInt32BE(0)]).toEqual([3, H2_ERROR.REFUSED_STREAM]);
  });
});

describe('our client against a raw server', () => {
  async function rawServer(): Promise<{ client: H2Connection; peer: RawPeer; errors: HboneError[] }> {
    const { a, b } = await socketPair();
    const client = createH2Connection({ role: 'client', socket: a });
    const errors: HboneError[] = [];
    client.on('error', (e) => errors.push(e as HboneError));
    const peer = new RawPeer(b, CLIENT_PREFACE.length);
    await peer.waitFor((f) => f.type === T.SETTINGS); // the client preface went by before this frame
    return { client, peer, errors };
  }

  it('follows SETTINGS_INITIAL_WINDOW_SIZE changes mid-stream, including a negative window', async () => {
    const { client, peer } = await rawServer();
    const hpack = new HpackEncoder();
    peer.send(RawPeer.settings([[4, 10]]));
    await peer.waitFor((f) => f.type === T.SETTINGS && f.flags === F.ACK);
    const stream = client.request(connectHeaders());
    stream.on('error', () => undefined);
    peer.send(RawPeer.frame(T.HEADERS, F.END_HEADERS, 1, hpack.encode([[':status', '200']])));
    await new Promise((r) => stream.once('response', r));
    stream.write(Buffer.alloc(30, 1));
    const dataSizes = async (n: number) => {
      const frames: number[] = [];
      let from = 0;
      while (frames.length < n) {
        const f = await peer.waitFor((x) => x.type === T.DATA && x.streamId === 1, from);
        from = peer.frames.indexOf(f!) + 1;
        frames.push(f!.payload.length);
      }
      return frames;
    };
    expect(await dataSizes(1)).toEqual([10]);
    // Window 0 -> -5: a 10-byte update leaves 5 to send.
    peer.send(RawPeer.settings([[4, 5]]), RawPeer.frame(T.WU, 0, 1, RawPeer.u32(10)));
    expect(await dataSizes(2)).toEqual([10, 5]);
    // Raising the setting to 100 adds 95: the remaining 15 go out.
    peer.send(RawPeer.settings([[4, 100]]));
    expect(await dataSizes(3)).toEqual([10, 5, 15]);
  });

  it('refuses SETTINGS_ENABLE_PUSH=1 and PUSH_PROMISE from a server', async () => {
    for (const frame of [
      RawPeer.settings([[2, 1]]),
      Buffer.concat([RawPeer.settings(), RawPeer.frame(T.PUSH, F.END_HEADERS, 1, [0, 0, 0, 2, 0x82])]),
    ]) {
      const { client, peer, errors } = await rawServer();
      const closed = new Promise((resolve) => client.once('close', resolve));
      peer.send(frame);
      const goaway = await peer.waitFor((f) => f.type === T.GOAWAY);
      expect(goaway!.payload.readUInt32BE(4)).toBe(H2_ERROR.PROTOCOL_ERROR);
      await closed;
      expect(errors[0]).toMatchObject({ code: 'ERR_H2_PROTOCOL', h2Code: H2_ERROR.PROTOCOL_ERROR });
    }
  });

  it('a response HEADERS without :status resets the stream', async () => {
    const { client, peer } = await rawServer();
    const hpack = new HpackEncoder();
    peer.send(RawPeer.settings());
    const stream = client.request(connectHeaders());
    const err = new Promise<HboneError>((resolve) => stream.once('error', resolve));
    peer.send(RawPeer.frame(T.HEADERS, F.END_HEADERS, 1, hpack.encode([['x-no-status', '1']])));
    expect(await err).toMatchObject({ code: 'ERR_H2_PROTOCOL', h2Code: H2_ERROR.PROTOCOL_ERROR });
    const rst = await peer.waitFor((f) => f.type === T.RST);
    expect(rst!.payload.readUInt32BE(0)).toBe(H2_ERROR.PROTOCOL_ERROR);
  });

  it('GOAWAY with lastStreamId below our streams fails those as retryable (ERR_H2_REFUSED)', async () => {
    const { client, peer } = await rawServer();
    const hpack = new HpackEncoder();
    peer.send(RawPeer.settings());
    const s1 = client.request(connectHeaders());
    const s3 = client.request(connectHeaders());
    s1.on('error', () => undefined);
    const refused = new Promise<HboneError>((resolve) => s3.once('error', resolve));
    await peer.waitFor((f) => f.type === T.HEADERS && f.streamId === 3);
    peer.send(
      RawPeer.frame(T.GOAWAY, 0, 0, Buffer.concat([RawPeer.u32(1), RawPeer.u32(0), Buffer.from('bye')])),
      RawPeer.frame(T.HEADERS, F.END_HEADERS, 1, hpack.encode([[':status', '200']])),
      RawPeer.frame(T.DATA, F.END_STREAM, 1, Buffer.from('still here')),
    );
    expect(await refused).toMatchObject({ code: 'ERR_H2_REFUSED' });
    expect(client.draining).toBe(true);
    const body = await new Promise<string>((resolve) => {
      let text = '';
      s1.on('data', (d: Buffer) => {
        text += d;
      });
      s1.on('end', () => resolve(text));
    });
    expect(body).toBe('still here');
  });
});

describe('random input', () => {
  it('random frames after a valid preface never crash: the server survives or fails cleanly', async () => {
    let seed = 99;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (let round = 0; round < 60; round++) {
      const t = await rawClient();
      const frames: Buffer[] = [];
      for (let i = 0; i < 8; i++) {
        const type = rand(11);
        const len = [0, 1, 4, 5, 6, 8, 9, 13][rand(8)]!;
        const payload = Buffer.from(Array.from({ length: len }, () => rand(256)));
        frames.push(RawPeer.frame(type, rand(256), rand(3) === 0 ? 0 : 1 + rand(8), payload));
      }
      t.peer.send(...frames, RawPeer.frame(T.PING, 0, 0, Buffer.from('survived')));
      const pong = await t.peer.waitFor((f) => f.type === T.PING && f.flags === F.ACK);
      if (pong) {
        expect(t.server.closed).toBe(false);
      } else {
        expect(t.server.closed).toBe(true);
        for (const e of t.errors) expect(e.code).toBe('ERR_H2_PROTOCOL');
      }
    }
  });
});
