export { validate as validateConfigDirectory } from './cli-main.js';
export {
  type AnyConfigObject,
  type AuthorizationPolicySpec,
  CLUSTER_SCOPED_KINDS,
  type ConfigKind,
  type ConfigObject,
  type ConfigOrigin,
  type ContainerPort,
  type GatewayListener,
  type GatewaySpec,
  KIND_API_VERSIONS,
  keyOf,
  L7_KINDS,
  type MtlsMode,
  type ObjectMeta,
  type OwnerReference,
  objectKey,
  type PeerAuthenticationSpec,
  type PodCondition,
  type PodSpec,
  type ServicePort,
  type ServiceSpec,
  type SpecByKind,
  type WorkloadEntrySpec,
} from './config-object.js';
export { type ConfigProblem, type ConfigProblemCode, formatProblem, problemKey } from './config-problem.js';
export type { ConfigBatch, ConfigChange, ConfigListener, ConfigSource } from './config-source.js';
export { ControlPlane, type ControlPlaneOptions, type ProxyPrincipal } from './control-plane.js';
export { type DecodeOptions, type DecodeResult, decodeObject, type PolicyValidator } from './decode.js';
export { DirectorySource, type DirectorySourceOptions, netChanges } from './directory-source.js';
export { ControlPlaneError, type ControlPlaneErrorCode } from './errors.js';
export { ANNOTATIONS, canonicalService, LABELS, selectorMatches } from './labels.js';
export { jsonLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export { type ParsedConfigText, parseConfigText } from './parse-config.js';
export {
  CONVERTED_PEER_AUTHENTICATION_PREFIX,
  convertPeerAuthentication,
  effectivePeerAuthenticationKeys,
  STATIC_STRICT_POLICY_NAME,
  staticStrictPolicy,
} from './peer-authentication.js';
export { authzConverter, authzValidator } from './policy-adapter.js';
export type {
  AddressResource,
  AuthorizationMatchResource,
  AuthorizationResource,
  GatewayAddressResource,
  LoadBalancingResource,
  LocalityResource,
  NetworkAddressResource,
  PortResource,
  ResourceDiff,
  ServiceResource,
  StringMatchResource,
  WorkloadResource,
} from './resources.js';
export { type ScheduledTask, type Scheduler, timerScheduler } from './scheduler.js';
export { type ProxyCredential, type ProxyKind, type TokenFileEntry, TokenTable } from './tokens.js';
export {
  type PolicyConversion,
  type PolicyConverter,
  Translator,
  type TranslatorOptions,
} from './translator.js';
