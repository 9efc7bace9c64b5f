/**
 * Istio's L4 authorization policy as ztunnel receives it (package istio.security). Resource type
 * URL: type.googleapis.com/istio.security.Authorization; resource name `<namespace>/<name>`.
 * Istio's newer sources call Rule/Clause "Group"/"Rules"; only the field numbers reach the wire.
 */
export const ISTIO_AUTHORIZATION_PROTO = `syntax = "proto3";
package istio.security;

import "google/protobuf/empty.proto";

message Authorization {
  string name = 1;
  string namespace = 2;
  Scope scope = 3;
  Action action = 4;
  repeated Rule rules = 5;
  bool dry_run = 6;
}

message Rule {
  repeated Clause clauses = 1;
}

message Clause {
  repeated Match matches = 2;
}

message Match {
  repeated StringMatch namespaces = 1;
  repeated StringMatch not_namespaces = 2;
  repeated StringMatch principals = 3;
  repeated StringMatch not_principals = 4;
  repeated Address source_ips = 5;
  repeated Address not_source_ips = 6;
  repeated Address destination_ips = 7;
  repeated Address not_destination_ips = 8;
  repeated uint32 destination_ports = 9;
  repeated uint32 not_destination_ports = 10;
  repeated ServiceAccountMatch service_accounts = 11;
  repeated ServiceAccountMatch not_service_accounts = 12;
}

message Address {
  bytes address = 1;
  uint32 length = 2;
}

message ServiceAccountMatch {
  string namespace = 1;
  string serviceAccount = 2;
}

message StringMatch {
  oneof match_type {
    string exact = 1;
    string prefix = 2;
    string suffix = 3;
    google.protobuf.Empty presence = 4;
  }
}

enum Scope {
  GLOBAL = 0;
  NAMESPACE = 1;
  WORKLOAD_SELECTOR = 2;
}

enum Action {
  ALLOW = 0;
  DENY = 1;
}
`;
