import { XdsError } from './errors.js';
import type { ResourceType } from './resource-type.js';

/**
 * The resource types a server or client understands, by type URL. Open: any package can
 * `register()` its own {@link ResourceType}. A registry is a plain object you pass to
 * `ResourceCache`/`XdsClient`, so different servers in one process can know different types.
 */
export class TypeRegistry {
  readonly #types = new Map<string, ResourceType<unknown, unknown>>();

  constructor(types: Iterable<ResourceType<never, never>> = []) {
    for (const t of types) this.register(t);
  }

  /** Adds a type. Registering the same definition again is a no-op; a different one for the same URL is an error. */
  register<T, I>(type: ResourceType<T, I>): this {
    const existing = this.#types.get(type.typeUrl);
    if (existing !== undefined && existing !== (type as unknown)) {
      throw new XdsError(
        'ERR_XDS_TYPE_CONFLICT',
        `type URL ${type.typeUrl} is already registered with another definition; use a distinct type URL`,
      );
    }
    this.#types.set(type.typeUrl, type as unknown as ResourceType<unknown, unknown>);
    return this;
  }

  has(typeUrl: string): boolean {
    return this.#types.has(typeUrl);
  }

  get(typeUrl: string): ResourceType<unknown, unknown> | undefined {
    return this.#types.get(typeUrl);
  }

  /** Like get(), but throws ERR_XDS_UNKNOWN_TYPE for an unregistered type URL. */
  require(typeUrl: string): ResourceType<unknown, unknown> {
    const t = this.#types.get(typeUrl);
    if (t === undefined) {
      throw new XdsError(
        'ERR_XDS_UNKNOWN_TYPE',
        `no resource type is registered for ${typeUrl}; register it with registry.register(defineResourceType(...))`,
      );
    }
    return t;
  }

  typeUrls(): string[] {
    return [...this.#types.keys()];
  }
}
