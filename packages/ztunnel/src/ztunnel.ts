/**
 * The ztunnel: one per node. Connects to the control plane (Delta xDS over TLS with the bootstrap token),
 * keeps certificates for the workloads on its node (impersonation), serves inbound HBONE / plaintext for
 * them, takes their outbound connections over SOCKS5 and local listeners, and reports metrics, access
 * logs, readiness and a config dump. close() drains; destroy() cuts.
 */
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { CaClient, SecretManager, TlsChannelCredentials } from '@ambient-ts/ca';
import { HboneClient, HboneServer } from '@ambient-ts/hbone';
import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  type Authorization,
  formatIp,
  XdsClient,
  type XdsUpdate,
} from '@ambient-ts/xds';
import { LocalCertificates } from './certificates.js';
import { xdsNodeId, type ZtunnelConfig } from './config.js';
import { ConnectionTracker } from './connections.js';
import type { ProxyContext } from './context.js';
import { nameserverFromResolvConf } from './dns-names.js';
import { DnsProxy, stateDnsRecords } from './dns-proxy.js';
import { ZtunnelError } from './errors.js';
import { adminServer, metricsServer, readinessServer } from './http-endpoints.js';
import { handlePlaintextInbound, inboundHboneHandler, type PlaintextInboundDeps } from './inbound.js';
import { Logger } from './logger.js';
import { ZtunnelMetrics } from './metrics.js';
import { workloadIdentity } from './model.js';
import { handleOutbound, type OutboundDeps } from './outbound.js';
import { captureHandler, kernelOriginalDst, type OriginalDstLookup } from './outbound-capture.js';
import { PolicyEvaluator } from './policy.js';
import { hostForAuthority, Resolver } from './resolver.js';
import { Socks5Server } from './socks5.js';
import { normalizeIp, ProxyState } from './state.js';
import { toAuthorizationInfo, toServiceInfo, toWorkloadInfo } from './xds-adapter.js';

export interface ZtunnelOptions {
  config: ZtunnelConfig;
  /** Logger (default: stdout, with the configured level and format). */
  logger?: Logger;
  /** Called once a graceful shutdown requested through /quitquitquit has finished. */
  onExit?: () => void;
  /**
   * How redirected connections reveal their original destination: the outbound capture listener's, and the
   * plaintext inbound listener's (which pod a REDIRECTed connection was for). Default: SO_ORIGINAL_DST via the
   * native addon; where it is unavailable plaintext inbound takes the connection's local address.
   */
  originalDst?: OriginalDstLookup;
}

export interface ZtunnelAddresses {
  socks5: string;
  admin: string;
  metrics: string;
  readiness: string;
  /** Inbound HBONE listeners (one per local workload, or one wildcard). */
  hbone: string[];
  plaintext: string[];
  localListeners: string[];
  /** Outbound capture listener; '' when off or unavailable. */
  captureOutbound: string;
  /** DNS proxy (UDP and TCP on the same port); '' when off. */
  dnsProxy: string;
}

type State = 'starting' | 'running' | 'draining' | 'closed';

/** One local workload's inbound listeners (per-workload mode), with the `ownListeners` keys they added. */
interface InboundListeners {
  hbone: HboneServer;
  plaintext?: NetServer;
  address: string;
  owned: string[];
}

/** The key of a listener in `ownListeners`: the address in normal form, so every spelling finds it. */
function ownKey(address: string, port: number): string {
  return `${normalizeIp(address)}:${port}`;
}

