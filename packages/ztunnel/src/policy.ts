/**
 * L4 authorization for inbound connections, through @ambient-ts/authz: the workload-API Authorizations
 * received over xDS are compiled once per change; each connection asks for the decision at its
 * destination workload (namespace- and mesh-wide policies plus the workload's selector policies).
 */
import { compileAuthorizations, type Decision, type PolicyEngine } from '@ambient-ts/authz';
import type { AuthorizationInfo, WorkloadInfo } from './model.js';

export interface L4Connection {
  /** Verified SPIFFE identity of the peer; undefined for plaintext. */
  sourceIdentity?: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
}

export class PolicyEvaluator {
  private engine: PolicyEngine;

  constructor(private readonly rootNamespace = 'istio-system') {
    this.engine = compileAuthorizations([], { rootNamespace });
  }

  /**
   * Replace the policy set. A policy that does not compile is left out (and reported) rather than taking
   * the others down with it; xDS validation should have refused it already.
   */
  update(policies: readonly AuthorizationInfo[]): Array<{ policy: string; problem: string }> {
    try {
      this.engine = compileAuthorizations(policies, { rootNamespace: this.rootNamespace });
      return [];
    } catch {
      const good: AuthorizationInfo[] = [];
      const problems: Array<{ policy: string; problem: string }> = [];
      for (const p of policies) {
        try {
          compileAuthorizations([p], { rootNamespace: this.rootNamespace });
          good.push(p);
        } catch (err) {
          problems.push({ policy: `${p.namespace}/${p.name}`, problem: (err as Error).message });
        }
      }
      this.engine = compileAuthorizations(good, { rootNamespace: this.rootNamespace });
      return problems;
    }
  }

  check(workload: WorkloadInfo, conn: L4Connection): Decision {
    const set = this.engine.policiesFor({
      workload: { namespace: workload.namespace, policies: workload.authorizationPolicies },
    });
    return set.checkConnection({
      ...(conn.sourceIdentity ? { sourceIdentity: conn.sourceIdentity } : {}),
      sourceIp: conn.sourceIp,
      destinationIp: conn.destinationIp,
      destinationPort: conn.destinationPort,
    });
  }
}
