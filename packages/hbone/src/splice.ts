import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Outcome of a {@link splice}: bytes that went each way, and the error that ended it, if any. */
export interface SpliceResult {
  /** Bytes read from `a` and written to `b`. */
  aToB: number;
  /** Bytes read from `b` and written to `a`. */
  bToA: number;
  error?: Error;
}

/** How to abort one side when the other fails (e.g. RST_STREAM CONNECT_ERROR for an HTTP/2 stream). */
export type AbortSide = (stream: Duplex, err: Error | undefined) => void;

/**
 * Joins two byte streams like a TCP proxy: bytes flow both ways with backpressure (a source is paused
 * while its destination's buffer is full), a half-close (end of one direction) is carried to the other
 * side without cutting the opposite direction, and an error or abort on either side aborts the other.
 * Resolves once both directions finished or the tunnel was torn down.
 * Sockets should be created with `allowHalfOpen: true`, or Node ends their writes on the peer's FIN.
 * Both streams are put in flowing mode (`resume()`), including one the caller `pause()`d before handing it
 * over (e.g. while it was still deciding where to send it): a 'data' listener alone does not restart it.
 *
 * Written out rather than two `pipe()` calls: an idle tunnel then costs one shared listener per event and
 * no `once` wrappers or closures, which was most of what thousands of open tunnels held (docs/performance.md).
 */
export function splice(
  a: Duplex,
  b: Duplex,
  options: { abortA?: AbortSide; abortB?: AbortSide } = {},
): Promise<SpliceResult> {
  return new Promise(
    (resolve) => new Splice(a, b, options.abortA ?? abortStream, options.abortB ?? abortStream, resolve),
  );
}

// Per-direction progress bits.
const A_ENDED = 1; // a's readable side ended (so b.end() was called)
const B_ENDED = 2;
const A_FINISHED = 4; // a's writable side flushed its end
const B_FINISHED = 8;
const ALL = A_ENDED | B_ENDED | A_FINISHED | B_FINISHED;

// Listeners are shared module-level functions (the emitter is `this`); each stream points at its Splice.
// An open tunnel then holds two small objects instead of a closure context and ten closures per side.
const kSplice = Symbol('splice');
type Spliced = Duplex & { [kSplice]?: Splice };

function onData(this: Spliced, chunk: Buffer): void {
  this[kSplice]?.data(this, chunk);
}
function onDrain(this: Spliced): void {
  this[kSplice]?.drain(this);
}
function onEnd(this: Spliced): void {
  this[kSplice]?.ended(this);
}
function onFinish(this: Spliced): void {
  this[kSplice]?.finished(this);
}
function onError(this: Spliced, err: Error): void {
  this[kSplice]?.fail(this, err);
}
function onClose(this: Spliced): void {
  this[kSplice]?.closed(this);
}

class Splice {
  readonly #a: Spliced;
  readonly #b: Spliced;
  readonly #abortA: AbortSide;
  readonly #abortB: AbortSide;
  readonly #resolve: (r: SpliceResult) => void;
  #aToB = 0;
  #bToA = 0;
  #state = 0;
  #done = false;

  constructor(a: Duplex, b: Duplex, abortA: AbortSide, abortB: AbortSide, resolve: (r: SpliceResult) => void) {
    this.#a = a as Spliced;
    this.#b = b as Spliced;
    this.#abortA = abortA;
    this.#abortB = abortB;
    this.#resolve = resolve;
    for (const s of [this.#a, this.#b]) {
      s[kSplice] = this;
      s.on('data', onData);
      s.on('drain', onDrain);
      s.on('end', onEnd);
      s.on('finish', onFinish);
      s.on('error', onError);
      // A close before both of a side's directions completed is an abort (RST_STREAM, TCP reset, destroy()).
      s.on('close', onClose);
    }
    // Adding a 'data' listener does not restart a stream that was explicitly paused; splice owns the flow now.
    this.#a.resume();
    this.#b.resume();
  }

  data(from: Spliced, chunk: Buffer): void {
    if (this.#done) return;
    if (from === this.#a) {
      this.#aToB += chunk.length;
      if (!this.#b.write(chunk)) from.pause();
    } else {
      this.#bToA += chunk.length;
      if (!this.#a.write(chunk)) from.pause();
    }
  }

  drain(side: Spliced): void {
    // `side` can take more: resume the stream that feeds it.
    (side === this.#a ? this.#b : this.#a).resume();
  }

  ended(side: Spliced): void {
    this.#state |= side === this.#a ? A_ENDED : B_ENDED;
    if (!this.#done) (side === this.#a ? this.#b : this.#a).end();
    if (this.#state === ALL) this.#finish(undefined);
  }

  finished(side: Spliced): void {
    this.#state |= side === this.#a ? A_FINISHED : B_FINISHED;
    if (this.#state === ALL) this.#finish(undefined);
  }

  closed(side: Spliced): void {
    const bits = side === this.#a ? A_ENDED | A_FINISHED : B_ENDED | B_FINISHED;
    if ((this.#state & bits) !== bits) this.fail(side, undefined);
    else if (this.#state === ALL) this.#finish(undefined);
  }

  fail(side: Spliced, err: Error | undefined): void {
    if (this.#done) return;
    this.#finish(err);
    if (side === this.#a) {
      if (!this.#b.destroyed) this.#abortB(this.#b, err);
    } else if (!this.#a.destroyed) {
      this.#abortA(this.#a, err);
    }
  }

  #finish(error: Error | undefined): void {
    if (this.#done) return;
    this.#done = true;
    const result: SpliceResult = { aToB: this.#aToB, bToA: this.#bToA };
    if (error) result.error = error;
    if (!error) {
      // Both directions are over; release whatever Node still holds.
      if (!this.#a.destroyed) this.#a.destroy();
      if (!this.#b.destroyed) this.#b.destroy();
    }
    this.#resolve(result);
  }
}

/** Default abort: a TCP socket is reset (so the peer sees RST, as a CONNECT tunnel requires), others destroyed. */
export function abortStream(stream: Duplex, err: Error | undefined): void {
  const socket = stream as Partial<Socket>;
  if (typeof socket.resetAndDestroy === 'function' && (stream as Socket).readyState !== 'opening') {
    socket.resetAndDestroy();
  } else {
    stream.destroy(err);
  }
}
