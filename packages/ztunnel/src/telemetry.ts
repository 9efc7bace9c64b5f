/**
 * What a connection reports: Istio's metric labels and the per-connection access log line.
 */
import type { Logger } from './logger.js';
import type { TcpLabels } from './metrics.js';
import type { ServiceInfo, WorkloadInfo } from './model.js';

export interface ConnectionInfo {
  direction: 'inbound' | 'outbound';
  /** Client address, ip:port. */
  srcAddr: string;
  srcWorkload?: WorkloadInfo;
  /** SPIFFE identity of the client (verified on inbound HBONE; the source workload's on outbound). */
  srcIdentity?: string;
  /** Destination address, ip:port (the workload's, or the original destination). */
  dstAddr: string;
  /** HBONE address dialled or received on (ip:15008), when the connection is tunnelled. */
  dstHboneAddr?: string;
  dstService?: ServiceInfo;
  dstWorkload?: WorkloadInfo;
  dstIdentity?: string;
  mtls: boolean;
}

const UNKNOWN = 'unknown';

function principal(id: string | undefined): string {
  return id ?? UNKNOWN;
}

export function tcpLabels(info: ConnectionInfo, reporter: 'source' | 'destination', responseFlags = '-'): TcpLabels {
  const s = info.srcWorkload;
  const d = info.dstWorkload;
  const svc = info.dstService;
  return {
    reporter,
    source_workload: s?.workloadName || s?.name || UNKNOWN,
    source_workload_namespace: s?.namespace || UNKNOWN,
    source_principal: principal(info.srcIdentity),
    source_app: s?.canonicalName || UNKNOWN,
    source_version: s?.canonicalRevision || UNKNOWN,
    source_cluster: s?.clusterId || UNKNOWN,
    source_canonical_service: s?.canonicalName || UNKNOWN,
    source_canonical_revision: s?.canonicalRevision || UNKNOWN,
    destination_workload: d?.workloadName || d?.name || UNKNOWN,
    destination_workload_namespace: d?.namespace || UNKNOWN,
    destination_principal: principal(info.dstIdentity),
    destination_app: d?.canonicalName || UNKNOWN,
    destination_version: d?.canonicalRevision || UNKNOWN,
    destination_cluster: d?.clusterId || UNKNOWN,
    destination_canonical_service: d?.canonicalName || UNKNOWN,
    destination_canonical_revision: d?.canonicalRevision || UNKNOWN,
    destination_service: svc?.hostname || UNKNOWN,
    destination_service_name: svc?.name || UNKNOWN,
    destination_service_namespace: svc?.namespace || UNKNOWN,
    request_protocol: 'tcp',
    response_flags: responseFlags,
    connection_security_policy: info.mtls ? 'mutual_tls' : 'unknown',
  };
}

/**
 * One line per connection, with Istio's ztunnel access-log fields. bytes_recv counts client → server,
 * bytes_sent server → client. Nothing is logged when access logging is off.
 */
export function logAccess(
  sink: { logger: Logger; config?: { accessLog: boolean } },
  info: ConnectionInfo,
  result: { bytesSent: number; bytesRecv: number; durationMs: number; error?: string },
): void {
  if (sink.config?.accessLog === false) return;
  sink.logger.log(
    result.error ? 'warn' : 'info',
    'access',
    result.error ? 'connection failed' : 'connection complete',
    {
      'src.addr': info.srcAddr,
      'src.workload': info.srcWorkload?.name,
      'src.namespace': info.srcWorkload?.namespace,
      'src.identity': info.srcIdentity,
      'dst.addr': info.dstAddr,
      'dst.hbone_addr': info.dstHboneAddr,
      'dst.service': info.dstService?.hostname,
      'dst.workload': info.dstWorkload?.name,
      'dst.namespace': info.dstWorkload?.namespace,
      'dst.identity': info.dstIdentity,
      direction: info.direction,
      bytes_sent: result.bytesSent,
      bytes_recv: result.bytesRecv,
      duration: `${Math.round(result.durationMs)}ms`,
      error: result.error,
    },
  );
}
