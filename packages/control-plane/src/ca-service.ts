import {
  type AuthenticatedCaller,
  type Authenticator,
  CaError,
  type CallContext,
  type CertificateAuthority,
  CREATE_CERTIFICATE_PATH,
  IMPERSONATED_IDENTITY,
  isCaError,
} from '@ambient-ts/ca';
import { SpiffeId } from '@ambient-ts/identity';
import { type Server, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';

/**
 * Istio's CA service (`istio.v1.auth.IstioCertificateService/CreateCertificate`) added to a grpc-js server
 * the control plane shares with xDS, so proxies reach both on one port.
 *
 * Why here and not @ambient-ts/ca's CaServer: CaServer owns its grpc.Server and has no way to add its
 * service to someone else's. The policy is the same: authenticate (bootstrap token or mesh certificate),
 * then the identity is the caller's own, unless a node proxy impersonates a workload its node runs.
 */
export interface CaServiceOptions {
  readonly ca: CertificateAuthority;
  /** Tried in order; the first that recognises the call's credential decides. */
  readonly authenticators: readonly Authenticator[];
  /** May this caller (authenticated with a node) obtain `identity`'s certificate? */
  readonly isWorkloadOnNode: (node: string, identity: SpiffeId) => boolean;
  /** Calls whose `clusterid` metadata names another cluster are refused. */
  readonly clusterId?: string;
  readonly onIssued?: (e: { identity: string; caller: string; authenticator: string; notAfter: Date }) => void;
  readonly onRefused?: (e: { grpcCode: number; message: string; peer: string }) => void;
}

interface CertificateRequest {
  csr: string;
  validityDuration: number;
  metadata: Record<string, string>;
}

const GRPC_CODE: Record<string, number> = {
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_PERMISSION_DENIED: status.PERMISSION_DENIED,
  ERR_CSR_INVALID: status.INVALID_ARGUMENT,
  ERR_TTL_INVALID: status.INVALID_ARGUMENT,
  ERR_IDENTITY_INVALID: status.INVALID_ARGUMENT,
  ERR_CLOSED: status.UNAVAILABLE,
};

export function addCaService(server: Server, options: CaServiceOptions): void {
  server.addService(
    {
      CreateCertificate: {
        path: CREATE_CERTIFICATE_PATH,
        requestStream: false,
        responseStream: false,
        originalName: 'createCertificate',
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: (b: Buffer): CertificateRequest | { invalid: string } => {
          try {
            return decodeRequest(b);
          } catch (err) {
            return { invalid: (err as Error).message };
          }
        },
        responseSerialize: (chain: string[]) => encodeResponse(chain),
        responseDeserialize: () => [],
      },
    },
    {
      CreateCertificate: (
        call: ServerUnaryCall<CertificateRequest | { invalid: string }, string[]>,
        cb: sendUnaryData<string[]>,
      ) => {
        void handle(options, call, cb);
      },
    },
  );
}

async function handle(
  options: CaServiceOptions,
  call: ServerUnaryCall<CertificateRequest | { invalid: string }, string[]>,
  cb: sendUnaryData<string[]>,
): Promise<void> {
  const peerCertificate = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  const ctx: CallContext = {
    metadata: (name) => {
      const v = call.metadata.get(name)[0];
      return v === undefined ? undefined : String(v);
    },
    peer: call.getPeer(),
    ...(peerCertificate ? { peerCertificate } : {}),
  };
  try {
    const req = call.request;
    if ('invalid' in req)
      throw new CaError('ERR_CSR_INVALID', `request is not an IstioCertificateRequest: ${req.invalid}`);
    const clusterId = ctx.metadata('clusterid');
    if (options.clusterId && clusterId && clusterId !== options.clusterId) {
      throw new CaError(
        'ERR_PERMISSION_DENIED',
        `cluster ${JSON.stringify(clusterId)} is not served here (this is ${options.clusterId})`,
      );
    }
    let caller: AuthenticatedCaller | undefined;
    for (const a of options.authenticators) {
      caller = await a.authenticate(ctx);
      if (caller) break;
    }
    if (!caller) {
      throw new CaError(
        'ERR_UNAUTHENTICATED',
        'no credentials: send "authorization: Bearer <token>" metadata or a mesh client certificate',
      );
    }
    const identity = authorize(options, caller, req);
    if (!Number.isSafeInteger(req.validityDuration) || req.validityDuration < 0) {
      throw new CaError(
        'ERR_TTL_INVALID',
        `validity_duration must be a non-negative number of seconds, got ${req.validityDuration}`,
      );
    }
    const issued = await options.ca.sign(req.csr, {
      identity,
      ...(req.validityDuration > 0 ? { ttl: req.validityDuration * 1000 } : {}),
    });
    cb(null, issued.certChain);
    options.onIssued?.({
      identity: issued.identity,
      caller: caller.identity.toString(),
      authenticator: caller.authenticator,
      notAfter: issued.notAfter,
    });
  } catch (err) {
    const grpcCode = (isCaError(err) && GRPC_CODE[err.code]) || status.INTERNAL;
    // Unexpected failures are not described to the caller: they may carry internal detail.
    const message =
      grpcCode === status.INTERNAL
        ? 'the CA failed to issue the certificate; see the control plane logs'
        : (err as Error).message;
    cb({ code: grpcCode, details: message, name: 'CaError', message });
    options.onRefused?.({ grpcCode, message, peer: ctx.peer });
  }
}

/** The identity to sign: the caller's own, or (node proxies only) a workload on the caller's node. */
function authorize(options: CaServiceOptions, caller: AuthenticatedCaller, req: CertificateRequest): SpiffeId {
  const wanted = req.metadata[IMPERSONATED_IDENTITY];
  if (wanted === undefined || wanted === '' || wanted === caller.identity.toString()) return caller.identity;
  const who = caller.identity.toString();
  if (!caller.node) {
    throw new CaError(
      'ERR_PERMISSION_DENIED',
      `${who} may obtain only its own certificate: it is not a node proxy (ztunnel) token`,
    );
  }
  let target: SpiffeId;
  try {
    target = SpiffeId.parse(wanted);
  } catch (err) {
    throw new CaError('ERR_IDENTITY_INVALID', `${IMPERSONATED_IDENTITY}: ${(err as Error).message}`, { cause: err });
  }
  if (!options.isWorkloadOnNode(caller.node, target)) {
    throw new CaError(
      'ERR_PERMISSION_DENIED',
      `no workload with identity ${target} runs on node ${caller.node}, so ${who} may not obtain its certificate`,
    );
  }
  return target;
}

// --- protobuf wire format of the two messages (small enough to read and write directly) ---

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++] as number;
      if (shift < 53) result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error('truncated field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wireType}`);
    if (this.pos > this.buf.length) throw new Error('truncated field');
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** IstioCertificateRequest { string csr = 1; int64 validity_duration = 3; google.protobuf.Struct metadata = 4; } */
export function decodeRequest(buf: Uint8Array): CertificateRequest {
  const r = new Reader(buf);
  const req: CertificateRequest = { csr: '', validityDuration: 0, metadata: {} };
  while (!r.done) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) req.csr = utf8.decode(r.bytes());
    else if (field === 3 && wt === 0) req.validityDuration = r.varint();
    else if (field === 4 && wt === 2) decodeStruct(r.bytes(), req.metadata);
    else r.skip(wt);
  }
  return req;
}

/** Struct { map<string, Value> fields = 1 }; only string values are kept (Value.string_value = 3). */
function decodeStruct(buf: Uint8Array, out: Record<string, string>): void {
  const r = new Reader(buf);
  while (!r.done) {
    const tag = r.varint();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const entry = new Reader(r.bytes());
    let key = '';
    let value: string | undefined;
    while (!entry.done) {
      const t = entry.varint();
      if (t === 0x0a) key = utf8.decode(entry.bytes());
      else if (t === 0x12) {
        const v = new Reader(entry.bytes());
        while (!v.done) {
          const vt = v.varint();
          if (vt === 0x1a) value = utf8.decode(v.bytes());
          else v.skip(vt & 7);
        }
      } else entry.skip(t & 7);
    }
    if (value !== undefined) out[key] = value;
  }
}

/** IstioCertificateResponse { repeated string cert_chain = 1; } */
export function encodeResponse(chain: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const pem of chain) {
    const bytes = Buffer.from(pem, 'utf8');
    parts.push(Buffer.from([0x0a]), varint(bytes.length), bytes);
  }
  return Buffer.concat(parts);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
