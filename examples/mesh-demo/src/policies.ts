/** The policy both demos apply and remove: an L4 DENY for the client's identity on the echo app. */
export const DENY_YAML = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/demo/sa/client"]}
`;
