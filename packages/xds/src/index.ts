export { ADS_SERVICE_DEFINITION, DELTA_METHOD, SOTW_METHOD } from './ads-service.js';
export type {
  Authorization,
  AuthorizationAction,
  AuthorizationAddress,
  AuthorizationClause,
  AuthorizationInput,
  AuthorizationMatch,
  AuthorizationRule,
  AuthorizationScope,
  ServiceAccountMatch,
  StringMatch,
} from './authorization-types.js';
export { Backoff, type BackoffOptions, type Timers } from './backoff.js';
export {
  type DeltaRequest,
  type DeltaResponse,
  decodeDeltaRequest,
  decodeDeltaResponse,
  decodeSotwRequest,
  decodeSotwResponse,
  encodeDeltaRequest,
  encodeDeltaResponse,
  encodeSotwRequest,
  type RpcStatus,
  type SotwRequest,
  type SotwResponse,
  type WireResource,
  type XdsNode,
} from './discovery-messages.js';
export { XdsError, type XdsErrorCode } from './errors.js';
export { formatCidr, formatIp, type IpPrefix, isIpBytes, parseCidr, parseIp } from './ip.js';
export {
  ADDRESS_TYPE_URL,
  AUTHORIZATION_TYPE_URL,
  addressResourceType,
  authorizationResourceType,
  createIstioRegistry,
  validateAddress,
  validateAuthorization,
} from './istio-types.js';
export { silentLogger, type XdsLogger } from './logger.js';
export { lookupType, PROTO_FILES, protoRoot } from './proto-root.js';
export {
  type CacheChange,
  CacheEntry,
  type CacheTransaction,
  ResourceCache,
  type ResourceCacheOptions,
} from './resource-cache.js';
export {
  defineResourceType,
  PLAIN_OBJECT_OPTIONS,
  type ResourceType,
  type ResourceTypeOptions,
  TYPE_URL_PREFIX,
} from './resource-type.js';
export type { XdsClientState as XdsServerClientState, XdsClientTypeState, XdsPeer } from './server-session.js';
export { TypeRegistry } from './type-registry.js';
export { encodeAny } from './wire.js';
export type {
  Address,
  AddressInput,
  ApplicationTunnel,
  AppProtocol,
  Extension,
  GatewayAddress,
  HealthPolicy,
  IPFamilies,
  LoadBalancing,
  LoadBalancingMode,
  LoadBalancingScope,
  Locality,
  NamespacedHostname,
  NetworkAddress,
  NetworkMode,
  Port,
  PortList,
  ResourceInput,
  Service,
  ServiceInput,
  TunnelProtocol,
  Workload,
  WorkloadInput,
  WorkloadStatus,
  WorkloadType,
} from './workload-types.js';
export {
  XdsClient,
  type XdsClientOptions,
  type XdsClientState,
  type XdsRejection,
  type XdsResource,
  type XdsUpdate,
} from './xds-client.js';
export { type XdsAuthRequest, XdsServer, type XdsServerOptions } from './xds-server.js';
