export { formatAuthority, type HboneAuthority, parseAuthority } from './authority.js';
export { buildBaggage, type HboneBaggage, parseBaggage } from './baggage.js';
export { HboneClient, type HboneClientOptions, type HboneConnectOptions, type HboneTarget } from './client.js';
export {
  HBONE_CLIENT_MAX_STREAMS,
  HBONE_CONNECT_TIMEOUT_MS,
  HBONE_CONNECTION_WINDOW,
  HBONE_DRAIN_TIMEOUT_MS,
  HBONE_MAX_FRAME_SIZE,
  HBONE_PING_INTERVAL_MS,
  HBONE_PING_TIMEOUT_MS,
  HBONE_POOL_IDLE_TIMEOUT_MS,
  HBONE_PORT,
  HBONE_SERVER_MAX_STREAMS,
  HBONE_STREAM_WINDOW,
} from './constants.js';
export type { ClientCredentialsProvider, ServerCredentialsProvider, TlsCredentials } from './credentials.js';
export { HboneError, type HboneErrorCode } from './errors.js';
export { buildForwarded, type ForwardedElement, type ForwardedNode, parseForwarded } from './forwarded.js';
export {
  type HboneConnectionInfo,
  HboneServer,
  type HboneServerEvents,
  type HboneServerOptions,
  type HboneTunnelInfo,
  type HboneTunnelStats,
} from './server.js';
export {
  type HboneHandler,
  HboneRejection,
  type HboneRejectStatus,
  type HboneRequest,
} from './server-request.js';
export { type SpliceResult, splice } from './splice.js';
export type { Timers } from './timers.js';
export { buildTraceparent, newTraceparent, parseTraceparent, type Traceparent } from './traceparent.js';
