import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { DELTA_METHOD, SOTW_METHOD } from './ads-service.js';
import { Backoff, type BackoffOptions, realTimers, type Timers } from './backoff.js';
import {
  decodeDeltaResponse,
  decodeSotwResponse,
  encodeDeltaRequest,
  encodeSotwRequest,
  type XdsNode,
} from './discovery-messages.js';
import { XdsError } from './errors.js';
import { createIstioRegistry } from './istio-types.js';
import { silentLogger, type XdsLogger } from './logger.js';
import type { TypeRegistry } from './type-registry.js';

/** One resource as the client holds it. */
export interface XdsResource<T = unknown> {
  name: string;
  version: string;
  value: T;
}

/** What one applied response changed for a type. */
export interface XdsUpdate {
  typeUrl: string;
  /** system_version_info (Delta) or version_info (SotW) of the response. */
  version: string;
  updated: XdsResource[];
  removed: string[];
}

export interface XdsRejection {
  typeUrl: string;
  nonce: string;
  /** Each rejected resource and why; the previous good version (if any) stays in place. */
  errors: { name: string; reason: string }[];
}

export type XdsClientState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface XdsClientOptions {
  /** gRPC target, e.g. `127.0.0.1:15012` or `dns:///istiod.istio-system.svc:15012`. */
  target: string;
  /** Default insecure; use `grpc.credentials.createSsl(root, key, cert)` for (mutual) TLS. */
  credentials?: grpc.ChannelCredentials;
  /** Bearer token sent as `authorization: Bearer <token>` on every stream; read again on each reconnect. */
  token?: () => string | Promise<string>;
  node: XdsNode;
  /** Types this client can decode and validate (default: Istio's Address and Authorization). */
  registry?: TypeRegistry;
  /** Default 'delta'. */
  protocol?: 'delta' | 'sotw';
  backoff?: BackoffOptions;
  timers?: Timers;
  channelOptions?: grpc.ChannelOptions;
  logger?: XdsLogger;
  /** Updates buffered per updates() iterator before it fails with ERR_XDS_QUEUE_FULL (default 10,000). */
  maxQueuedUpdates?: number;
}

interface TypeSub {
  typeUrl: string;
  wildcard: boolean;
  names: Set<string>;
  resources: Map<string, XdsResource>;
  /** A response for this type was applied on some stream (readiness). */
  applied: boolean;
  /** SotW: version_info of the last accepted response (sent back with NACKs). */
  acceptedVersion: string;
  /** Sent the first request for this type on the current stream. */
  announced: boolean;
}

interface ClientEvents {
  update: [XdsUpdate];
  nack: [XdsRejection];
  ready: [];
  connected: [];
  disconnected: [XdsError];
  state: [XdsClientState];
}

type Call = grpc.ClientDuplexStream<Buffer, Buffer>;
const identity = (b: Buffer): Buffer => b;

/**
 * ADS client (Delta by default, or state-of-the-world). Subscribe per type (wildcard or by
 * name); every resource is decoded and validated by its registered type: valid ones are applied,
 * bad ones are NACKed with their names and reasons and never replace a good version. On a broken
 * stream it reconnects with backoff (10 ms doubling to 15 s), keeping its resources and sending
 * their versions as `initial_resource_versions` so only changes are resent.
 *
 * Events: `update`, `nack`, `ready`, `connected`, `disconnected`, `state`.
 */
export class XdsClient extends EventEmitter<ClientEvents> {
  readonly node: XdsNode;
  readonly registry: TypeRegistry;
  readonly protocol: 'delta' | 'sotw';
  readonly #target: string;
  readonly #credentials: grpc.ChannelCredentials;
  readonly #channelOptions: grpc.ChannelOptions;
  #grpc: grpc.Client | undefined;
  readonly #token: (() => string | Promise<string>) | undefined;
  readonly #timers: Timers;
  readonly #backoff: Backoff;
  readonly #logger: XdsLogger;
  readonly #maxQueued: number;
  readonly #subs = new Map<string, TypeSub>();
  #state: XdsClientState = 'idle';
  #call: Call | undefined;
  #timer: unknown;
  #ready = false;
  #nodeSent = false;
  #generation = 0;

