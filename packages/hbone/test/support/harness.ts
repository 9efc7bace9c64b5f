/** Shared fixtures for the HBONE integration tests: real sockets on 127.0.0.1 port 0, cleaned up after each test. */
import { once } from 'node:events';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  HboneClient,
  type HboneClientOptions,
  type HboneConnectOptions,
  type HboneRequest,
  HboneServer,
  type HboneServerOptions,
  type TlsCredentials,
} from '../../src/index.js';
import { createCa, type TestCa } from './pki.js';

export const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
export const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';

export interface Pki {
  ca: TestCa;
  server: TlsCredentials;
  client: TlsCredentials;
}

let pkiPromise: Promise<Pki> | undefined;
/** One CA and a server + client certificate, shared by a test file. */
export function pki(): Promise<Pki> {
  pkiPromise ??= (async () => {
    const ca = await createCa();
    return { ca, server: await ca.issue(SERVER_ID), client: await ca.issue(CLIENT_ID) };
  })();
  return pkiPromise;
}

/** Cleanups registered as resources are made; run (in reverse) by `cleanup()` in afterEach. */
const cleanups: Array<() => unknown> = [];
export function onCleanup(fn: () => unknown): void {
  cleanups.push(fn);
}
export async function cleanup(): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch {
      // Cleanup of an already failed resource.
    }
  }
}

/** A TCP server on 127.0.0.1:0 (half-open allowed), closed and its sockets destroyed at cleanup. */
export async function tcpServer(onSocket: (s: net.Socket) => void): Promise<{ server: net.Server; port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onSocket(s);
  });
  onCleanup(() => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** An echo service. */
export function echoServer(): Promise<{ server: net.Server; port: number }> {
  return tcpServer((s) => s.pipe(s));
}

/** Handler that does what ztunnel does: connect to the authority, answer once connected. */
export function forwardToAuthority(req: HboneRequest): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export async function hboneServer(
  opts: Partial<HboneServerOptions> = {},
  host = '127.0.0.1',
): Promise<{ server: HboneServer; port: number }> {
  const { server: creds } = await pki();
  const server = new HboneServer({ credentials: creds, handler: forwardToAuthority, ...opts });
  onCleanup(() => server.destroy());
  const addr = await server.listen(0, host);
  return { server, port: addr.port };
}

export async function hboneClient(opts: Partial<HboneClientOptions> = {}): Promise<HboneClient> {
  const { client: creds } = await pki();
  const client = new HboneClient({ credentials: creds, ...opts });
  onCleanup(() => client.destroy());
  return client;
}

/** connect() options for a server on 127.0.0.1:`port` presenting SERVER_ID. */
export function via(port: number, extra: Partial<HboneConnectOptions> = {}): HboneConnectOptions {
  return { expectedIdentities: [SERVER_ID], server: { address: '127.0.0.1', port }, ...extra };
}

/** Reads a stream to its end without destroying it (for-await would, killing the other direction). */
export function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

/** Resolves with the error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
