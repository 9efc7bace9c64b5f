import type protobuf from 'protobufjs';
import { lookupType } from './proto-root.js';

/** The identity a proxy announces in its first request (envoy.config.core.v3.Node). */
export interface XdsNode {
  /** E.g. Istio's `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`. */
  id: string;
  cluster?: string;
  /** google.protobuf.Struct as plain JSON. */
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; subZone?: string };
  userAgentName?: string;
  userAgentVersion?: string;
  clientFeatures?: string[];
}

/** google.rpc.Status as carried in a NACK. */
export interface RpcStatus {
  code: number;
  message: string;
}

export interface DeltaRequest {
  node?: XdsNode;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: RpcStatus;
}

export interface SotwRequest {
  versionInfo: string;
  node?: XdsNode;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: RpcStatus;
}

/** A resource as it travels: name, version and the Any's type URL and bytes. */
export interface WireResource {
  name: string;
  version: string;
  typeUrl: string;
  value: Uint8Array;
}

export interface DeltaResponse {
  systemVersionInfo: string;
  resources: WireResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}

export interface SotwResponse {
  versionInfo: string;
  /** Names are not on the wire in state-of-the-world; they are filled in by the client from the decoded resource when it can. */
  resources: { typeUrl: string; value: Uint8Array }[];
  typeUrl: string;
  nonce: string;
}

type Types = Record<'deltaRequest' | 'deltaResponse' | 'sotwRequest' | 'sotwResponse', protobuf.Type>;
let types: Types | undefined;
function t(): Types {
  types ??= {
    deltaRequest: lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
    deltaResponse: lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse'),
    sotwRequest: lookupType('envoy.service.discovery.v3.DiscoveryRequest'),
    sotwResponse: lookupType('envoy.service.discovery.v3.DiscoveryResponse'),
  };
  return types;
}

type StructValue = {
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: { fields?: Record<string, StructValue> };
  listValue?: { values?: StructValue[] };
};

function fromStructValue(v: StructValue): unknown {
  if (v.structValue !== undefined && v.structValue !== null) return fromStruct(v.structValue);
  if (v.listValue !== undefined && v.listValue !== null) return (v.listValue.values ?? []).map(fromStructValue);
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  return null;
}

function fromStruct(s: { fields?: Record<string, StructValue> }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = fromStructValue(v);
  return out;
}

function toStructValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

function toStruct(o: Record<string, unknown>): { fields: Record<string, StructValue> } {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toStructValue(v);
  return { fields };
}

interface RawNode {
  id: string;
  cluster: string;
  metadata?: { fields?: Record<string, StructValue> } | null;
  locality?: { region: string; zone: string; subZone: string } | null;
  userAgentName: string;
  userAgentVersion?: string;
  clientFeatures: string[];
}

function nodeFromRaw(n: RawNode | null | undefined): XdsNode | undefined {
  if (n === null || n === undefined) return undefined;
  const node: XdsNode = { id: n.id };
  if (n.cluster) node.cluster = n.cluster;
  if (n.metadata) node.metadata = fromStruct(n.metadata);
  if (n.locality) node.locality = { region: n.locality.region, zone: n.locality.zone, subZone: n.locality.subZone };
  if (n.userAgentName) node.userAgentName = n.userAgentName;
  if (n.userAgentVersion) node.userAgentVersion = n.userAgentVersion;
  if (n.clientFeatures.length > 0) node.clientFeatures = [...n.clientFeatures];
  return node;
}

function nodeToRaw(n: XdsNode | undefined): Record<string, unknown> | undefined {
  if (n === undefined) return undefined;
  return {
    id: n.id,
    cluster: n.cluster ?? '',
    metadata: n.metadata ? toStruct(n.metadata) : undefined,
    locality: n.locality,
    userAgentName: n.userAgentName ?? '',
    userAgentVersion: n.userAgentVersion,
    clientFeatures: n.clientFeatures ?? [],
  };
}

function statusFromRaw(s: { code: number; message: string } | null | undefined): RpcStatus | undefined {
  return s ? { code: s.code, message: s.message } : undefined;
}