/** Reads the trust bundle; refuses to go on without at least one certificate in it. */
export function loadTrustBundle(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_FILE',
      `cannot read the trust bundle ${file}: ${(err as Error).message} (give the control plane's root-cert.pem with --trust-bundle)`,
      { cause: err },
    );
  }
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(text)) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_FILE',
      `the trust bundle ${file} holds no PEM certificate: ztunnel will not start without roots to verify peers against`,
    );
  }
  return text;
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ZtunnelError('ERR_ZTUNNEL_FILE', `cannot read the bootstrap token ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!token) throw new ZtunnelError('ERR_ZTUNNEL_FILE', `the bootstrap token file ${file} is empty`);
  return token;
}

export class Ztunnel {
  readonly config: ZtunnelConfig;
  readonly logger: Logger;
  readonly metrics = new ZtunnelMetrics();
  readonly state = new ProxyState();
  readonly tracker = new ConnectionTracker();
  readonly policy: PolicyEvaluator;
  private readonly ctx: ProxyContext;
  private readonly xds: XdsClient;
  private readonly caClient: CaClient;
  private readonly secrets: SecretManager;
  private readonly certs: LocalCertificates;
  private readonly hboneClient: HboneClient;
  private readonly resolver: Resolver;
  private readonly socks: Socks5Server;
  private readonly inbound = new Map<string, InboundListeners>();
  private readonly inboundErrors = new Map<string, string>();
  private readonly localListeners: NetServer[] = [];
  private readonly ownListeners = new Set<string>();
  private readonly originalDst: OriginalDstLookup;
  /** What every plaintext inbound listener hands each connection (built once, not per connection). */
  private readonly plaintextDeps: PlaintextInboundDeps;
  private capture?: NetServer;
  private captureUnavailable?: string;
  private dns?: DnsProxy;
  private admin?: HttpServer;
  private metricsHttp?: HttpServer;
  private readiness?: HttpServer;
  private addrs: Omit<ZtunnelAddresses, 'hbone' | 'plaintext'> = {
    socks5: '',
    admin: '',
    metrics: '',
    readiness: '',
    localListeners: [],
    captureOutbound: '',
    dnsProxy: '',
  };
  private lifecycle: State = 'starting';
  private closing?: Promise<void>;
  private reconcileQueue: Promise<void> = Promise.resolve();
  private readonly onExit: (() => void) | undefined;
  private wasReady = false;
  private readonly readyWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();

  private constructor(options: ZtunnelOptions, trustBundle: string) {
    const config = options.config;
    this.config = config;
    this.onExit = options.onExit;
    this.originalDst = options.originalDst ?? kernelOriginalDst;
    this.plaintextDeps = {
      originalDst: this.originalDst,
      isOwnListener: (addr, port) => this.isOwnListener(addr, port),
    };
    this.logger = options.logger ?? new Logger({ level: config.logLevel, format: config.logFormat });
    this.policy = new PolicyEvaluator();
    this.ctx = {
      config,
      logger: this.logger,
      metrics: this.metrics,
      state: this.state,
      tracker: this.tracker,
      policy: this.policy,
    };
    // Read the token now so a missing file is a start-up error, not a silent reconnect loop.
    readToken(config.tokenFile);
    const caTarget = `${hostForAuthority(config.caAddress.host)}:${config.caAddress.port}`;
    this.caClient = new CaClient({
      address: caTarget,
      // Re-read per call: a rotated bundle on disk is picked up without a restart.
      trustBundle: () => loadTrustBundle(config.trustBundleFile),
      tokenFile: config.tokenFile,
      clusterId: config.clusterId,
      impersonate: true,
    });
    this.secrets = new SecretManager({
      fetcher: (identity, { signal }) => this.caClient.fetchCertificate(identity, { ttl: config.certTtlMs, signal }),
    });
    this.certs = new LocalCertificates(this.secrets, this.logger, () => {
      this.metrics.certificates.set(this.certs?.count ?? 0);
      this.noteReadiness();
    });
    this.xds = new XdsClient({
      target: `${hostForAuthority(config.controlPlane.host)}:${config.controlPlane.port}`,
      // No SNI for a control plane addressed by IP (Node's DEP0123); its certificate is still checked for this host.
      credentials: new TlsChannelCredentials({ serverName: config.controlPlane.host, trustBundle }),
      token: () => readToken(config.tokenFile),
      node: {
        id: xdsNodeId(config),
        cluster: config.clusterId,
        metadata: {
          NAME: config.podName,
          NAMESPACE: config.podNamespace,
          NODE_NAME: config.node,
          CLUSTER_ID: config.clusterId,
          INSTANCE_IPS: config.nodeIp,
        },
        userAgentName: 'ambient-ts-ztunnel',
      },
    });
    this.hboneClient = new HboneClient({
      credentials: (sourceIdentity) => {
        if (!sourceIdentity || !this.certs.isLocal(sourceIdentity)) {
          throw new ZtunnelError(
            'ERR_ZTUNNEL_NO_CERTIFICATE',
            `no certificate for ${sourceIdentity ?? 'an unnamed source'}: it is not a workload on this node`,
          );
        }
        return this.certs.get(sourceIdentity);
      },
      connectTimeoutMs: config.connectTimeoutMs,
    });
    this.resolver = new Resolver({
      state: this.state,
      trustDomain: config.trustDomain,
      hbonePort: config.ports.hbone,
      isOwnListener: (ip, port) => this.isOwnListener(ip, port),
    });
    this.socks = new Socks5Server({
      onRequest: (req) => {
        void handleOutbound(this.ctx, this.outboundDeps(), req.socket, req.target, {
          accept: () => req.accept(),
          reject: (c) => req.reject(c),
        });
      },
      onProtocolError: (err, socket) =>
        this.logger.debug('socks5', err.message, { src: `${socket.remoteAddress}:${socket.remotePort}` }),
    });
  }

  /** Validates the trust bundle and token, binds every node listener, and starts syncing with the control plane. */
  static async start(options: ZtunnelOptions): Promise<Ztunnel> {
    const trustBundle = loadTrustBundle(options.config.trustBundleFile);
    const z = new Ztunnel(options, trustBundle);
    try {
      await z.startListeners();
    } catch (err) {
      z.destroy();
      throw err;
    }
    z.lifecycle = 'running';
    z.startSync();
    z.logger.info('ztunnel', 'started', {
      node: z.config.node,
      node_id: xdsNodeId(z.config),
      control_plane: `${z.config.controlPlane.host}:${z.config.controlPlane.port}`,
      socks5: z.addrs.socks5,
      admin: z.addrs.admin,
      metrics: z.addrs.metrics,
      readiness: z.addrs.readiness,
      local_listeners: z.addrs.localListeners.join(',') || undefined,
      capture_outbound: z.addrs.captureOutbound || undefined,
      dns_proxy: z.addrs.dnsProxy || undefined,
    });
    return z;
  }

  addresses(): ZtunnelAddresses {
    return {
      ...this.addrs,
      hbone: [...this.inbound.values()].map((l) => l.address),
      plaintext: [...this.inbound.values()].flatMap((l) => {
        const a = l.plaintext?.address();
        return a && typeof a === 'object' ? [`${hostForAuthority(a.address)}:${a.port}`] : [];
      }),
    };
  }

  /** Ready once workloads and policies were received, local certificates fetched, and inbound listeners bound. */
  readiness_(): { ready: boolean; pending: string[] } {
    const pending: string[] = [];
    if (this.lifecycle !== 'running') pending.push(`ztunnel is ${this.lifecycle}`);
    if (!this.xds.isReady) pending.push('waiting for workloads and policies from the control plane');
    for (const id of this.certs.pending()) pending.push(`waiting for the certificate of ${id}`);
    for (const [ip, why] of this.inboundErrors) pending.push(`inbound listener for ${ip}: ${why}`);
    if (this.config.inboundBind === 'per-workload') {
      for (const w of this.state.localWorkloads(this.config.node)) {
        if (w.tunnelProtocol !== 'HBONE') continue;
        for (const ip of w.addresses.map(normalizeIp)) {
          if (!this.inbound.has(ip) && !this.inboundErrors.has(ip))
            pending.push(`opening the inbound listener for ${ip}`);
        }
      }
    }
    return { ready: pending.length === 0, pending };
  }

  get ready(): boolean {
    return this.readiness_().ready;
  }

  /** Resolves when ready (or rejects when the signal aborts or the ztunnel closes first). */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.lifecycle === 'closed' || this.lifecycle === 'draining') {
      return Promise.reject(new ZtunnelError('ERR_ZTUNNEL_CLOSED', 'ztunnel closed before it was ready'));
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        this.readyWaiters.delete(waiter);
        reject(new ZtunnelError('ERR_ZTUNNEL_CLOSED', 'stopped waiting for readiness', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.readyWaiters.add(waiter);
    });
  }

  configDump(): unknown {
    return {
      node: this.config.node,
      nodeId: xdsNodeId(this.config),
      trustDomain: this.config.trustDomain,
      controlPlane: {
        address: `${this.config.controlPlane.host}:${this.config.controlPlane.port}`,
        state: this.xds.state,
        synced: this.xds.isReady,
      },
      ready: this.readiness_(),
      listeners: this.addresses(),
      ...(this.captureUnavailable ? { captureUnavailable: this.captureUnavailable } : {}),
      certificates: this.certs.summaries(),
      workloads: this.state.allWorkloads().map((w) => ({
        ...w,
        identity: workloadIdentity(w, this.config.trustDomain),
        local: w.node === this.config.node,
      })),
      services: this.state.allServices(),
      policies: this.state.allPolicies().map(readablePolicy),
      connections: { open: this.tracker.size },
    };
  }

  /** Graceful: stop accepting, GOAWAY on HBONE, let open connections finish up to the drain deadline. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.lifecycle = 'draining';
    this.rejectReadyWaiters();
    this.closing = (async () => {
      const deadline = this.config.drainTimeoutMs;
      this.logger.info('ztunnel', 'draining', { open_connections: this.tracker.size, deadline_ms: deadline });
      await Promise.allSettled([
        this.socks.close(),
        this.capture ? closeServer(this.capture) : undefined,
        this.dns?.close(),
        ...this.localListeners.map((l) => closeServer(l)),
        ...[...this.inbound.values()].map((l) =>
          Promise.all([l.hbone.close(), l.plaintext ? closeServer(l.plaintext) : undefined]),
        ),
        this.tracker.drain(deadline).then(({ cut }) => {
          if (cut > 0) this.logger.warn('ztunnel', 'drain deadline reached: connections cut', { cut });
        }),
      ]);
      await this.hboneClient.close();
      this.xds.close();
      await this.secrets.close();
      this.caClient.close();
      await Promise.allSettled(
        [this.admin, this.metricsHttp, this.readiness].map((s) => (s ? closeHttp(s) : undefined)),
      );
      this.lifecycle = 'closed';
      this.logger.info('ztunnel', 'stopped');
    })();
    return this.closing;
  }

  destroy(err?: Error): void {
    this.lifecycle = 'closed';
    this.rejectReadyWaiters();
    this.tracker.destroyAll(err?.message ?? 'ztunnel destroyed');
    void this.socks.close();
    this.capture?.close();
    this.dns?.destroy();
    for (const l of this.localListeners) l.close();
    for (const l of this.inbound.values()) {
      l.hbone.destroy(err);
      l.plaintext?.close();
    }
    this.hboneClient.destroy(err);
    this.xds.close();
    void this.secrets.close();
    this.caClient.close();
    for (const s of [this.admin, this.metricsHttp, this.readiness]) {
      s?.closeAllConnections();
      s?.close();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private rejectReadyWaiters(): void {
    for (const w of this.readyWaiters)
      w.reject(new ZtunnelError('ERR_ZTUNNEL_CLOSED', 'ztunnel closed before it was ready'));
    this.readyWaiters.clear();
  }

  private outboundDeps(): OutboundDeps {
    return { resolver: this.resolver, hbone: this.hboneClient };
  }

  private isOwnListener(ip: string, port: number): boolean {
    const n = normalizeIp(ip);
    if (this.ownListeners.has(ownKey(n, port))) return true;
    const p = this.config.ports;
    // Wildcard inbound listeners catch every local address on their ports.
    if (this.config.inboundBind !== 'per-workload' && (port === p.hbone || port === p.plaintext)) {
      const w = this.state.workloadByAddress(n);
      return w?.node === this.config.node;
    }
    return false;
  }

  private async startListeners(): Promise<void> {
    const c = this.config;
    const bind = async <T>(
      what: string,
      host: string,
      port: number,
      fn: () => Promise<T>,
      hint = `choose another --${what}-port or --node-ip`,
    ): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw new ZtunnelError(
          'ERR_ZTUNNEL_LISTEN',
          `cannot listen for ${what} on ${hostForAuthority(host)}:${port}: ${(err as Error).message} (is another ztunnel using this node address? ${hint})`,
          { cause: err },
        );
      }
    };
    const s = await bind('socks5', c.nodeIp, c.ports.socks5, () => this.socks.listen(c.ports.socks5, c.nodeIp));
    this.addrs.socks5 = this.own(s.address, s.port);
    this.admin = adminServer({
      logger: this.logger,
      configDump: () => this.configDump(),
      onQuit: () => this.quit('/quitquitquit'),
    });
    this.addrs.admin = await bind('admin', c.adminAddress, c.ports.admin, () =>
      listenHttp(this.admin as HttpServer, c.adminAddress, c.ports.admin, (a, p) => this.own(a, p)),
    );
    this.metricsHttp = metricsServer(this.metrics);
    this.addrs.metrics = await bind('metrics', c.nodeIp, c.ports.metrics, () =>
      listenHttp(this.metricsHttp as HttpServer, c.nodeIp, c.ports.metrics, (a, p) => this.own(a, p)),
    );
    this.readiness = readinessServer(() => this.readiness_());
    this.addrs.readiness = await bind('readiness', c.nodeIp, c.ports.readiness, () =>
      listenHttp(this.readiness as HttpServer, c.nodeIp, c.ports.readiness, (a, p) => this.own(a, p)),
    );
    for (const l of c.localListeners) {
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
        socket.on('error', () => {});
        socket.pause();
        void handleOutbound(this.ctx, this.outboundDeps(), socket, l.target, {
          accept: () => socket,
          reject: () => socket.destroy(),
        });
      });
      const addr = await bind('local-listener', l.bindAddress, l.port, () => listenNet(server, l.bindAddress, l.port));
      this.localListeners.push(server);
      this.addrs.localListeners.push(this.own(addr.address, addr.port));
    }
    if (c.captureOutbound) await this.startCapture(c.captureOutbound, bind);
    if (c.dnsProxy) {
      const { host, port } = c.dnsProxy;
      const upstream = c.dnsUpstream ?? hostResolver();
      const dns = new DnsProxy({
        records: stateDnsRecords(this.state),
        logger: this.logger,
        ...(upstream ? { upstream: { address: upstream.host, port: upstream.port } } : {}),
      });
      this.dns = dns;
      const a = await bind('dns-proxy', host, port, () => dns.listen(port, host), 'choose another --dns-proxy address');
      this.addrs.dnsProxy = this.own(a.address, a.port);
      if (!upstream)
        this.logger.warn(
          'dns',
          'no upstream resolver (none in /etc/resolv.conf, no --dns-upstream): names outside the mesh get SERVFAIL',
        );
    }
    if (c.inboundBind !== 'per-workload') await this.openInbound(c.inboundBind, true);
  }

  /** Opens the capture listener, or logs once why transparent capture is unavailable and carries on. */
  private async startCapture(
    at: { host: string; port: number },
    bind: <T>(what: string, host: string, port: number, fn: () => Promise<T>, hint?: string) => Promise<T>,
  ): Promise<void> {
    const support = this.originalDst.support();
    if (!support.available) {
      this.captureUnavailable = support.reason;
      this.logger.warn('capture', 'transparent capture unavailable: the outbound capture listener is not started', {
        reason: support.reason,
      });
      return;
    }
    const server = createServer(
      { allowHalfOpen: true, noDelay: true },
      captureHandler(
        this.ctx,
        () => this.outboundDeps(),
        this.originalDst,
        (ip, port) => this.isOwnListener(ip, port),
      ),
    );
    const a = await bind(
      'capture-outbound',
      at.host,
      at.port,
      () => listenNet(server, at.host, at.port),
      'choose another --capture-outbound address',
    );
    this.capture = server;
    this.addrs.captureOutbound = this.own(a.address, a.port);
  }

  private own(address: string, port: number): string {
    this.ownListeners.add(ownKey(address, port));
    return `${hostForAuthority(address)}:${port}`;
  }

  private startSync(): void {
    this.xds.on('update', (u) => this.applyUpdate(u));
    this.xds.on('nack', (r) =>
      this.logger.warn('xds', 'rejected resources', {
        type: r.typeUrl,
        errors: r.errors.map((e) => `${e.name}: ${e.reason}`).join('; '),
      }),
    );
    this.xds.on('connected', () => this.logger.info('xds', 'connected to the control plane'));
    this.xds.on('disconnected', (err) =>
      this.logger.warn('xds', 'control plane connection lost; keeping the last configuration', { error: err.message }),
    );
    this.xds.on('ready', () => {
      this.logger.info('xds', 'initial configuration received');
      this.noteReadiness();
    });
    this.state.on('change', (change) => {
      if (change.policies) {
        for (const p of this.policy.update(this.state.allPolicies())) this.logger.warn('policy', 'policy left out', p);
      }
      if (change.workloads) this.reconcileLocalWorkloads();
      if (change.policies || change.workloads) {
        for (const { connection, reason } of this.tracker.reevaluate()) {
          this.logger.info('policy', 'closed a connection that policy now denies', {
            'src.addr': connection.info.srcAddr,
            'dst.addr': connection.info.dstAddr,
            reason,
          });
        }
      }
      this.noteReadiness();
    });
    this.xds.subscribe(ADDRESS_TYPE_URL).subscribe(AUTHORIZATION_TYPE_URL).start();
  }

  private applyUpdate(u: XdsUpdate): void {
    this.logger.info('xds', 'configuration updated', {
      type: u.typeUrl.slice(u.typeUrl.lastIndexOf('.') + 1),
      version: u.version,
      updated: u.updated.map((r) => r.name).join(',') || undefined,
      removed: u.removed.join(',') || undefined,
    });
    this.state.batch(() => {
      if (u.typeUrl === ADDRESS_TYPE_URL) {
        for (const r of u.updated) {
          const a = r.value as Address;
          if (a.type === 'workload') this.state.upsertWorkload(toWorkloadInfo(a.workload));
          else this.state.upsertService(toServiceInfo(a.service));
        }
        for (const name of u.removed) if (!this.state.removeWorkload(name)) this.state.removeService(name);
      } else if (u.typeUrl === AUTHORIZATION_TYPE_URL) {
        for (const r of u.updated) this.state.upsertPolicy(toAuthorizationInfo(r.value as Authorization));
        for (const name of u.removed) this.state.removePolicy(name);
      }
    });
  }

  /** Certificates and (in per-workload mode) inbound listeners follow the set of local workloads. */
  private reconcileLocalWorkloads(): void {
    if (this.lifecycle === 'draining' || this.lifecycle === 'closed') return;
    const local = this.state.localWorkloads(this.config.node).filter((w) => w.tunnelProtocol === 'HBONE');
    this.certs.reconcile(local.map((w) => workloadIdentity(w, this.config.trustDomain)));
    if (this.config.inboundBind !== 'per-workload') return;
    this.reconcileQueue = this.reconcileQueue.then(async () => {
      const want = new Set(local.flatMap((w) => w.addresses.map(normalizeIp)));
      for (const [ip, l] of this.inbound) {
        if (want.has(ip)) continue;
        this.inbound.delete(ip);
        this.inboundErrors.delete(ip);
        // Both the HBONE and the plaintext entries: a stale one would refuse traffic to a reused address.
        for (const key of l.owned) this.ownListeners.delete(key);
        this.logger.info('inbound', 'stopped listening', { hbone: l.address, workload_ip: ip });
        await Promise.allSettled([l.hbone.close(), l.plaintext ? closeServer(l.plaintext) : undefined]);
      }
      for (const ip of want)
        if (!this.inbound.has(ip) && this.lifecycle === 'running') await this.openInbound(ip, false);
    });
  }

  private async openInbound(ip: string, wildcard: boolean): Promise<void> {
    const hbone = new HboneServer({
      credentials: (local, socket) => {
        const w = this.state.workloadByAddress(local.address) ?? (wildcard ? this.redirectedTo(socket) : undefined);
        if (!w || w.node !== this.config.node) {
          throw new ZtunnelError(
            'ERR_ZTUNNEL_NO_CERTIFICATE',
            `no local workload has address ${local.address}: no certificate to present`,
          );
        }
        return this.certs.get(workloadIdentity(w, this.config.trustDomain));
      },
      handler: inboundHboneHandler(this.ctx, !wildcard),
      // Redirected connections arrive on the node's address; requests then report the pod's (dst.hbone_addr).
      ...(wildcard ? { originalDestination: (socket: Socket) => this.originalDestinationOf(socket) } : {}),
      drainTimeoutMs: this.config.drainTimeoutMs,
      upstreamTimeoutMs: this.config.connectTimeoutMs,
    });
    hbone.on('tlsError', (err, remote) =>
      this.logger.warn('inbound', 'HBONE handshake refused', {
        src: `${remote.address}:${remote.port}`,
        error: err.message,
        code: err.code,
      }),
    );
    try {
      const a = await hbone.listen(this.config.ports.hbone, ip);
      const entry: InboundListeners = {
        hbone,
        address: this.own(a.address, a.port),
        owned: [ownKey(a.address, a.port)],
      };
      this.inbound.set(ip, entry);
      this.inboundErrors.delete(ip);
      const plaintext = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) =>
        handlePlaintextInbound(this.ctx, socket, this.plaintextDeps),
      );
      try {
        const p = await listenNet(plaintext, ip, this.config.ports.plaintext);
        this.own(p.address, p.port);
        entry.owned.push(ownKey(p.address, p.port));
        entry.plaintext = plaintext;
      } catch (err) {
        this.logger.warn('inbound', 'plaintext listener not started', {
          address: ip,
          port: this.config.ports.plaintext,
          error: (err as Error).message,
        });
      }
      this.logger.info('inbound', 'listening', { hbone: entry.address, workload_ip: wildcard ? '*' : ip });
      this.noteReadiness();
    } catch (err) {
      hbone.destroy();
      const why = (err as Error).message;
      this.inboundErrors.set(ip, why);
      this.logger.error('inbound', 'cannot open the HBONE listener', {
        address: ip,
        port: this.config.ports.hbone,
        error: why,
      });
      if (wildcard)
        throw new ZtunnelError(
          'ERR_ZTUNNEL_LISTEN',
          `cannot listen for HBONE on ${ip}:${this.config.ports.hbone}: ${why}`,
          { cause: err },
        );
    }
  }

  /**
   * The local workload an iptables-REDIRECTed HBONE connection was meant for: REDIRECT rewrites the destination
   * to the node's own address, the original one (the pod's address) is kept by connection tracking.
   */
  private redirectedTo(socket: Socket) {
    const dst = this.originalDestinationOf(socket);
    return dst && this.state.workloadByAddress(dst.address);
  }

  /** SO_ORIGINAL_DST of an accepted socket; undefined without the addon or without a conntrack entry. */
  private originalDestinationOf(socket: Socket): { address: string; port: number } | undefined {
    if (!this.originalDst.support().available) return undefined;
    try {
      const dst = this.originalDst.lookup(socket);
      return { address: normalizeIp(dst.address), port: dst.port };
    } catch {
      return undefined;
    }
  }

  /** Log the first transition to ready (scripts and tests wait for this line), and losses of readiness. */
  private noteReadiness(): void {
    if (this.lifecycle !== 'running') return;
    const r = this.readiness_();
    if (r.ready && !this.wasReady) {
      this.wasReady = true;
      this.logger.info('ztunnel', 'ready', { local_workloads: this.certs.summaries().length });
      for (const w of this.readyWaiters) w.resolve();
      this.readyWaiters.clear();
    } else if (!r.ready && this.wasReady) {
      this.wasReady = false;
      this.logger.info('ztunnel', 'not ready', { pending: r.pending.join('; ') });
    }
  }

  private quit(reason: string): void {
    this.logger.info('ztunnel', 'shutdown requested', { by: reason });
    void this.close().then(() => this.onExit?.());
  }
}

function readablePolicy(p: ReturnType<ProxyState['allPolicies']>[number]): unknown {
  return JSON.parse(
    JSON.stringify(p, (_k, v: unknown) => {
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) return safeFormatIp(v);
      if (
        v &&
        typeof v === 'object' &&
        (v as { type?: string }).type === 'Buffer' &&
        Array.isArray((v as { data?: unknown }).data)
      ) {
        return safeFormatIp(Uint8Array.from((v as { data: number[] }).data));
      }
      return v;
    }),
  );
}

function safeFormatIp(b: Uint8Array): string {
  try {
    return formatIp(b);
  } catch {
    return Buffer.from(b).toString('hex');
  }
}

/** The host's resolver: the first nameserver of /etc/resolv.conf, port 53; undefined when there is none. */
function hostResolver(): { host: string; port: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return undefined;
  }
  const ns = nameserverFromResolvConf(text);
  return ns ? { host: ns, port: 53 } : undefined;
}

function listenNet(server: NetServer, host: string, port: number): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      server.on('error', () => {});
      const a = server.address();
      resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address: host, port });
    });
  });
}

async function listenHttp(
  server: HttpServer,
  host: string,
  port: number,
  own: (a: string, p: number) => string,
): Promise<string> {
  const a = await listenNet(server as unknown as NetServer, host, port);
  return own(a.address, a.port);
}

function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function closeHttp(server: HttpServer): Promise<void> {
  server.closeIdleConnections();
  return closeServer(server as unknown as NetServer);
}
