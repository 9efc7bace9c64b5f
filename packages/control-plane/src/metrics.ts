import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The control plane's Prometheus metrics, with Istio's names where istiod has one. */
export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly connected = new Gauge({
    name: 'pilot_xds',
    help: 'Connected xDS clients (ztunnels and waypoints).',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: 'pilot_xds_pushes',
    help: 'xDS responses acknowledged by clients, per type.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly nacks = new Counter({
    name: 'pilot_total_xds_rejects',
    help: 'xDS responses rejected (NACKed) by clients, per type.',
    labelNames: ['type'],
    registers: [this.registry],
  });
  readonly pushLatency = new Histogram({
    name: 'pilot_proxy_convergence_time',
    help: 'Seconds from a configuration change being read to a client acknowledging the push that carries it.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly certsIssued = new Counter({
    name: 'citadel_server_success_cert_issuance_count',
    help: 'Certificates issued.',
    registers: [this.registry],
  });
  readonly certsRefused = new Counter({
    name: 'ambient_cp_certificate_refusals_total',
    help: 'Certificate requests refused, by gRPC status code.',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly configErrors = new Gauge({
    name: 'ambient_cp_config_errors',
    help: 'Configuration problems currently reported, by severity (see /debug/config-errors).',
    labelNames: ['severity'],
    registers: [this.registry],
  });
  readonly configUpdates = new Counter({
    name: 'ambient_cp_config_updates_total',
    help: 'Configuration updates applied (each may change several objects).',
    registers: [this.registry],
  });
  readonly resources = new Gauge({
    name: 'ambient_cp_resources',
    help: 'Resources served, per type.',
    labelNames: ['type'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