// protobufjs message instances: proto3 defaults live on the prototype, so every field reads as set.
type Raw = Record<string, never> & Record<string, unknown>;

/** Throws on bytes that are not a DeltaDiscoveryRequest. */
export function decodeDeltaRequest(bytes: Uint8Array): DeltaRequest {
  const m = t().deltaRequest.decode(bytes) as unknown as Raw;
  const req: DeltaRequest = {
    typeUrl: m.typeUrl as unknown as string,
    resourceNamesSubscribe: m.resourceNamesSubscribe as unknown as string[],
    resourceNamesUnsubscribe: m.resourceNamesUnsubscribe as unknown as string[],
    initialResourceVersions: m.initialResourceVersions as unknown as Record<string, string>,
    responseNonce: m.responseNonce as unknown as string,
  };
  const node = nodeFromRaw(m.node as unknown as RawNode | null);
  if (node) req.node = node;
  const status = statusFromRaw(m.errorDetail as unknown as RpcStatus | null);
  if (status) req.errorDetail = status;
  return req;
}

export function encodeDeltaRequest(req: Partial<DeltaRequest> & { typeUrl: string }): Buffer {
  const type = t().deltaRequest;
  return Buffer.from(type.encode(type.fromObject({ ...req, node: nodeToRaw(req.node) })).finish());
}

/** Throws on bytes that are not a DiscoveryRequest. */
export function decodeSotwRequest(bytes: Uint8Array): SotwRequest {
  const m = t().sotwRequest.decode(bytes) as unknown as Raw;
  const req: SotwRequest = {
    versionInfo: m.versionInfo as unknown as string,
    resourceNames: m.resourceNames as unknown as string[],
    typeUrl: m.typeUrl as unknown as string,
    responseNonce: m.responseNonce as unknown as string,
  };
  const node = nodeFromRaw(m.node as unknown as RawNode | null);
  if (node) req.node = node;
  const status = statusFromRaw(m.errorDetail as unknown as RpcStatus | null);
  if (status) req.errorDetail = status;
  return req;
}

export function encodeSotwRequest(req: Partial<SotwRequest> & { typeUrl: string }): Buffer {
  const type = t().sotwRequest;
  return Buffer.from(type.encode(type.fromObject({ ...req, node: nodeToRaw(req.node) })).finish());
}

interface RawAny {
  typeUrl: string;
  value: Uint8Array;
}

export function decodeDeltaResponse(bytes: Uint8Array): DeltaResponse {
  const m = t().deltaResponse.decode(bytes) as unknown as Raw;
  const resources = (m.resources as unknown as { name: string; version: string; resource: RawAny | null }[]).map(
    (r) => ({
      name: r.name,
      version: r.version,
      typeUrl: r.resource?.typeUrl ?? '',
      value: r.resource?.value ?? new Uint8Array(0),
    }),
  );
  return {
    systemVersionInfo: m.systemVersionInfo as unknown as string,
    resources,
    typeUrl: m.typeUrl as unknown as string,
    removedResources: m.removedResources as unknown as string[],
    nonce: m.nonce as unknown as string,
  };
}

export function decodeSotwResponse(bytes: Uint8Array): SotwResponse {
  const m = t().sotwResponse.decode(bytes) as unknown as Raw;
  return {
    versionInfo: m.versionInfo as unknown as string,
    resources: (m.resources as unknown as RawAny[]).map((a) => ({ typeUrl: a.typeUrl, value: a.value })),
    typeUrl: m.typeUrl as unknown as string,
    nonce: m.nonce as unknown as string,
  };
}

/** Full encoder for responses (the server splices cached pieces instead; this is for tests and tools). */
export function encodeDeltaResponse(res: DeltaResponse): Buffer {
  const type = t().deltaResponse;
  return Buffer.from(
    type
      .encode(
        type.fromObject({
          ...res,
          resources: res.resources.map((r) => ({
            name: r.name,
            version: r.version,
            resource: { typeUrl: r.typeUrl, value: r.value },
          })),
        }),
      )
      .finish(),
  );
}
