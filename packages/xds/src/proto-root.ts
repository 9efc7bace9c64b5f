import protobuf from 'protobufjs';
import { ISTIO_AUTHORIZATION_PROTO } from './protos/authorization.js';
import {
  ENVOY_CORE_PROTO,
  ENVOY_DISCOVERY_PROTO,
  GOOGLE_PROTOBUF_PROTO,
  GOOGLE_RPC_STATUS_PROTO,
} from './protos/discovery.js';
import { ISTIO_WORKLOAD_PROTO } from './protos/workload.js';

/** The .proto sources this package speaks, by the path they would have in a proto include tree. */
export const PROTO_FILES: Readonly<Record<string, string>> = Object.freeze({
  'google/protobuf/well_known.proto': GOOGLE_PROTOBUF_PROTO,
  'google/rpc/status.proto': GOOGLE_RPC_STATUS_PROTO,
  'envoy/config/core/v3/base.proto': ENVOY_CORE_PROTO,
  'envoy/service/discovery/v3/discovery.proto': ENVOY_DISCOVERY_PROTO,
  'istio/workload/workload.proto': ISTIO_WORKLOAD_PROTO,
  'istio/security/authorization.proto': ISTIO_AUTHORIZATION_PROTO,
});

let root: protobuf.Root | undefined;

/** One shared root holding every message this package knows; built on first use. */
export function protoRoot(): protobuf.Root {
  if (root === undefined) {
    const r = new protobuf.Root();
    // Imports name files we parse into the same root anyway, so they need no resolution.
    for (const text of Object.values(PROTO_FILES)) protobuf.parse(text, r, { keepCase: false });
    r.resolveAll();
    root = r;
  }
  return root;
}

export function lookupType(name: string): protobuf.Type {
  return protoRoot().lookupType(name);
}
