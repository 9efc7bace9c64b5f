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
 *
 * Written out rather than two `pipe()` calls: an idle tunnel then costs one listener per event and no
 * `once` wrappers, which is most of what thousands of open tunnels hold (see docs/performance.md).
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

/** One spliced pair; a class so each tunnel holds a few bound fields instead of a closure context per listener. */
class Splice {
  readonly #a: Duplex;
  readonly #b: Duplex;
  readonly #abortA: AbortSide;
  readonly #abortB: AbortSide;
  readonly #resolve: (r: SpliceResult) => void;
  #aToB = 0;
  #bToA = 0;
  #state = 0;
  #done = false;

  constructor(a: Duplex, b: Duplex, abortA: AbortSide, abortB: AbortSide, resolve: (r: SpliceResult) => void) {
    this.#a = a;
    this.#b = b;
    this.#abortA = abortA;
    this.#abortB = abortB;
    this.#resolve = resolve;
    a.on('data', (c: Buffer) => {
      if (this.#done) return;
      this.#aToB += c.length;
      if (!b.write(c)) a.pause();
    });
    b.on('data', (c: Buffer) => {
      if (this.#done) return;
      this.#bToA += c.length;
      if (!a.write(c)) b.pause();
    });
    a.on('drain', () => b.resume());
    b.on('drain', () => a.resume());
    a.on('end', () => this.#progress(A_ENDED, b, true));
    b.on('end', () => this.#progress(B_ENDED, a, true));
    a.on('finish', () => this.#progress(A_FINISHED, a, false));
    b.on('finish', () => this.#progress(B_FINISHED, b, false));
    a.on('error', (err: Error) => this.#fail(a, err));
    b.on('error', (err: Error) => this.#fail(b, err));
    // A close before both of a side's directions completed is an abort (RST_STREAM, TCP reset, destroy()).
    a.on('close', () => this.#closed(a, A_ENDED | A_FINISHED));
    b.on('close', () => this.#closed(b, B_ENDED | B_FINISHED));
  }

  #progress(bit: number, other: Duplex, endOther: boolean): void {
    this.#state |= bit;
    if (endOther && !this.#done) other.end();
    if (this.#state === ALL) this.#finish(undefined);
  }

  #closed(side: Duplex, bits: number): void {
    if ((this.#state & bits) !== bits) this.#fail(side, undefined);
    else if (this.#state === ALL) this.#finish(undefined);
  }

  #fail(side: Duplex, err: Error | undefined): void {
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
