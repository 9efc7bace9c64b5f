import protobuf from 'protobufjs';

/**
 * Istio's CA API (package istio.v1.auth), written from the field numbers in Istio's public API so that
 * Istio's own agents can talk to this CA and ours to istiod. Embedded as text so no file paths are needed
 * at run time; the same text ships as proto/istio/v1/auth/ca.proto for reference.
 */
export const CA_PROTO = `syntax = "proto3";

package istio.v1.auth;

import "google/protobuf/struct.proto";

// Certificate request: a PEM CSR, the requested lifetime in seconds (0: the CA's default) and optional
// metadata. A node proxy asking on behalf of a workload sets metadata["ImpersonatedIdentity"].
message IstioCertificateRequest {
  string csr = 1;
  int64 validity_duration = 3;
  google.protobuf.Struct metadata = 4;
}

// Certificate chain, leaf first; the last element holds the root(s): the trust bundle.
message IstioCertificateResponse {
  repeated string cert_chain = 1;
}

service IstioCertificateService {
  rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse) {}
}
`;

export const SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';
export const CREATE_CERTIFICATE_PATH = `/${SERVICE_NAME}/CreateCertificate`;
/** The metadata key a node proxy uses to ask for a workload's certificate. */
export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

export interface CertificateRequestMessage {
  csr: string;
  /** Seconds; 0 means the CA's default. */
  validityDuration: number;
  /** String-valued entries of the metadata Struct (other value kinds are kept out). */
  metadata: Record<string, string>;
}

const root = new protobuf.Root();
// google.protobuf.Struct exactly as protobuf defines it (protobufjs ships the well-known types).
root.addJSON((protobuf.common.get('google/protobuf/struct.proto') as protobuf.INamespace).nested ?? {});
protobuf.parse(CA_PROTO, root, { keepCase: true });
root.resolveAll();

const RequestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');

interface StructValue {
  stringValue?: string;
}

export function encodeRequest(req: CertificateRequestMessage): Buffer {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(req.metadata)) fields[k] = { stringValue: v };
  const msg = RequestType.fromObject({
    csr: req.csr,
    validity_duration: req.validityDuration,
    ...(Object.keys(fields).length ? { metadata: { fields } } : {}),
  });
  return Buffer.from(RequestType.encode(msg).finish());
}

/** Throws on malformed bytes (the server turns that into INVALID_ARGUMENT). */
export function decodeRequest(bytes: Uint8Array): CertificateRequestMessage {
  const obj = RequestType.toObject(RequestType.decode(bytes), { longs: Number, defaults: true }) as {
    csr: string;
    validity_duration: number;
    metadata?: { fields?: Record<string, StructValue> };
  };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj.metadata?.fields ?? {})) {
    if (typeof v?.stringValue === 'string') metadata[k] = v.stringValue;
  }
  return { csr: obj.csr, validityDuration: obj.validity_duration, metadata };
}

export function encodeResponse(certChain: string[]): Buffer {
  return Buffer.from(ResponseType.encode(ResponseType.fromObject({ cert_chain: certChain })).finish());
}

export function decodeResponse(bytes: Uint8Array): string[] {
  const obj = ResponseType.toObject(ResponseType.decode(bytes), { defaults: true }) as { cert_chain: string[] };
  return obj.cert_chain;
}
