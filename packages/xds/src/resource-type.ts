import type protobuf from 'protobufjs';
import { XdsError } from './errors.js';

/** Prefix of every type URL (as in google.protobuf.Any). */
export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/**
 * One xDS resource type: its type URL, how to encode and decode it, and how to check a decoded
 * value. `T` is the decoded shape, `I` what encoding accepts.
 */
export interface ResourceType<T = unknown, I = T> {
  readonly typeUrl: string;
  /** The protobufjs message type, for users that want to work with protobufjs messages directly. */
  readonly messageType: protobuf.Type;
  encode(value: I): Uint8Array;
  /** Throws on bytes that are not a valid encoding of the message. */
  decode(bytes: Uint8Array): T;
  /** Problems with the resource named `name`; an empty list means valid. */
  validate(name: string, value: T): string[];
  /** The resource name of a decoded value; state-of-the-world responses carry no names, so clients derive them. */
  nameOf(value: T): string;
}

export interface ResourceTypeOptions<T> {
  /** Defaults to `type.googleapis.com/<full message name>`. */
  typeUrl?: string;
  messageType: protobuf.Type;
  /** Returns problems (empty when valid). Defaults to accepting everything that decodes. */
  validate?: (name: string, value: T) => string[];
  /** Defaults to the value's `name` field. */
  nameOf?: (value: T) => string;
}

/** Conversion used for decoded values: see workload-types.ts for what it produces. */
export const PLAIN_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  enums: String,
  longs: Number,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/**
 * Defines a resource type from a protobufjs message type. Decoding produces plain objects
 * (camelCase fields, enum names, bytes as Uint8Array, defaults filled in); encoding accepts the
 * same shape or a subset of it. This is how another package adds its own type to a
 * {@link TypeRegistry} without changing this one.
 */
export function defineResourceType<T = Record<string, unknown>, I = Partial<T>>(
  options: ResourceTypeOptions<T>,
): ResourceType<T, I> {
  const messageType = options.messageType;
  const typeUrl = options.typeUrl ?? `${TYPE_URL_PREFIX}${messageType.fullName.replace(/^\./, '')}`;
  const validate = options.validate ?? (() => []);
  return {
    typeUrl,
    messageType,
    encode(value: I): Uint8Array {
      let message: protobuf.Message;
      try {
        message = messageType.fromObject(value as Record<string, unknown>);
      } catch (err) {
        throw new XdsError('ERR_XDS_INVALID_RESOURCE', `${typeUrl}: cannot encode: ${(err as Error).message}`, {
          cause: err,
        });
      }
      stripDefaults(messageType, message as unknown as Record<string, unknown>);
      return messageType.encode(message).finish();
    },
    decode(bytes: Uint8Array): T {
      return messageType.toObject(messageType.decode(bytes), PLAIN_OBJECT_OPTIONS) as T;
    },
    validate,
    nameOf: options.nameOf ?? ((value: T) => String((value as { name?: unknown }).name ?? '')),
  };
}

function isDefault(v: unknown): boolean {
  if (v === null || v === undefined || v === '' || v === 0 || v === false) return true;
  if (v instanceof Uint8Array) return v.length === 0;
  if (typeof v === 'object' && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number };
    return l.low === 0 && l.high === 0;
  }
  return false;
}

/**
 * protobufjs writes every field present on the message object, even when it holds the proto3
 * default. Canonical proto3 omits those; dropping them keeps our bytes identical to other
 * implementations' (and the golden tests' hand-written encodings). Oneof members stay: there the
 * presence itself is the information.
 */
function stripDefaults(type: protobuf.Type, message: Record<string, unknown>): void {
  for (const field of type.fieldsArray) {
    const v = message[field.name];
    if (v === undefined) continue;
    const sub = field.resolvedType;
    const isMessage = sub !== null && 'fieldsArray' in sub;
    if (field.map) {
      if (isMessage) for (const item of Object.values(v as object)) stripDefaults(sub as protobuf.Type, item);
      if (Object.keys(v as object).length === 0) delete message[field.name];
    } else if (field.repeated) {
      if (isMessage) for (const item of v as Record<string, unknown>[]) stripDefaults(sub as protobuf.Type, item);
      if ((v as unknown[]).length === 0) delete message[field.name];
    } else if (isMessage) {
      if (v === null) delete message[field.name];
      else stripDefaults(sub as protobuf.Type, v as Record<string, unknown>);
    } else if (field.partOf === null && isDefault(v)) {
      delete message[field.name];
    }
  }
}
