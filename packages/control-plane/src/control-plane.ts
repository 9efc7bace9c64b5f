import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  type Authenticator,
  CaError,
  CaServer,
  CertificateAuthority,
  ClientCertificateAuthenticator,
  ServingCredentials,
} from '@ambient-ts/ca';
import {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  type CacheEntry,
  createIstioRegistry,
  ResourceCache,
  type XdsAuthRequest,
  type XdsPeer,
  XdsServer,
} from '@ambient-ts/xds';
import * as grpc from '@grpc/grpc-js';
import { keyOf } from './config-object.js';
import { type ConfigProblem, formatProblem, problemKey } from './config-problem.js';
import type { ConfigBatch, ConfigChange, ConfigSource } from './config-source.js';
import { DirectorySource } from './directory-source.js';
import { ControlPlaneError } from './errors.js';
import { type Logger, silentLogger } from './logger.js';
import { ControlPlaneMetrics } from './metrics.js';
import { MonitoringServer } from './monitoring-server.js';
import { authzConverter, authzValidator } from './policy-adapter.js';
import type { ResourceDiff } from './resources.js';
import type { Scheduler } from './scheduler.js';
import { type ProxyCredential, type ProxyKind, TokenTable } from './tokens.js';
import { Translator } from './translator.js';

export interface ControlPlaneOptions {
  /** Directory of Kubernetes-style YAML (watched). Give this or `source`. */
  readonly configDir?: string;
  /** Any other config source (e.g. a Kubernetes API source). */
  readonly source?: ConfigSource;
  /** CA material lives here (created on first start, reused after) and root-cert.pem is written here. Without it the CA is in memory only. */
  readonly stateDir?: string;
  /** Bootstrap tokens: a file path (YAML/JSON) or a loaded table. */
  readonly tokens?: string | TokenTable;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** Default `Kubernetes`. */
  readonly clusterId?: string;
  /** Service hostnames are `<name>.<ns>.svc.<domainSuffix>`; default `cluster.local`. */
  readonly domainSuffix?: string;
  /** Default `istio-system`. */
  readonly rootNamespace?: string;
  /** Default `ambient`: workloads not labelled istio.io/dataplane-mode are in the mesh. */
  readonly defaultDataplaneMode?: 'ambient' | 'none';
  /** gRPC (xDS + CA) listener, `host:port`; default `127.0.0.1:15012`. Port 0 picks a free port. */
  readonly listen?: string;
  /** Monitoring listener, `host:port`; default `127.0.0.1:15014`. */
  readonly monitoringListen?: string;
  /** Names in the serving certificate; default DNS `localhost` + `istiod.<root-ns>.svc`, IPs 127.0.0.1 and ::1. */
  readonly servingNames?: { readonly dnsNames?: string[]; readonly ipAddresses?: string[] };
  /** Ztunnels see only the Authorizations their node's workloads need (default true). */
  readonly ztunnelPolicyView?: boolean;
  /** Directory watch debounce, ms (default 100). */
  readonly debounceMs?: number;
  readonly scheduler?: Scheduler;
  readonly logger?: Logger;
}

/** Who a connected xDS client is. */
export interface ProxyPrincipal {
  readonly identity: string;
  readonly kind: ProxyKind | 'mesh';
  readonly node?: string;
  readonly authenticatedBy: 'token' | 'client-certificate';
}

/**
 * The control plane: reads the configuration, owns the CA, and serves every proxy its configuration over
 * xDS and its certificates over Istio's CA API, both on one TLS gRPC port.
 */
export class ControlPlane {
  readonly translator: Translator;
  readonly source: ConfigSource;
  readonly ca: CertificateAuthority;
  readonly cache: ResourceCache;
  readonly xds: XdsServer;
  readonly metrics = new ControlPlaneMetrics();
  readonly logger: Logger;
  readonly trustBundlePath: string | undefined;
  #grpcPort = 0;
  #monitoringPort = 0;
  readonly #grpc: grpc.Server;
  readonly #caServer: CaServer;
  readonly #serving: ServingCredentials;
  readonly #monitoring: MonitoringServer;
  readonly #tokens: TokenTable;
  readonly #stateDir: string | undefined;
  readonly #unwatch: () => void;
  #reported = new Map<string, ConfigProblem>();
  #ready = false;
  #closed: Promise<void> | undefined;
  /** Cache seq -> when the config change that produced it was read (for convergence time). */
  readonly #commitTimes = new Map<number, number>();
  #updates: Promise<void> = Promise.resolve();

