import type { ZtunnelConfig } from './config.js';
import type { ConnectionTracker } from './connections.js';
import type { Logger } from './logger.js';
import type { ZtunnelMetrics } from './metrics.js';
import type { PolicyEvaluator } from './policy.js';
import type { ProxyState } from './state.js';

/** What the inbound and outbound paths share. */
export interface ProxyContext {
  readonly config: ZtunnelConfig;
  readonly logger: Logger;
  readonly metrics: ZtunnelMetrics;
  readonly state: ProxyState;
  readonly tracker: ConnectionTracker;
  readonly policy: PolicyEvaluator;
}
