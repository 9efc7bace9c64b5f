/** Plain TCP connections to a workload or a passthrough destination, with a connect deadline. */
import { connect, type Socket } from 'node:net';
import { ZtunnelError } from './errors.js';

export function connectTcp(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const fail = (why: string, cause?: unknown) => {
      cleanup();
      socket.destroy();
      reject(new ZtunnelError('ERR_ZTUNNEL_UPSTREAM', `cannot connect to ${host}:${port}: ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();
    const onError = (err: Error) => fail(err.message, err);
    const onAbort = () => fail('aborted');
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}
