/**
 * Certificates for the workloads on this node, through @ambient-ts/ca's SecretManager (the rotation
 * agent) asking the CA with impersonation. The set of identities follows the local workloads; a
 * renewal reaches new connections only (credentials are looked up per new TLS connection), so open
 * tunnels are never touched. Keys stay in memory and are never logged or dumped.
 */
import { X509Certificate } from 'node:crypto';
import type { SecretManager, WorkloadCertificate } from '@ambient-ts/ca';
import type { Logger } from './logger.js';

export interface CertificateSummary {
  identity: string;
  state: 'available' | 'pending' | 'failed';
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  issuer?: string;
  /** Last fetch/renewal error, when any. */
  error?: string;
}

export class LocalCertificates {
  private readonly wanted = new Set<string>();
  private readonly current = new Map<string, WorkloadCertificate>();
  private readonly errors = new Map<string, string>();

  constructor(
    private readonly secrets: SecretManager,
    private readonly logger: Logger,
    private readonly onChange: () => void,
  ) {
    secrets.on('rotated', ({ identity, certificate, previous }) => {
      if (!this.wanted.has(identity)) return;
      this.current.set(identity, certificate);
      this.errors.delete(identity);
      this.logger.info('certificates', previous ? 'certificate renewed' : 'certificate issued', {
        identity,
        serial: certificate.serial,
        not_after: certificate.notAfter.toISOString(),
        ...(previous ? { previous_serial: previous.serial } : {}),
      });
      this.onChange();
    });
    secrets.on('renewal-failed', ({ identity, error, retryInMs, stillValid }) => {
      if (!this.wanted.has(identity)) return;
      this.errors.set(identity, error.message);
      this.logger.warn('certificates', 'certificate fetch failed', {
        identity,
        error: error.message,
        retry_in_ms: retryInMs,
        still_valid: stillValid,
      });
    });
  }

  /** Track exactly these identities: start fetching new ones, forget the ones no local workload has any more. */
  reconcile(identities: Iterable<string>): void {
    const next = new Set(identities);
    for (const id of this.wanted) {
      if (next.has(id)) continue;
      this.wanted.delete(id);
      this.current.delete(id);
      this.errors.delete(id);
      this.secrets.forget(id);
      this.logger.info('certificates', 'certificate released (no local workload uses it)', { identity: id });
    }
    for (const id of next) {
      if (this.wanted.has(id)) continue;
      this.wanted.add(id);
      // Fetch eagerly so the node is ready before its first connection; failures are retried by the manager.
      this.secrets.getCertificate(id).then(
        (c) => {
          if (!this.wanted.has(id) || this.current.get(id)?.serial === c.serial) return;
          this.current.set(id, c);
          this.onChange();
        },
        (err: Error) => {
          if (this.wanted.has(id)) this.errors.set(id, err.message);
        },
      );
    }
    this.onChange();
  }

  /** Credentials for a local workload's identity (waits for the first fetch when needed). */
  get(identity: string): Promise<WorkloadCertificate> {
    return this.secrets.getCertificate(identity);
  }

  isLocal(identity: string): boolean {
    return this.wanted.has(identity);
  }

  /** Identities still waiting for their first certificate. */
  pending(): string[] {
    return [...this.wanted].filter((id) => !this.current.has(id));
  }

  get count(): number {
    return this.current.size;
  }

  summaries(): CertificateSummary[] {
    return [...this.wanted].sort().map((identity) => {
      const c = this.current.get(identity);
      const error = this.errors.get(identity);
      if (!c) return { identity, state: error ? 'failed' : 'pending', ...(error ? { error } : {}) };
      let issuer: string | undefined;
      try {
        issuer = new X509Certificate(c.certChain).issuer.replaceAll('\n', ', ');
      } catch {
        issuer = undefined;
      }
      return {
        identity,
        state: 'available',
        serial: c.serial,
        notBefore: c.notBefore.toISOString(),
        notAfter: c.notAfter.toISOString(),
        ...(issuer ? { issuer } : {}),
        ...(error ? { error } : {}),
      };
    });
  }
}
