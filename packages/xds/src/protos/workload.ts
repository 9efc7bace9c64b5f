/**
 * Istio's workload API (package istio.workload), written from the published field numbers so that a
 * real ztunnel can read what we send and we can read a real istiod. Resource type URL:
 * type.googleapis.com/istio.workload.Address.
 */
export const ISTIO_WORKLOAD_PROTO = `syntax = "proto3";
package istio.workload;

import "google/protobuf/any.proto";
import "google/protobuf/wrappers.proto";

message Address {
  oneof type {
    Workload workload = 1;
    Service service = 2;
  }
}

message Service {
  string name = 1;
  string namespace = 2;
  string hostname = 3;
  repeated NetworkAddress addresses = 4;
  repeated Port ports = 5;
  repeated string subject_alt_names = 6;
  GatewayAddress waypoint = 7;
  LoadBalancing load_balancing = 8;
  IPFamilies ip_families = 9;
  repeated Extension extensions = 10;
  bool canonical = 11;
}

enum IPFamilies {
  AUTOMATIC = 0;
  IPV4_ONLY = 1;
  IPV6_ONLY = 2;
  DUAL = 3;
}

enum NetworkMode {
  STANDARD = 0;
  HOST_NETWORK = 1;
}

message LoadBalancing {
  enum Scope {
    UNSPECIFIED_SCOPE = 0;
    REGION = 1;
    ZONE = 2;
    SUBZONE = 3;
    NODE = 4;
    CLUSTER = 5;
    NETWORK = 6;
  }
  enum Mode {
    UNSPECIFIED_MODE = 0;
    STRICT = 1;
    FAILOVER = 2;
    PASSTHROUGH = 3;
  }
  enum HealthPolicy {
    ONLY_HEALTHY = 0;
    ALLOW_ALL = 1;
  }
  repeated Scope routing_preference = 1;
  Mode mode = 2;
  HealthPolicy health_policy = 3;
}

message Workload {
  string uid = 20;
  string name = 1;
  string namespace = 2;
  repeated bytes addresses = 3;
  string hostname = 21;
  string network = 4;
  TunnelProtocol tunnel_protocol = 5;
  string trust_domain = 6;
  string service_account = 7;
  GatewayAddress waypoint = 8;
  GatewayAddress network_gateway = 19;
  string node = 9;
  string canonical_name = 10;
  string canonical_revision = 11;
  WorkloadType workload_type = 12;
  string workload_name = 13;
  bool native_tunnel = 14;
  ApplicationTunnel application_tunnel = 23;
  map<string, PortList> services = 22;
  repeated string authorization_policies = 16;
  WorkloadStatus status = 17;
  string cluster_id = 18;
  Locality locality = 24;
  NetworkMode network_mode = 25;
  repeated Extension extensions = 26;
  google.protobuf.UInt32Value capacity = 27;
  reserved 15;
}

message Locality {
  string region = 1;
  string zone = 2;
  string subzone = 3;
}

enum WorkloadStatus {
  HEALTHY = 0;
  UNHEALTHY = 1;
}

enum WorkloadType {
  DEPLOYMENT = 0;
  CRONJOB = 1;
  POD = 2;
  JOB = 3;
}

message PortList {
  repeated Port ports = 1;
}

message Port {
  uint32 service_port = 1;
  uint32 target_port = 2;
  AppProtocol app_protocol = 3;
}

enum AppProtocol {
  UNKNOWN = 0;
  HTTP11 = 1;
  HTTP2 = 2;
  GRPC = 3;
}

enum TunnelProtocol {
  NONE = 0;
  HBONE = 1;
}

message ApplicationTunnel {
  enum Protocol {
    NONE = 0;
    PROXY = 1;
  }
  Protocol protocol = 1;
  uint32 port = 2;
}

message GatewayAddress {
  oneof destination {
    NamespacedHostname hostname = 1;
    NetworkAddress address = 2;
  }
  uint32 hbone_mtls_port = 3;
  reserved 4;
}

message NetworkAddress {
  string network = 1;
  bytes address = 2;
  // Prefix length when the address is a range; absent for a single address.
  optional uint32 length = 3;
}

message NamespacedHostname {
  string namespace = 1;
  string hostname = 2;
}

message Extension {
  string name = 1;
  google.protobuf.Any config = 2;
}
`;
