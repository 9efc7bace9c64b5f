/**
 * The subset of Envoy's discovery API (envoy.service.discovery.v3) that ADS needs, plus the
 * well-known types it references. Field numbers match Envoy's public API so any xDS peer can
 * read our bytes; fields we never use are left out (protobuf skips unknown fields on decode).
 */
export const GOOGLE_PROTOBUF_PROTO = `syntax = "proto3";
package google.protobuf;

message Any {
  string type_url = 1;
  bytes value = 2;
}

message Empty {}

message Duration {
  int64 seconds = 1;
  int32 nanos = 2;
}

message UInt32Value {
  uint32 value = 1;
}

message Struct {
  map<string, Value> fields = 1;
}

message Value {
  oneof kind {
    NullValue null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    Struct struct_value = 5;
    ListValue list_value = 6;
  }
}

enum NullValue {
  NULL_VALUE = 0;
}

message ListValue {
  repeated Value values = 1;
}
`;

export const GOOGLE_RPC_STATUS_PROTO = `syntax = "proto3";
package google.rpc;

import "google/protobuf/any.proto";

message Status {
  int32 code = 1;
  string message = 2;
  repeated google.protobuf.Any details = 3;
}
`;

export const ENVOY_CORE_PROTO = `syntax = "proto3";
package envoy.config.core.v3;

import "google/protobuf/struct.proto";

message Locality {
  string region = 1;
  string zone = 2;
  string sub_zone = 3;
}

message Node {
  string id = 1;
  string cluster = 2;
  google.protobuf.Struct metadata = 3;
  Locality locality = 4;
  string user_agent_name = 6;
  oneof user_agent_version_type {
    string user_agent_version = 7;
  }
  repeated string client_features = 10;
}

message ControlPlane {
  string identifier = 1;
}
`;

export const ENVOY_DISCOVERY_PROTO = `syntax = "proto3";
package envoy.service.discovery.v3;

import "google/protobuf/any.proto";
import "google/protobuf/duration.proto";
import "google/rpc/status.proto";
import "envoy/config/core/v3/base.proto";

message DiscoveryRequest {
  string version_info = 1;
  envoy.config.core.v3.Node node = 2;
  repeated string resource_names = 3;
  string type_url = 4;
  string response_nonce = 5;
  google.rpc.Status error_detail = 6;
}

message DiscoveryResponse {
  string version_info = 1;
  repeated google.protobuf.Any resources = 2;
  bool canary = 3;
  string type_url = 4;
  string nonce = 5;
  envoy.config.core.v3.ControlPlane control_plane = 6;
}

message DeltaDiscoveryRequest {
  envoy.config.core.v3.Node node = 1;
  string type_url = 2;
  repeated string resource_names_subscribe = 3;
  repeated string resource_names_unsubscribe = 4;
  map<string, string> initial_resource_versions = 5;
  string response_nonce = 6;
  google.rpc.Status error_detail = 7;
}

message DeltaDiscoveryResponse {
  string system_version_info = 1;
  repeated Resource resources = 2;
  string type_url = 4;
  repeated string removed_resources = 6;
  string nonce = 5;
  envoy.config.core.v3.ControlPlane control_plane = 7;
}

message Resource {
  string name = 3;
  repeated string aliases = 4;
  string version = 1;
  google.protobuf.Any resource = 2;
  google.protobuf.Duration ttl = 6;
}

service AggregatedDiscoveryService {
  rpc StreamAggregatedResources(stream DiscoveryRequest) returns (stream DiscoveryResponse);
  rpc DeltaAggregatedResources(stream DeltaDiscoveryRequest) returns (stream DeltaDiscoveryResponse);
}
`;
