import type { Authorization, AuthorizationAddress, AuthorizationInput, StringMatch } from './authorization-types.js';
import { lookupType } from './proto-root.js';
import { defineResourceType, type ResourceType, TYPE_URL_PREFIX } from './resource-type.js';
import { TypeRegistry } from './type-registry.js';
import type {
  Address,
  AddressInput,
  GatewayAddress,
  NetworkAddress,
  Port,
  Service,
  Workload,
} from './workload-types.js';

export const ADDRESS_TYPE_URL = `${TYPE_URL_PREFIX}istio.workload.Address`;
export const AUTHORIZATION_TYPE_URL = `${TYPE_URL_PREFIX}istio.security.Authorization`;

const MAX_PORT = 65535;

function checkIp(where: string, bytes: Uint8Array, problems: string[]): void {
  if (bytes.length !== 4 && bytes.length !== 16) {
    problems.push(`${where}: an IP address has 4 or 16 bytes, got ${bytes.length}`);
  }
}

function checkPort(where: string, port: number, problems: string[]): void {
  if (port > MAX_PORT) problems.push(`${where}: port ${port} is out of range 0..${MAX_PORT}`);
}

function checkNetworkAddress(where: string, a: NetworkAddress, problems: string[]): void {
  checkIp(`${where}.address`, a.address, problems);
}

function checkGateway(where: string, g: GatewayAddress | null, problems: string[]): void {
  if (g === null) return;
  if (g.destination === undefined) problems.push(`${where}: a gateway needs a hostname or an address`);
  if (g.address) checkNetworkAddress(`${where}.address`, g.address, problems);
  if (g.hostname && (g.hostname.hostname === '' || g.hostname.namespace === '')) {
    problems.push(`${where}.hostname: namespace and hostname are required`);
  }
  checkPort(`${where}.hboneMtlsPort`, g.hboneMtlsPort, problems);
}

function checkPorts(where: string, ports: Port[], problems: string[]): void {
  ports.forEach((p, i) => {
    checkPort(`${where}[${i}].servicePort`, p.servicePort, problems);
    checkPort(`${where}[${i}].targetPort`, p.targetPort, problems);
  });
}

function validateWorkload(name: string, w: Workload): string[] {
  const problems: string[] = [];
  if (w.uid === '') problems.push('workload.uid is required (it is the resource name)');
  else if (w.uid !== name) problems.push(`workload.uid "${w.uid}" differs from the resource name "${name}"`);
  if (w.addresses.length === 0 && w.hostname === '') {
    problems.push('a workload needs at least one address or a hostname');
  }
  w.addresses.forEach((a, i) => {
    checkIp(`workload.addresses[${i}]`, a, problems);
  });
  checkGateway('workload.waypoint', w.waypoint, problems);
  checkGateway('workload.networkGateway', w.networkGateway, problems);
  for (const [key, list] of Object.entries(w.services)) {
    if (!/^[^/]+\/[^/]+$/.test(key)) problems.push(`workload.services key "${key}" is not <namespace>/<hostname>`);
    checkPorts(`workload.services["${key}"].ports`, list.ports, problems);
  }
  if (w.applicationTunnel) checkPort('workload.applicationTunnel.port', w.applicationTunnel.port, problems);
  return problems;
}

function validateService(name: string, s: Service): string[] {
  const problems: string[] = [];
  if (s.namespace === '' || s.hostname === '') problems.push('service.namespace and service.hostname are required');
  else if (name !== `${s.namespace}/${s.hostname}`) {
    problems.push(`a service's resource name must be "${s.namespace}/${s.hostname}", got "${name}"`);
  }
  s.addresses.forEach((a, i) => {
    checkNetworkAddress(`service.addresses[${i}]`, a, problems);
  });
  checkPorts('service.ports', s.ports, problems);
  checkGateway('service.waypoint', s.waypoint, problems);
  return problems;
}

/** Problems with an `istio.workload.Address` resource named `name` (empty when valid). */
export function validateAddress(name: string, a: Address): string[] {
  if (a.type === 'workload') return validateWorkload(name, a.workload);
  if (a.type === 'service') return validateService(name, a.service);
  return ['an Address must hold a workload or a service'];
}

function checkPrefix(where: string, p: AuthorizationAddress, problems: string[]): void {
  checkIp(where, p.address, problems);
  const max = p.address.length * 8;
  if ((p.address.length === 4 || p.address.length === 16) && p.length > max) {
    problems.push(`${where}: prefix length ${p.length} exceeds ${max}`);
  }
}

function checkStringMatches(where: string, list: StringMatch[], problems: string[]): void {
  list.forEach((m, i) => {
    if (m.matchType === undefined)
      problems.push(`${where}[${i}]: a string match needs exact, prefix, suffix or presence`);
  });
}

/** Problems with an `istio.security.Authorization` resource named `name` (empty when valid). */
export function validateAuthorization(name: string, p: Authorization): string[] {
  const problems: string[] = [];
  if (p.name === '' || p.namespace === '') problems.push('authorization.name and authorization.namespace are required');
  else if (name !== `${p.namespace}/${p.name}`) {
    problems.push(`an authorization's resource name must be "${p.namespace}/${p.name}", got "${name}"`);
  }
  p.rules.forEach((rule, r) => {
    rule.clauses.forEach((clause, c) => {
      clause.matches.forEach((m, k) => {
        const at = `rules[${r}].clauses[${c}].matches[${k}]`;
        for (const key of ['namespaces', 'notNamespaces', 'principals', 'notPrincipals'] as const) {
          checkStringMatches(`${at}.${key}`, m[key], problems);
        }
        for (const key of ['sourceIps', 'notSourceIps', 'destinationIps', 'notDestinationIps'] as const) {
          m[key].forEach((a, i) => {
            checkPrefix(`${at}.${key}[${i}]`, a, problems);
          });
        }
        for (const key of ['destinationPorts', 'notDestinationPorts'] as const) {
          for (const port of m[key]) checkPort(`${at}.${key}`, port, problems);
        }
      });
    });
  });
  return problems;
}

let addressType: ResourceType<Address, AddressInput> | undefined;
let authorizationType: ResourceType<Authorization, AuthorizationInput> | undefined;

/** `type.googleapis.com/istio.workload.Address` (Workload or Service). */
export function addressResourceType(): ResourceType<Address, AddressInput> {
  addressType ??= defineResourceType<Address, AddressInput>({
    typeUrl: ADDRESS_TYPE_URL,
    messageType: lookupType('istio.workload.Address'),
    validate: validateAddress,
    nameOf: (a) => (a.type === 'workload' ? a.workload.uid : `${a.service.namespace}/${a.service.hostname}`),
  });
  return addressType;
}

/** `type.googleapis.com/istio.security.Authorization`. */
export function authorizationResourceType(): ResourceType<Authorization, AuthorizationInput> {
  authorizationType ??= defineResourceType<Authorization, AuthorizationInput>({
    typeUrl: AUTHORIZATION_TYPE_URL,
    messageType: lookupType('istio.security.Authorization'),
    validate: validateAuthorization,
    nameOf: (p) => `${p.namespace}/${p.name}`,
  });
  return authorizationType;
}

/** A new registry that knows Istio's two ambient types; register your own on top. */
export function createIstioRegistry(): TypeRegistry {
  return new TypeRegistry().register(addressResourceType()).register(authorizationResourceType());
}
