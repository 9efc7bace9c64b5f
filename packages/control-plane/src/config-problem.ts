/** Why an input was not (fully) accepted. Stable strings: tests, logs and /debug/config-errors use them. */
export type ConfigProblemCode =
  /** The file is not valid YAML; every object of that file keeps its last good version. */
  | 'yaml-syntax'
  /** The file could not be read (permissions, I/O error). */
  | 'read-failed'
  /** A document is not a Kubernetes-style object, or a field has the wrong shape. */
  | 'schema'
  /** apiVersion/kind is not one the control plane reads; the object is skipped. */
  | 'unknown-kind'
  /** Another object with the same kind, namespace and name was defined first; this one is ignored. */
  | 'duplicate'
  /** An AuthorizationPolicy failed validation. */
  | 'policy-invalid'
  /** A Pod has no status.podIP (it cannot be addressed). */
  | 'pod-without-ip'
  /** A Service selects no workload (no selector, or no Pod/WorkloadEntry matches). A warning: it is still served. */
  | 'service-selects-nothing'
  /** A reference cannot be honoured (e.g. istio.io/use-waypoint names no known waypoint). A warning. */
  | 'unresolved-reference';

export interface ConfigProblem {
  readonly code: ConfigProblemCode;
  /** `error`: the input was rejected (the last good version stays). `warning`: accepted, but probably not as meant. */
  readonly severity: 'error' | 'warning';
  /** Path relative to the config source (a file), or the source name. */
  readonly file: string;
  readonly line?: number;
  /** `Kind namespace/name` when the problem belongs to one object. */
  readonly object?: string;
  readonly reason: string;
}

/** Identity of a problem, so each one is reported once while it persists. */
export function problemKey(p: ConfigProblem): string {
  return `${p.code}\u0000${p.file}\u0000${p.object ?? ''}\u0000${p.reason}`;
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line ? `${p.file}:${p.line}` : p.file;
  const what = p.object ? ` ${p.object}:` : '';
  return `${where}:${what} ${p.severity === 'warning' ? 'warning: ' : ''}${p.reason} [${p.code}]`;
}
