import type { ServicePort } from './config-object.js';
import type { PortResource } from './resources.js';

/**
 * The workload API's `Port.app_protocol` for a Kubernetes Service port, read from its `appProtocol` the way
 * Istio selects a port's protocol: case-insensitive; Kubernetes' `kubernetes.io/h2c` is HTTP/2 and
 * `kubernetes.io/ws` (WebSocket over cleartext) HTTP/1.1; otherwise the part before the first `-` names the
 * protocol (`http`, `http2`, `grpc`), except `grpc-web`. Anything else — TLS, TCP, `kubernetes.io/wss`,
 * custom names, UDP ports, or no appProtocol — is left unknown (the field is not sent). The port name is
 * not consulted: istiod does not derive app_protocol from it for ambient either.
 */
export function appProtocolOf(port: Pick<ServicePort, 'appProtocol' | 'protocol'>): PortResource['appProtocol'] {
  if (port.appProtocol === undefined || port.protocol === 'UDP') return undefined;
  const value = port.appProtocol.toLowerCase();
  if (value === 'kubernetes.io/h2c') return 'HTTP2';
  if (value === 'kubernetes.io/ws') return 'HTTP11';
  if (value.startsWith('grpc-web')) return undefined;
  const dash = value.indexOf('-');
  switch (dash < 0 ? value : value.slice(0, dash)) {
    case 'http':
      return 'HTTP11';
    case 'http2':
      return 'HTTP2';
    case 'grpc':
      return 'GRPC';
    default:
      return undefined;
  }
}