  constructor(options: XdsClientOptions) {
    super();
    if (!options.node?.id)
      throw new XdsError(
        'ERR_XDS_INVALID_OPTION',
        'XdsClient: node.id is required (e.g. ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local)',
      );
    this.node = options.node;
    this.registry = options.registry ?? createIstioRegistry();
    this.protocol = options.protocol ?? 'delta';
    this.#token = options.token;
    this.#timers = options.timers ?? realTimers;
    this.#backoff = new Backoff(options.backoff);
    this.#logger = options.logger ?? silentLogger;
    this.#maxQueued = options.maxQueuedUpdates ?? 10_000;
    this.#target = options.target;
    this.#credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.#channelOptions = {
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      // Each attempt gets a fresh connection, so our backoff (not grpc-js's channel backoff) paces reconnects.
      'grpc.use_local_subchannel_pool': 1,
      ...options.channelOptions,
    };
  }

  get state(): XdsClientState {
    return this.#state;
  }

  /** True once every wildcard-subscribed type had a response applied. */
  get isReady(): boolean {
    return this.#ready;
  }

  /**
   * Subscribes to `typeUrl`: all its resources (wildcard, the default) or the given names.
   * Can be called before or after start(); adds to existing subscriptions.
   */
  subscribe(typeUrl: string, names?: string[]): this {
    this.#assertOpen();
    this.registry.require(typeUrl);
    let sub = this.#subs.get(typeUrl);
    const isNew = sub === undefined;
    if (sub === undefined) {
      sub = {
        typeUrl,
        wildcard: false,
        names: new Set(),
        resources: new Map(),
        applied: false,
        acceptedVersion: '',
        announced: false,
      };
      this.#subs.set(typeUrl, sub);
    }
    const added: string[] = [];
    if (names === undefined) {
      if (!sub.wildcard) added.push('*');
      sub.wildcard = true;
    } else {
      for (const n of names) {
        if (!sub.names.has(n)) added.push(n);
        sub.names.add(n);
      }
    }
    if (sub.wildcard) this.#ready = false;
    if (this.#state === 'connected' && added.length > 0) {
      if (isNew || !sub.announced) this.#announce(sub);
      else if (this.protocol === 'delta') this.#write(encodeDeltaRequest({ typeUrl, resourceNamesSubscribe: added }));
      else this.#write(this.#sotwRequest(sub, undefined));
    }
    return this;
  }

  /** Drops names (or the wildcard, when `names` is omitted) and forgets their resources. */
  unsubscribe(typeUrl: string, names?: string[]): this {
    const sub = this.#subs.get(typeUrl);
    if (sub === undefined) return this;
    const removedNames: string[] = names ?? ['*'];
    if (names === undefined) sub.wildcard = false;
    else for (const n of names) sub.names.delete(n);
    const dropped: string[] = [];
    for (const name of sub.resources.keys()) {
      if (!sub.wildcard && !sub.names.has(name)) dropped.push(name);
    }
    for (const name of dropped) sub.resources.delete(name);
    if (this.#state === 'connected' && sub.announced) {
      if (this.protocol === 'delta')
        this.#write(encodeDeltaRequest({ typeUrl, resourceNamesUnsubscribe: removedNames }));
      else this.#write(this.#sotwRequest(sub, undefined));
    }
    if (dropped.length > 0) this.emit('update', { typeUrl, version: '', updated: [], removed: dropped });
    return this;
  }

  /** Current resources of a type (live view; do not mutate). */
  resources<T = unknown>(typeUrl: string): ReadonlyMap<string, XdsResource<T>> {
    return (this.#subs.get(typeUrl)?.resources ?? new Map()) as ReadonlyMap<string, XdsResource<T>>;
  }

  get<T = unknown>(typeUrl: string, name: string): XdsResource<T> | undefined {
    return this.#subs.get(typeUrl)?.resources.get(name) as XdsResource<T> | undefined;
  }

  /** Opens the stream (and keeps reopening it with backoff until close()). */
  start(): this {
    this.#assertOpen();
    if (this.#state === 'idle') void this.#connect();
    return this;
  }

  /** Resolves once every wildcard type had a response applied; rejects on close or abort. */
  ready(signal?: AbortSignal): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        this.off('ready', onReady);
        this.off('state', onState);
        signal?.removeEventListener('abort', onAbort);
      };
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const onState = (s: XdsClientState): void => {
        if (s === 'closed') {
          cleanup();
          reject(new XdsError('ERR_XDS_CLOSED', 'XdsClient closed before it became ready'));
        }
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      if (signal?.aborted) {
        onAbort();
        return;
      }
      this.on('ready', onReady);
      this.on('state', onState);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Async iteration over applied updates, from now on. Ends on close(); fails if the consumer falls too far behind. */
  async *updates(options: { signal?: AbortSignal } = {}): AsyncGenerator<XdsUpdate, void, undefined> {
    const queue: XdsUpdate[] = [];
    let wake: (() => void) | undefined;
    let failure: XdsError | undefined;
    let done = this.#state === 'closed';
    const onUpdate = (u: XdsUpdate): void => {
      if (queue.length >= this.#maxQueued)
        failure ??= new XdsError(
          'ERR_XDS_QUEUE_FULL',
          `more than ${this.#maxQueued} updates queued for a slow consumer; re-read resources() and iterate again`,
        );
      else queue.push(u);
      wake?.();
    };
    const onState = (s: XdsClientState): void => {
      if (s === 'closed') done = true;
      wake?.();
    };
    const onAbort = (): void => {
      done = true;
      wake?.();
    };
    this.on('update', onUpdate);
    this.on('state', onState);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (failure) throw failure;
        if (done || options.signal?.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.off('update', onUpdate);
      this.off('state', onState);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  #assertOpen(): void {
    if (this.#state === 'closed') throw new XdsError('ERR_XDS_CLOSED', 'XdsClient is closed; create a new one');
  }

  #setState(s: XdsClientState): void {
    if (this.#state === s) return;
    this.#logger.debug(`xds client: ${this.#state} -> ${s}`, { node: this.node.id });
    this.#state = s;
    this.emit('state', s);
  }

  async #connect(): Promise<void> {
    this.#setState('connecting');
    const generation = ++this.#generation;
    const metadata = new grpc.Metadata();
    if (this.#token) {
      let token: string;
      try {
        token = await this.#token();
      } catch (err) {
        this.#onStreamEnd(
          generation,
          new XdsError('ERR_XDS_UNAUTHENTICATED', `token provider failed: ${(err as Error).message}`, { cause: err }),
        );
        return;
      }
      if (generation !== this.#generation || this.#state === 'closed') return;
      metadata.set('authorization', `Bearer ${token}`);
    }
    this.#grpc?.close();
    this.#grpc = new grpc.Client(this.#target, this.#credentials, this.#channelOptions);
    const call = this.#grpc.makeBidiStreamRequest(
      this.protocol === 'delta' ? DELTA_METHOD : SOTW_METHOD,
      identity,
      identity,
      metadata,
    );
    this.#call = call;
    this.#nodeSent = false;
    call.on('data', (buf: Buffer) => {
      if (generation === this.#generation) this.#onResponse(buf);
    });
    call.on('error', (err: grpc.ServiceError) => {
      this.#onStreamEnd(
        generation,
        new XdsError('ERR_XDS_STREAM', `xDS stream failed: ${err.code} ${err.details}`, { cause: err }),
      );
    });
    call.on('end', () => {
      this.#onStreamEnd(generation, new XdsError('ERR_XDS_STREAM', 'xDS stream ended by the server'));
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) return;
      this.#onStreamEnd(generation, new XdsError('ERR_XDS_STREAM', 'xDS stream ended by the server'));
    });
    this.#setState('connected');
    this.emit('connected');
    for (const sub of this.#subs.values()) {
      sub.announced = false;
      if (sub.wildcard || sub.names.size > 0) this.#announce(sub);
    }
  }

  #onStreamEnd(generation: number, err: XdsError): void {
    if (generation !== this.#generation || this.#state === 'closed') return;
    this.#generation++;
    const call = this.#call;
    this.#call = undefined;
    call?.cancel();
    this.#grpc?.close();
    this.#grpc = undefined;
    this.#logger.warn('xds client: stream lost, reconnecting', { node: this.node.id, error: err.message });
    this.emit('disconnected', err);
    const delay = this.#backoff.next();
    this.#setState('backoff');
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'backoff') void this.#connect();
    }, delay);
  }

  #write(msg: Buffer): void {
    this.#call?.write(msg);
  }

  #nodeOnce(): XdsNode | undefined {
    if (this.#nodeSent) return undefined;
    this.#nodeSent = true;
    return this.node;
  }

  #announce(sub: TypeSub): void {
    sub.announced = true;
    if (this.protocol === 'delta') {
      const initial: Record<string, string> = {};
      for (const r of sub.resources.values()) initial[r.name] = r.version;
      const names = [...sub.names];
      // An empty first subscription is the wildcard every server understands; "*" only when mixing.
      const subscribe = sub.wildcard ? (names.length > 0 ? ['*', ...names] : []) : names;
      this.#write(
        encodeDeltaRequest({
          node: this.#nodeOnce(),
          typeUrl: sub.typeUrl,
          resourceNamesSubscribe: subscribe,
          initialResourceVersions: initial,
        }),
      );
    } else {
      this.#write(this.#sotwRequest(sub, undefined));
    }
  }

  #sotwRequest(sub: TypeSub, ack: { nonce: string; error?: string } | undefined): Buffer {
    const names = [...sub.names];
    return encodeSotwRequest({
      node: this.#nodeOnce(),
      typeUrl: sub.typeUrl,
      versionInfo: sub.acceptedVersion,
      resourceNames: sub.wildcard ? (names.length > 0 ? ['*', ...names] : []) : names,
      responseNonce: ack?.nonce ?? '',
      errorDetail: ack?.error === undefined ? undefined : { code: grpc.status.INVALID_ARGUMENT, message: ack.error },
    });
  }

  #onResponse(buf: Buffer): void {
    this.#backoff.reset();
    try {
      if (this.protocol === 'delta') this.#onDelta(buf);
      else this.#onSotw(buf);
    } catch (err) {
      // An undecodable response: nothing applied, and we cannot even NACK it by nonce.
      this.#logger.error('xds client: undecodable response', { error: (err as Error).message });
      this.#onStreamEnd(
        this.#generation,
        new XdsError('ERR_XDS_PROTOCOL', `undecodable response: ${(err as Error).message}`, { cause: err }),
      );
    }
  }

  #decodeOne(
    typeUrl: string,
    anyType: string,
    name: string,
    value: Uint8Array,
  ): { value: unknown } | { reason: string } {
    if (anyType !== typeUrl) return { reason: `resource type ${anyType} does not match the response type ${typeUrl}` };
    const type = this.registry.require(typeUrl);
    let decoded: unknown;
    try {
      decoded = type.decode(value);
    } catch (err) {
      return { reason: `cannot decode: ${(err as Error).message}` };
    }
    const problems = type.validate(name, decoded);
    return problems.length > 0 ? { reason: problems.join('; ') } : { value: decoded };
  }

  #onDelta(buf: Buffer): void {
    const res = decodeDeltaResponse(buf);
    const sub = this.#subs.get(res.typeUrl);
    if (sub === undefined) {
      this.#write(
        encodeDeltaRequest({
          typeUrl: res.typeUrl,
          responseNonce: res.nonce,
          errorDetail: { code: grpc.status.INVALID_ARGUMENT, message: 'not subscribed to this type' },
        }),
      );
      return;
    }
    const updated: XdsResource[] = [];
    const errors: { name: string; reason: string }[] = [];
    for (const r of res.resources) {
      const d = this.#decodeOne(res.typeUrl, r.typeUrl, r.name, r.value);
      if ('reason' in d) errors.push({ name: r.name, reason: d.reason });
      else if (sub.wildcard || sub.names.has(r.name))
        updated.push({ name: r.name, version: r.version, value: d.value });
    }
    const removed: string[] = [];
    for (const name of res.removedResources) if (sub.resources.delete(name)) removed.push(name);
    for (const r of updated) sub.resources.set(r.name, r);
    this.#afterApply(sub, res.systemVersionInfo, res.nonce, updated, removed, errors);
  }

  #onSotw(buf: Buffer): void {
    const res = decodeSotwResponse(buf);
    const sub = this.#subs.get(res.typeUrl);
    if (sub === undefined) return;
    const type = this.registry.require(res.typeUrl);
    const seen = new Set<string>();
    const updated: XdsResource[] = [];
    const errors: { name: string; reason: string }[] = [];
    for (const [i, r] of res.resources.entries()) {
      let name = `#${i}`;
      let decoded: unknown;
      try {
        decoded = type.decode(r.value);
        name = type.nameOf(decoded);
      } catch {
        // Reported by decodeOne below with the index as its name.
      }
      seen.add(name);
      const d = this.#decodeOne(res.typeUrl, r.typeUrl, name, r.value);
      if ('reason' in d) {
        errors.push({ name, reason: d.reason });
        continue;
      }
      const prev = sub.resources.get(name);
      const version = res.versionInfo;
      // SotW resends everything: report only resources whose bytes changed.
      if (prev === undefined || !sameBytes(prev, r.value)) {
        const resource: XdsResource = { name, version, value: d.value };
        Object.defineProperty(resource, RAW, { value: r.value, enumerable: false });
        updated.push(resource);
      }
    }
    const removed: string[] = [];
    for (const name of [...sub.resources.keys()]) {
      if (!seen.has(name)) {
        sub.resources.delete(name);
        removed.push(name);
      }
    }
    for (const r of updated) sub.resources.set(r.name, r);
    this.#afterApply(sub, res.versionInfo, res.nonce, updated, removed, errors);
  }

  #afterApply(
    sub: TypeSub,
    version: string,
    nonce: string,
    updated: XdsResource[],
    removed: string[],
    errors: { name: string; reason: string }[],
  ): void {
    const first = !sub.applied;
    sub.applied = true;
    if (errors.length === 0) sub.acceptedVersion = version;
    const errorText = errors.length > 0 ? errors.map((e) => `${e.name}: ${e.reason}`).join('\n') : undefined;
    if (this.protocol === 'delta') {
      this.#write(
        encodeDeltaRequest({
          typeUrl: sub.typeUrl,
          responseNonce: nonce,
          errorDetail: errorText === undefined ? undefined : { code: grpc.status.INVALID_ARGUMENT, message: errorText },
        }),
      );
    } else {
      this.#write(this.#sotwRequest(sub, { nonce, error: errorText }));
    }
    if (errors.length > 0) {
      this.#logger.warn('xds client: rejected resources (NACK)', { typeUrl: sub.typeUrl, nonce, errors });
      this.emit('nack', { typeUrl: sub.typeUrl, nonce, errors });
    }
    if (first || updated.length > 0 || removed.length > 0)
      this.emit('update', { typeUrl: sub.typeUrl, version, updated, removed });
    if (!this.#ready && [...this.#subs.values()].every((s) => !s.wildcard || s.applied)) {
      this.#ready = true;
      this.emit('ready');
    }
  }

  /** Ends the stream and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#shutdown();
    const call = this.#call;
    this.#call = undefined;
    call?.end();
    call?.cancel();
    this.#grpc?.close();
    this.#grpc = undefined;
  }

  /** Like close() but without a half-close first. Idempotent. */
  destroy(_err?: Error): void {
    if (this.#state === 'closed') return;
    this.#shutdown();
    this.#call?.cancel();
    this.#call = undefined;
    this.#grpc?.close();
    this.#grpc = undefined;
  }

  #shutdown(): void {
    this.#generation++;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#setState('closed');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

const RAW = Symbol('xds.raw');

function sameBytes(prev: XdsResource, bytes: Uint8Array): boolean {
  const raw = (prev as unknown as Record<symbol, Uint8Array | undefined>)[RAW];
  return raw !== undefined && Buffer.compare(raw, bytes) === 0;
}
