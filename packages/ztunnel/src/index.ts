export type { CertificateSummary } from './certificates.js';
export {
  envName,
  type HostPort,
  helpText,
  isLoopback,
  type LocalListenerConfig,
  OPTIONS,
  type ParseResult,
  parseConfig,
  parseHostPort,
  xdsNodeId,
  type ZtunnelConfig,
} from './config.js';
export { ConnectionTracker, type TrackedConnection } from './connections.js';
export { formatDuration, parseDuration } from './duration.js';
export { ZtunnelError, type ZtunnelErrorCode } from './errors.js';
export {
  isLogLevel,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  Logger,
  type LoggerOptions,
  type LogLevel,
} from './logger.js';
export { type ByteTally, TCP_LABELS, type TcpLabels, ZtunnelMetrics } from './metrics.js';
export type {
  AuthorizationInfo,
  GatewayAddress,
  LoadBalancing,
  LoadBalancingScope,
  Locality,
  NamespacedHostname,
  NetworkAddress,
  PortMapping,
  ServiceInfo,
  WorkloadInfo,
} from './model.js';
export { policyKey, serviceKey, workloadIdentity } from './model.js';
export { type L4Connection, PolicyEvaluator } from './policy.js';
export { Resolver, type ResolverOptions, type Route, type Target } from './resolver.js';
export {
  type Socks5Request,
  Socks5Server,
  type Socks5ServerOptions,
  SocksReply,
  type SocksReplyCode,
} from './socks5.js';
export { normalizeIp, ProxyState, type StateChange } from './state.js';
export { type ConnectionInfo, tcpLabels } from './telemetry.js';
export { loadTrustBundle, Ztunnel, type ZtunnelAddresses, type ZtunnelOptions } from './ztunnel.js';
