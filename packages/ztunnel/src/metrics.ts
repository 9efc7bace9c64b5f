/**
 * Istio's standard TCP metrics (names and labels as Istio's ztunnel reports them), in Prometheus text
 * format. Byte counters of open connections are folded in at every scrape so a long tunnel shows progress
 * without a counter update per chunk.
 */
import { Counter, Gauge, Registry } from 'prom-client';

export const TCP_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'source_canonical_service',
  'source_canonical_revision',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_cluster',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'request_protocol',
  'response_flags',
  'connection_security_policy',
] as const;

export type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;

/** Byte counts of one connection that have not yet been added to the counters. */
interface CounterChild {
  inc(value?: number): void;
}

/** The per-label-set counter children, resolved once per distinct label set (prom-client hashes labels on every call otherwise). */
interface Children {
  opened: CounterChild;
  closed: CounterChild;
  sent: CounterChild;
  received: CounterChild;
}

// Distinct label sets are bounded by workload pairs; the cache is dropped wholesale if it ever grows past this.
const MAX_CACHED_LABEL_SETS = 10_000;

export interface ByteTally {
  labels: TcpLabels;
  /** @internal */
  children?: Children;
  /** Client → server bytes so far. */
  received: number;
  /** Server → client bytes so far. */
  sent: number;
  reportedReceived: number;
  reportedSent: number;
  /** Updates received/sent from where the bytes are really counted (a socket's counters), before a flush. */
  refresh?: () => void;
}

export class ZtunnelMetrics {
  readonly registry = new Registry();
  readonly opened: Counter<string>;
  readonly closed: Counter<string>;
  readonly failed: Counter<string>;
  readonly sentBytes: Counter<string>;
  readonly receivedBytes: Counter<string>;
  readonly activeConnections: Gauge<string>;
  readonly certificates: Gauge<string>;
  private readonly open = new Set<ByteTally>();
  private readonly childCache = new Map<string, Children>();
  private readonly active: Record<'inbound' | 'outbound', { inc(): void; dec(): void }>;

  constructor() {
    const labelNames = [...TCP_LABELS];
    const registers = [this.registry];
    const flush = () => {
      for (const t of this.open) this.flushTally(t);
    };
    this.opened = new Counter({
      name: 'istio_tcp_connections_opened_total',
      help: 'TCP connections opened',
      labelNames,
      registers,
    });
    this.closed = new Counter({
      name: 'istio_tcp_connections_closed_total',
      help: 'TCP connections closed',
      labelNames,
      registers,
    });
    this.failed = new Counter({
      name: 'istio_tcp_connections_failed_total',
      help: 'TCP connections that failed (policy, upstream, resolution)',
      labelNames,
      registers,
    });
    this.sentBytes = new Counter({
      name: 'istio_tcp_sent_bytes_total',
      help: 'bytes sent to the client (server → client) on TCP connections',
      labelNames,
      registers,
      collect: flush,
    });
    this.receivedBytes = new Counter({
      name: 'istio_tcp_received_bytes_total',
      help: 'bytes received from the client (client → server) on TCP connections',
      labelNames,
      registers,
      collect: flush,
    });
    this.activeConnections = new Gauge({
      name: 'ztunnel_active_connections',
      help: 'connections open now, by direction',
      labelNames: ['direction'],
      registers,
    });
    this.active = {
      inbound: this.activeConnections.labels({ direction: 'inbound' }),
      outbound: this.activeConnections.labels({ direction: 'outbound' }),
    };
    this.certificates = new Gauge({
      name: 'ztunnel_workload_certificates',
      help: 'workload certificates held for local workloads',
      registers,
    });
  }

  connectionOpened(labels: TcpLabels, direction: 'inbound' | 'outbound'): ByteTally {
    const children = this.children(labels);
    children.opened.inc();
    this.active[direction].inc();
    const t: ByteTally = { labels, children, received: 0, sent: 0, reportedReceived: 0, reportedSent: 0 };
    this.open.add(t);
    return t;
  }

  connectionClosed(t: ByteTally, direction: 'inbound' | 'outbound'): void {
    if (!this.open.delete(t)) return;
    this.flushTally(t);
    (t.children ?? this.children(t.labels)).closed.inc();
    this.active[direction].dec();
  }

  private children(labels: TcpLabels): Children {
    let key = '';
    for (const name of TCP_LABELS) key += `${labels[name]}\u0001`;
    let c = this.childCache.get(key);
    if (!c) {
      if (this.childCache.size >= MAX_CACHED_LABEL_SETS) this.childCache.clear();
      c = {
        opened: this.opened.labels(labels),
        closed: this.closed.labels(labels),
        sent: this.sentBytes.labels(labels),
        received: this.receivedBytes.labels(labels),
      };
      this.childCache.set(key, c);
    }
    return c;
  }

  connectionFailed(labels: TcpLabels): void {
    this.failed.inc(labels);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private flushTally(t: ByteTally): void {
    t.refresh?.();
    const c = t.children ?? this.children(t.labels);
    if (t.received > t.reportedReceived) {
      c.received.inc(t.received - t.reportedReceived);
      t.reportedReceived = t.received;
    }
    if (t.sent > t.reportedSent) {
      c.sent.inc(t.sent - t.reportedSent);
      t.reportedSent = t.sent;
    }
  }
}
