import * as grpc from '@grpc/grpc-js';
import {
  ADDRESS_TYPE_URL,
  type AddressInput,
  createIstioRegistry,
  DELTA_METHOD,
  type DeltaResponse,
  decodeDeltaResponse,
  decodeSotwResponse,
  parseIp,
  ResourceCache,
  SOTW_METHOD,
  type SotwResponse,
  XdsServer,
  type XdsServerOptions,
} from '../src/index.js';

export function workload(uid: string, ip: string, extra: Record<string, unknown> = {}): AddressInput {
  return {
    workload: {
      uid,
      name: uid,
      namespace: 'default',
      addresses: [parseIp(ip)],
      trustDomain: 'cluster.local',
      serviceAccount: 'default',
      ...extra,
    },
  };
}

export function seedWorkloads(cache: ResourceCache, count: number, prefix = 'w'): void {
  cache.transaction((tx) => {
    for (let i = 0; i < count; i++)
      tx.set(
        ADDRESS_TYPE_URL,
        `${prefix}${i}`,
        workload(`${prefix}${i}`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`),
      );
  });
}

export interface Harness {
  cache: ResourceCache;
  server: XdsServer;
  port: number;
  target: string;
}

/** Starts a server on 127.0.0.1:0; close it with `harness.server.destroy()` in afterEach. */
export async function startServer(
  options: Partial<XdsServerOptions> = {},
  cache?: ResourceCache,
  credentials?: grpc.ServerCredentials,
): Promise<Harness> {
  const c = cache ?? new ResourceCache({ registry: createIstioRegistry() });
  const server = new XdsServer({ cache: c, ...options });
  const port = await server.listen('127.0.0.1:0', credentials);
  return { cache: c, server, port, target: `127.0.0.1:${port}` };
}

/** Waits for the next emission of `event` that satisfies `pred`. */
export function waitFor<T extends unknown[]>(
  emitter: { on(e: string, l: (...a: T) => void): unknown; off(e: string, l: (...a: T) => void): unknown },
  event: string,
  pred: (...args: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const l = (...args: T): void => {
      if (pred(...args)) {
        emitter.off(event, l);
        resolve(args);
      }
    };
    emitter.on(event, l);
  });
}

/** A protocol-level ADS peer: writes raw requests and reads decoded responses in order. */
export class RawStream<R> {
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly client: grpc.Client;
  readonly #queue: R[] = [];
  readonly #waiters: ((r: R) => void)[] = [];
  status: Promise<grpc.StatusObject>;
  bytesReceived = 0;

  constructor(
    target: string,
    method: string,
    decode: (b: Buffer) => R,
    metadata = new grpc.Metadata(),
    creds = grpc.credentials.createInsecure(),
  ) {
    this.client = new grpc.Client(target, creds);
    const id = (b: Buffer): Buffer => b;
    this.call = this.client.makeBidiStreamRequest(method, id, id, metadata);
    this.status = new Promise((resolve) => {
      this.call.on('status', resolve);
    });
    this.call.on('error', () => {});
    this.call.on('data', (b: Buffer) => {
      this.bytesReceived += b.length;
      const r = decode(b);
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
  }

  next(): Promise<R> {
    const r = this.#queue.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  get queued(): number {
    return this.#queue.length;
  }

  write(b: Buffer): void {
    this.call.write(b);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export function rawDelta(target: string, metadata?: grpc.Metadata): RawStream<DeltaResponse> {
  return new RawStream(target, DELTA_METHOD, decodeDeltaResponse, metadata);
}

export function rawSotw(target: string): RawStream<SotwResponse> {
  return new RawStream(target, SOTW_METHOD, decodeSotwResponse);
}
