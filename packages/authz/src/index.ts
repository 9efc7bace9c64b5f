export type { ConnectionAttributes, RequestAttributes, RequestAuth } from './attributes.js';
export { type ConditionAttribute, parseConditionKey } from './condition-keys.js';
export {
  type Decision,
  type DecisionReason,
  type DryRunMatch,
  explainDecision,
  type PolicyRef,
} from './decision.js';
export {
  type CustomAuthorizationCall,
  type CustomProvider,
  type CustomVerdict,
  compileAuthorizations,
  compilePolicies,
  type EnforcementTarget,
  type EngineOptions,
  PolicyEngine,
  PolicySet,
  type WaypointTarget,
  type WorkloadTarget,
} from './engine.js';
export { AuthzError, type AuthzErrorCode, formatProblem, type ValidationProblem } from './errors.js';
export { normalizePath, PATH_NORMALIZATIONS, type PathNormalization } from './path.js';
export {
  type AuthorizationPolicy,
  type AuthorizationPolicySpec,
  type Condition,
  DEFAULT_ROOT_NAMESPACE,
  DRY_RUN_ANNOTATION,
  type Operation,
  type PolicyAction,
  type PolicyMetadata,
  type PolicyRule,
  type PolicyTargetReference,
  type Source,
} from './policy-types.js';
export { parsePolicy, type ValidateOptions, type ValidationResult, validatePolicy } from './validate.js';
export {
  type FromWorkloadOptions,
  type FromWorkloadResult,
  fromWorkloadAuthorization,
  toWorkloadAuthorization,
  type WorkloadConversion,
  type WorkloadConversionOptions,
} from './workload-convert.js';
export {
  type Authorization,
  AuthorizationAction,
  type AuthorizationActionName,
  type AuthorizationActionValue,
  type AuthorizationAddress,
  type AuthorizationClause,
  type AuthorizationMatch,
  type AuthorizationRule,
  AuthorizationScope,
  type AuthorizationScopeName,
  type AuthorizationScopeValue,
  type ServiceAccountMatch,
  type StringMatch,
} from './workload-types.js';
