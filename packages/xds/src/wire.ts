import protobuf from 'protobufjs';

/**
 * Hand-assembled protobuf pieces for responses. A DiscoveryResponse or DeltaDiscoveryResponse is a
 * concatenation of fields, and protobuf allows any field order and repeated fields to be split, so
 * the server encodes each resource's field once and splices the same bytes into every response.
 */
const WIRE_LEN = 2;

export function stringField(field: number, value: string): Buffer {
  if (value === '') return Buffer.alloc(0);
  const w = protobuf.Writer.create();
  w.uint32((field << 3) | WIRE_LEN).string(value);
  return Buffer.from(w.finish());
}

export function bytesField(field: number, value: Uint8Array): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((field << 3) | WIRE_LEN).bytes(value);
  return Buffer.from(w.finish());
}

/** google.protobuf.Any { type_url = 1; value = 2 }. */
export function encodeAny(typeUrl: string, value: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, typeUrl), bytesField(2, value)]);
}

/** envoy.service.discovery.v3.Resource { version = 1; resource = 2; name = 3 }. */
export function encodeDeltaResource(name: string, version: string, any: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, version), bytesField(2, any), stringField(3, name)]);
}