  private constructor(init: {
    options: ControlPlaneOptions;
    source: ConfigSource;
    ca: CertificateAuthority;
    tokens: TokenTable;
    translator: Translator;
  }) {
    const { options, source, ca, tokens, translator } = init;
    this.logger = options.logger ?? silentLogger;
    this.source = source;
    this.ca = ca;
    this.#tokens = tokens;
    this.translator = translator;
    this.#stateDir = options.stateDir;
    this.trustBundlePath = options.stateDir ? join(options.stateDir, 'root-cert.pem') : undefined;
    this.cache = new ResourceCache({ registry: createIstioRegistry() });
    const view = options.ztunnelPolicyView ?? true;
    this.xds = new XdsServer({
      cache: this.cache,
      authenticate: (req) => this.#authenticate(req),
      ...(view
        ? {
            view: (peer: XdsPeer, entry: CacheEntry) => this.#visible(peer, entry),
            // Only a node's ztunnel has its Authorizations filtered; every other type and client keeps the
            // shared fast path (no per-client name tracking).
            viewApplies: (peer: XdsPeer, typeUrl: string) =>
              typeUrl === AUTHORIZATION_TYPE_URL && nodeOfZtunnel(peer) !== undefined,
          }
        : {}),
      logger: this.logger,
    });
    this.xds.on('connect', (peer) => this.logger.info('proxy connected', this.#describePeer(peer)));
    this.xds.on('disconnect', (peer) => this.logger.info('proxy disconnected', this.#describePeer(peer)));
    this.xds.on('ack', ({ typeUrl, version }) => {
      this.metrics.pushes.inc({ type: shortType(typeUrl) });
      const at = this.#commitTimes.get(Number(version));
      if (at !== undefined) this.metrics.pushLatency.observe((performance.now() - at) / 1000);
    });
    this.xds.on('nack', ({ peer, typeUrl, message }) => {
      this.metrics.nacks.inc({ type: shortType(typeUrl) });
      this.logger.warn('proxy rejected configuration (NACK)', { ...this.#describePeer(peer), type: typeUrl, message });
    });
    this.#grpc = new grpc.Server({
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.max_send_message_length': 256 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    this.xds.attachTo(this.#grpc);
    // Only ztunnel tokens name a node (see #tokenAuthenticator), so only ztunnels may impersonate the
    // workloads of their node; a waypoint, or any proxy renewing with its mesh certificate, gets its own identity.
    this.#caServer = new CaServer({
      ca,
      authenticators: [this.#tokenAuthenticator(), new ClientCertificateAuthenticator(ca)],
      trustedNodeAccounts: tokens.entries.filter((e) => e.kind === 'ztunnel').map((e) => e.identity),
      isWorkloadOnNode: (node, id) => translator.isWorkloadOnNode(node, id.toString()),
      clusterId: translator.clusterId,
    }).attachTo(this.#grpc);
    this.#caServer.on('issued', (e) => {
      this.metrics.certsIssued.inc();
      this.logger.info('certificate issued', {
        identity: e.identity,
        caller: e.caller,
        authenticator: e.authenticator,
      });
    });
    this.#caServer.on('refused', (e) => {
      this.metrics.certsRefused.inc({ code: String(e.grpcCode) });
      this.logger.warn('certificate request refused', { code: e.grpcCode, reason: e.message, peer: e.peer });
    });
    const rootNs = translator.rootNamespace;
    this.#serving = new ServingCredentials({
      ca,
      dnsNames: options.servingNames?.dnsNames ?? [
        'localhost',
        `istiod.${rootNs}.svc`,
        `istiod.${rootNs}.svc.${translator.domainSuffix}`,
      ],
      ipAddresses: options.servingNames?.ipAddresses ?? ['127.0.0.1', '::1'],
    });
    this.#monitoring = new MonitoringServer({
      metrics: async () => {
        this.#refreshGauges();
        return { contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() };
      },
      ready: () => this.#ready,
      configDump: () => this.configDump(),
      connections: () => this.connections(),
      configErrors: () => this.problems(),
    });
    this.#unwatch = source.watch((batch) => {
      this.#updates = this.#updates.then(() => this.#onBatch(batch));
    });
  }

  /** Loads the configuration and the CA, then starts serving. Rejects with a ControlPlaneError on bad settings. */
  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const rootNamespace = options.rootNamespace ?? 'istio-system';
    if ((options.configDir === undefined) === (options.source === undefined)) {
      throw new ControlPlaneError('ERR_CP_BAD_SETTING', 'give exactly one of configDir (--config-dir) or source');
    }
    const listen = parseHostPort(options.listen ?? '127.0.0.1:15012', '--listen');
    const monitoring = parseHostPort(options.monitoringListen ?? '127.0.0.1:15014', '--monitoring-listen');
    const tokens =
      options.tokens instanceof TokenTable
        ? options.tokens
        : options.tokens
          ? await TokenTable.fromFile(options.tokens)
          : new TokenTable([]);
    const trustDomain = options.trustDomain ?? 'cluster.local';
    let ca: CertificateAuthority;
    try {
      if (options.stateDir) await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
      ca = await CertificateAuthority.create({
        trustDomain,
        ...(options.stateDir ? { stateDir: join(options.stateDir, 'ca') } : {}),
      });
    } catch (err) {
      throw new ControlPlaneError(
        'ERR_CP_STATE_DIR',
        `cannot set up the CA${options.stateDir ? ` in ${options.stateDir}` : ''}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const source =
      options.source ??
      new DirectorySource({
        dir: options.configDir as string,
        validatePolicy: authzValidator(rootNamespace),
        ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
        ...(options.scheduler ? { scheduler: options.scheduler } : {}),
      });
    const translator = new Translator({
      trustDomain,
      rootNamespace,
      convertPolicy: authzConverter,
      ...(options.clusterId ? { clusterId: options.clusterId } : {}),
      ...(options.domainSuffix ? { domainSuffix: options.domainSuffix } : {}),
      ...(options.defaultDataplaneMode ? { defaultDataplaneMode: options.defaultDataplaneMode } : {}),
    });
    const cp = new ControlPlane({ options, source, ca, tokens, translator });
    try {
      await cp.#begin(listen, monitoring);
    } catch (err) {
      cp.destroy();
      throw err;
    }
    return cp;
  }

  async #begin(listen: { host: string; port: number }, monitoring: { host: string; port: number }): Promise<void> {
    const readAt = performance.now();
    await this.source.start();
    const initial: ConfigChange[] = this.source.list().map((o) => ({ type: 'added', key: keyOf(o), object: o }));
    this.#publish(this.translator.apply(initial), readAt);
    this.#reportProblems();
    await this.#writeTrustBundle(this.ca.trustBundle);
    this.ca.on('trust-bundle-changed', (pem) => void this.#writeTrustBundle(pem));
    const creds = await this.#serving.start();
    const target = listen.host.includes(':') ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
    this.#grpcPort = await new Promise<number>((resolve, reject) =>
      this.#grpc.bindAsync(target, creds, (err, port) =>
        err
          ? reject(
              new ControlPlaneError('ERR_CP_LISTEN', `cannot listen on ${target} (--listen): ${err.message}`, {
                cause: err,
              }),
            )
          : resolve(port),
      ),
    );
    try {
      this.#monitoringPort = await this.#monitoring.listen(monitoring.host, monitoring.port);
    } catch (err) {
      throw new ControlPlaneError(
        'ERR_CP_LISTEN',
        `cannot listen on ${monitoring.host}:${monitoring.port} (--monitoring-listen): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    this.#ready = true;
    this.logger.info('control plane serving', {
      grpc: `${listen.host}:${this.#grpcPort}`,
      monitoring: `${monitoring.host}:${this.#monitoringPort}`,
      source: this.source.name,
      addresses: this.translator.addresses().size,
      authorizations: this.translator.authorizations().size,
      problems: this.problems().length,
      startupMs: Math.round(performance.now() - readAt),
    });
  }

  /** Port of the xDS + CA listener. */
  get grpcPort(): number {
    return this.#grpcPort;
  }

  get monitoringPort(): number {
    return this.#monitoringPort;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The serving certificate chain (PEM) proxies see on the gRPC port. */
  get servingCertificate(): string | undefined {
    return this.#serving.certificateChain;
  }

  /** Resolves once every config update received so far has been translated and published. */
  settled(): Promise<void> {
    return this.#updates;
  }

  /** Every current problem: from reading the configuration and from translating it. */
  problems(): ConfigProblem[] {
    return [...this.source.problems(), ...this.translator.problems()];
  }

  /** The translated resources and the kept L7 objects (what /debug/config_dump shows). */
  configDump(): unknown {
    return {
      addresses: this.translator.addresses(),
      authorizations: this.translator.authorizations(),
      l7: this.translator.l7Objects().map((o) => ({
        kind: o.kind,
        namespace: o.metadata.namespace,
        name: o.metadata.name,
        file: o.origin.file,
        spec: o.spec,
      })),
    };
  }

  /** Each connected proxy: who, its node, the versions it acked, its last NACK. */
  connections(): unknown {
    return this.xds.clients().map((c) => ({
      id: c.id,
      protocol: c.protocol,
      address: c.address,
      nodeId: c.node?.id ?? null,
      principal: c.principal,
      connectedAt: c.connectedAt,
      requests: c.requests,
      responses: c.responses,
      bytesSent: c.bytesSent,
      types: c.types.map((t) => ({
        type: t.typeUrl,
        ackedVersion: t.ackedVersion,
        pendingNonce: t.pendingNonce,
        nacks: t.nacks,
        lastNack: t.lastNack,
      })),
    }));
  }

  async #onBatch(batch: ConfigBatch): Promise<void> {
    if (this.#closed) return;
    const readAt = performance.now();
    try {
      if (batch.changes.length > 0) this.#publish(this.translator.apply(batch.changes), readAt);
    } catch (err) {
      this.logger.error('translation failed; the previous configuration stays in force', {
        error: (err as Error).message,
      });
    }
    this.#reportProblems();
  }

  /** Moves a translation diff into the xDS cache (one commit), falling back to one resource at a time. */
  #publish(diff: ResourceDiff, readAt: number): void {
    const ops: Array<{ type: string; name: string; value?: unknown }> = [];
    for (const [name, value] of diff.authorizations.upserted) ops.push({ type: AUTHORIZATION_TYPE_URL, name, value });
    for (const [name, value] of diff.addresses.upserted) ops.push({ type: ADDRESS_TYPE_URL, name, value });
    for (const name of diff.addresses.removed) ops.push({ type: ADDRESS_TYPE_URL, name });
    for (const name of diff.authorizations.removed) ops.push({ type: AUTHORIZATION_TYPE_URL, name });
    this.metrics.configUpdates.inc();
    if (ops.length > 0) {
      const apply = (list: typeof ops) =>
        this.cache.transaction((tx) => {
          for (const op of list) {
            if (op.value === undefined) tx.delete(op.type, op.name);
            else tx.set(op.type, op.name, op.value);
          }
        });
      try {
        apply(ops);
      } catch (err) {
        // One resource the xDS types refuse must not hold back the rest.
        this.logger.error('a translated resource was refused by the xDS cache; publishing the others', {
          error: (err as Error).message,
        });
        for (const op of ops) {
          try {
            apply([op]);
          } catch (e) {
            this.logger.error('resource not published', { type: op.type, name: op.name, error: (e as Error).message });
          }
        }
      }
      this.#commitTimes.set(this.cache.seq, readAt);
      if (this.#commitTimes.size > 1000) this.#commitTimes.delete(this.#commitTimes.keys().next().value as number);
    }
    if (this.translator.takeNodeViewChange()) this.xds.revalidateViews();
  }

  /** Logs each problem once, when it first appears, and when it is resolved. */
  #reportProblems(): void {
    const now = new Map<string, ConfigProblem>();
    for (const p of this.problems()) now.set(problemKey(p), p);
    for (const [k, p] of now) {
      if (this.#reported.has(k)) continue;
      const log = p.severity === 'error' ? this.logger.error : this.logger.warn;
      log.call(this.logger, `config ${p.severity}: ${formatProblem(p)}`, {
        code: p.code,
        file: p.file,
        object: p.object,
        reason: p.reason,
      });
    }
    for (const [k, p] of this.#reported) {
      if (!now.has(k))
        this.logger.info(`config problem resolved: ${formatProblem(p)}`, {
          code: p.code,
          file: p.file,
          object: p.object,
        });
    }
    this.#reported = now;
    let errors = 0;
    for (const p of now.values()) if (p.severity === 'error') errors++;
    this.metrics.configErrors.set({ severity: 'error' }, errors);
    this.metrics.configErrors.set({ severity: 'warning' }, now.size - errors);
  }

  #refreshGauges(): void {
    const kinds: Record<string, number> = { ztunnel: 0, waypoint: 0, mesh: 0 };
    for (const c of this.xds.clients()) {
      const k = (c.principal as ProxyPrincipal | undefined)?.kind ?? 'mesh';
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    for (const [kind, n] of Object.entries(kinds)) this.metrics.connected.set({ kind }, n);
    this.metrics.resources.set({ type: 'Address' }, this.translator.addresses().size);
    this.metrics.resources.set({ type: 'Authorization' }, this.translator.authorizations().size);
  }

  #tokenAuthenticator(): Authenticator {
    return {
      name: 'token',
      authenticate: (call) => {
        const header = call.metadata('authorization');
        if (header === undefined) return undefined;
        const cred = this.#credentialOf(header);
        return {
          identity: cred.identity,
          authenticator: 'token',
          ...(cred.kind === 'ztunnel' && cred.node ? { node: cred.node } : {}),
        };
      },
    };
  }

  #credentialOf(authorizationHeader: string): ProxyCredential {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorizationHeader);
    // A CaError, so the CA service answers UNAUTHENTICATED; xDS turns any throw into UNAUTHENTICATED.
    const cred = m ? this.#tokens.lookup(m[1] as string) : undefined;
    if (!cred)
      throw caUnauthenticated(
        m ? 'bearer token is not known: check the --tokens file' : 'authorization metadata must be "Bearer <token>"',
      );
    return cred;
  }

  #authenticate(req: XdsAuthRequest): ProxyPrincipal {
    if (req.bearerToken !== undefined) {
      const cred = this.#credentialOf(`Bearer ${req.bearerToken}`);
      return {
        identity: cred.identity.toString(),
        kind: cred.kind,
        ...(cred.node ? { node: cred.node } : {}),
        authenticatedBy: 'token',
      };
    }
    if (req.certificate?.raw) {
      // grpc-js requests but does not require client certificates: verify it against our CA here.
      const id = this.ca.verifyCertificate(req.certificate.raw);
      return { identity: id.toString(), kind: 'mesh', authenticatedBy: 'client-certificate' };
    }
    throw new Error('no credentials: send "authorization: Bearer <token>" or present a mesh client certificate');
  }

  #visible(peer: XdsPeer, entry: CacheEntry): boolean {
    const node = nodeOfZtunnel(peer);
    if (entry.typeUrl !== AUTHORIZATION_TYPE_URL || node === undefined) return true;
    const a = entry.value as { name: string; namespace: string; scope: string };
    return this.translator.isPolicyNeededOnNode(node, a);
  }

  #describePeer(peer: XdsPeer): Record<string, unknown> {
    const p = peer.principal as ProxyPrincipal | undefined;
    return {
      id: peer.id,
      address: peer.address,
      identity: p?.identity,
      kind: p?.kind,
      node: p?.node,
      nodeId: peer.node?.id,
    };
  }

  async #writeTrustBundle(pem: string): Promise<void> {
    if (!this.#stateDir || !this.trustBundlePath) return;
    const tmp = `${this.trustBundlePath}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, pem, { mode: 0o644 });
      await rename(tmp, this.trustBundlePath);
    } catch (err) {
      this.logger.error('cannot write the trust bundle', { file: this.trustBundlePath, error: (err as Error).message });
    }
  }

  /** Stops accepting, ends xDS streams gracefully (proxies reconnect on their own), stops watching. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#ready = false;
      this.#unwatch();
      await this.source.close();
      await this.#updates;
      await this.xds.close();
      await this.#caServer.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          this.#grpc.forceShutdown();
          resolve();
        }, 5000);
        force.unref();
        this.#grpc.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      this.#serving.stop();
      await this.#monitoring.close();
      await this.ca.close();
      this.logger.info('control plane stopped');
    })();
    return this.#closed;
  }

  /** Drops everything at once. Idempotent. */
  destroy(err?: Error): void {
    this.#ready = false;
    this.#closed ??= Promise.resolve();
    this.#unwatch();
    void this.source.close();
    this.xds.destroy(err);
    this.#caServer.destroy();
    this.#grpc.forceShutdown();
    this.#serving.stop();
    this.#monitoring.destroy();
    this.ca.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The node of a ztunnel authenticated by a node token (whose Authorizations are filtered), else undefined. */
function nodeOfZtunnel(peer: XdsPeer): string | undefined {
  const p = peer.principal as ProxyPrincipal | undefined;
  return p?.kind === 'ztunnel' && p.node ? p.node : undefined;
}

function caUnauthenticated(message: string): CaError {
  return new CaError('ERR_UNAUTHENTICATED', message);
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new ControlPlaneError(
      'ERR_CP_BAD_SETTING',
      `${flag} ${JSON.stringify(value)} must be host:port, e.g. 127.0.0.1:15012 (port 0 picks a free one)`,
    );
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
