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
 * Joins two byte streams like a TCP proxy: bytes flow both ways with backpressure (`pipe` pauses the
 * source while the destination is full), a half-close (end of one direction) is carried to the other
 * side without cutting the opposite direction, and an error or abort on either side aborts the other.
 * Resolves once both directions finished or the tunnel was torn down.
 * Sockets should be created with `allowHalfOpen: true`, or Node ends their writes on the peer's FIN.
 */
export function splice(
  a: Duplex,
  b: Duplex,
  options: { abortA?: AbortSide; abortB?: AbortSide } = {},
): Promise<SpliceResult> {
  const abortA = options.abortA ?? abortStream;
  const abortB = options.abortB ?? abortStream;
  return new Promise((resolve) => {
    const result: SpliceResult = { aToB: 0, bToA: 0 };
    // Each direction is done when its source ended and its destination flushed the end.
    let aEnded = false;
    let bEnded = false;
    let aFinished = false;
    let bFinished = false;
    let done = false;

    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      if (error) result.error = error;
      a.off('data', countA);
      b.off('data', countB);
      resolve(result);
    };
    const checkComplete = (): void => {
      if (aEnded && bEnded && aFinished && bFinished) {
        finish();
        // Both directions are over; release whatever Node still holds.
        if (!a.destroyed) a.destroy();
        if (!b.destroyed) b.destroy();
      }
    };
    const fail = (side: Duplex, err: Error | undefined): void => {
      if (done) return;
      finish(err);
      if (side === a) {
        if (!b.destroyed) abortB(b, err);
      } else if (!a.destroyed) {
        abortA(a, err);
      }
    };
    const countA = (chunk: Buffer): void => {
      result.aToB += chunk.length;
    };
    const countB = (chunk: Buffer): void => {
      result.bToA += chunk.length;
    };

    a.on('data', countA);
    b.on('data', countB);
    a.once('end', () => {
      aEnded = true;
      checkComplete();
    });
    b.once('end', () => {
      bEnded = true;
      checkComplete();
    });
    a.once('finish', () => {
      aFinished = true;
      checkComplete();
    });
    b.once('finish', () => {
      bFinished = true;
      checkComplete();
    });
    a.on('error', (err) => fail(a, err));
    b.on('error', (err) => fail(b, err));
    // A close before both directions completed is an abort (RST_STREAM, TCP reset, destroy()).
    a.once('close', () => {
      if (!(aEnded && aFinished)) fail(a, undefined);
      else checkComplete();
    });
    b.once('close', () => {
      if (!(bEnded && bFinished)) fail(b, undefined);
      else checkComplete();
    });
    a.pipe(b);
    b.pipe(a);
  });
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
