import type * as grpc from '@grpc/grpc-js';

/** gRPC method paths of envoy.service.discovery.v3.AggregatedDiscoveryService. */
export const SOTW_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const DELTA_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

const identity = (b: Buffer): Buffer => b;

/**
 * The ADS service for grpc-js with byte-level (de)serialisation: messages cross grpc-js as
 * Buffers, and this package encodes and decodes them with protobufjs itself. That lets the server
 * splice pre-encoded resources into responses, and turn an undecodable request into a clean
 * protocol error instead of a grpc-js internal error.
 */
export const ADS_SERVICE_DEFINITION: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: SOTW_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'streamAggregatedResources',
  },
  DeltaAggregatedResources: {
    path: DELTA_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: 'deltaAggregatedResources',
  },
};
