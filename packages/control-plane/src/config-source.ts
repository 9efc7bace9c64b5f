import type { AnyConfigObject } from './config-object.js';
import type { ConfigProblem } from './config-problem.js';

/** One change to the set of accepted objects. `object` is the new version (for `deleted`: the last one). */
export interface ConfigChange {
  readonly type: 'added' | 'modified' | 'deleted';
  readonly key: string;
  readonly object: AnyConfigObject;
  /** The previous version, for `modified` and `deleted`. */
  readonly previous?: AnyConfigObject;
}

/** What a watcher receives: the changes of one update and the full current problem list. */
export interface ConfigBatch {
  readonly changes: readonly ConfigChange[];
  readonly problems: readonly ConfigProblem[];
}

export type ConfigListener = (batch: ConfigBatch) => void;

/**
 * Where typed configuration objects come from: a directory of YAML today, the Kubernetes API later.
 * The translation only sees this interface (list + watch), so a new source does not touch it.
 */
export interface ConfigSource {
  /** Short description for logs and problems, e.g. `dir:/etc/mesh`. */
  readonly name: string;
  /** Loads the initial state; resolves once list() reflects it. Rejects if the source itself is unusable. */
  start(signal?: AbortSignal): Promise<void>;
  /** Every accepted object (bad inputs keep their last good version). */
  list(): readonly AnyConfigObject[];
  /** The problems that currently exist, each once. */
  problems(): readonly ConfigProblem[];
  /** Calls `listener` after every update, in order. Returns the unsubscribe function. */
  watch(listener: ConfigListener): () => void;
  /** Stops watching; idempotent. */
  close(): Promise<void>;
}
