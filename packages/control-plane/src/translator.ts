import { isIP } from 'node:net';
import { parseIp } from '@ambient-ts/xds';
import { appProtocolOf } from './app-protocol.js';
import { type AnyConfigObject, type ConfigKind, type ConfigObject, keyOf, L7_KINDS } from './config-object.js';
import type { ConfigProblem } from './config-problem.js';
import type { ConfigChange } from './config-source.js';
import {
  ANNOTATIONS,
  canonicalService,
  LABELS,
  MESH_CONTROLLER,
  selectorMatches,
  WAYPOINT_GATEWAY_CLASS,
} from './labels.js';
import {
  convertPeerAuthentication,
  effectivePeerAuthenticationKeys,
  oldest,
  staticStrictPolicy,
} from './peer-authentication.js';
import type {
  AddressResource,
  AuthorizationResource,
  GatewayAddressResource,
  LoadBalancingResource,
  PortResource,
  ResourceDiff,
  ServiceResource,
  WorkloadResource,
} from './resources.js';
import { SelectorIndex } from './selector-index.js';

type Pod = ConfigObject<'Pod'>;
type WorkloadEntry = ConfigObject<'WorkloadEntry'>;
type WorkloadSource = Pod | WorkloadEntry;
type Service = ConfigObject<'Service'>;
type Gateway = ConfigObject<'Gateway'>;
type AuthzPolicy = ConfigObject<'AuthorizationPolicy'>;
type PeerAuth = ConfigObject<'PeerAuthentication'>;

/** Outcome of converting one AuthorizationPolicy for ztunnel. */
export interface PolicyConversion {
  /** The L4 policy, or undefined when ztunnel does not enforce this policy (targetRefs, CUSTOM, AUDIT). */
  readonly authorization?: AuthorizationResource;
  /** Why the policy is not (fully) enforced at L4; informational. */
  readonly notes?: readonly string[];
}

/** AuthorizationPolicy -> ztunnel Authorization (the @ambient-ts/authz conversion, injected). */
export type PolicyConverter = (policy: AuthzPolicy, rootNamespace: string) => PolicyConversion;

export interface TranslatorOptions {
  /** Default `Kubernetes`, Istio's default cluster id. */
  readonly clusterId?: string;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** DNS suffix of service hostnames, default `cluster.local`. */
  readonly domainSuffix?: string;
  /** Policies here apply mesh-wide; default `istio-system`. */
  readonly rootNamespace?: string;
  /**
   * Whether workloads are in the ambient mesh (tunnel protocol HBONE) when neither they nor their
   * namespace say so with `istio.io/dataplane-mode`. Default `ambient`: every workload of the embedded mesh.
   */
  readonly defaultDataplaneMode?: 'ambient' | 'none';
  readonly convertPolicy?: PolicyConverter;
}

interface WaypointRequest {
  /** `<ns>/<name>` of the Gateway asked for. */
  readonly key: string;
  /** Which object carries the label (the workload/service itself, or its namespace). */
  readonly from: 'object' | 'namespace';
}

interface Placement {
  readonly node: string;
  readonly identity: string;
  readonly namespace: string;
  readonly policies: readonly string[];
}

interface Entry<T> {
  resource: T;
  json: string;
}

const NO_NAMES: ReadonlySet<string> = new Set();

/**
 * Translates the configuration objects into the resources ztunnels and waypoints are served, the way
 * istiod's ambient index builds them. Incremental: {@link apply} recomputes only the resources that depend
 * on the changed objects and returns only what changed.
 */
export class Translator {
  readonly clusterId: string;
  readonly trustDomain: string;
  readonly domainSuffix: string;
  readonly rootNamespace: string;
  readonly #defaultMode: 'ambient' | 'none';
  readonly #convert: PolicyConverter | undefined;

  readonly #namespaces = new Map<string, ConfigObject<'Namespace'>>();
  readonly #services = new Map<string, Service>();
  readonly #servicesByNs = new Map<string, Set<string>>();
  readonly #workloads = new Map<string, WorkloadSource>();
  readonly #workloadsByNs = new Map<string, Set<string>>();
  readonly #gateways = new Map<string, Gateway>();
  readonly #policies = new Map<string, AuthzPolicy>();
  /** Selector-scoped policies per namespace (the root namespace's apply everywhere). */
  readonly #selectorPoliciesByNs = new Map<string, Set<string>>();
  readonly #peerAuths = new Map<string, PeerAuth>();
  readonly #peerAuthsByNs = new Map<string, Set<string>>();
  readonly #l7 = new Map<string, AnyConfigObject>();
  /** Services (non-empty selectors) and selector policies, findable from a workload's labels. */
  readonly #serviceSelectors = new SelectorIndex();
  readonly #policySelectors = new SelectorIndex();

  /** Object key -> the waypoint it asked for, and the reverse index to find dependants of a Gateway. */
  readonly #waypointRequests = new Map<string, WaypointRequest>();
  readonly #waypointDependants = new Map<string, Set<string>>();
  /** Service key -> keys of the workloads it selects (for service-selects-nothing). */
  readonly #serviceMembers = new Map<string, Set<string>>();
  readonly #workloadServices = new Map<string, Set<string>>();
  /** node -> SPIFFE identity -> number of workloads with it on that node (CA node authorization). */
  readonly #identitiesByNode = new Map<string, Map<string, number>>();
  readonly #workloadPlacement = new Map<string, Placement>();
  /** node -> namespace / policy name -> number of workloads there (what a node's ztunnel must enforce). */
  readonly #namespacesByNode = new Map<string, Map<string, number>>();
  readonly #policiesByNode = new Map<string, Map<string, number>>();
  #nodeViewsChanged = false;
  /** Problems found while translating, per object key. */
  readonly #problems = new Map<string, ConfigProblem[]>();

  readonly #addresses = new Map<string, Entry<AddressResource>>();
  readonly #authorizations = new Map<string, Entry<AuthorizationResource>>();
  /** Object key -> the resource name it produced (a Pod's uid, a Service's ns/hostname, a policy's ns/name). */
  readonly #resourceNames = new Map<string, string>();
  readonly #peerAuthResourceNames = new Set<string>();

  constructor(options: TranslatorOptions = {}) {
    this.clusterId = options.clusterId ?? 'Kubernetes';
    this.trustDomain = options.trustDomain ?? 'cluster.local';
    this.domainSuffix = options.domainSuffix ?? 'cluster.local';
    this.rootNamespace = options.rootNamespace ?? 'istio-system';
    this.#defaultMode = options.defaultDataplaneMode ?? 'ambient';
    this.#convert = options.convertPolicy;
  }

  /** Every served Address, by resource name. */
  addresses(): ReadonlyMap<string, AddressResource> {
    return mapValues(this.#addresses);
  }

  /** Every served Authorization, by resource name. */
  authorizations(): ReadonlyMap<string, AuthorizationResource> {
    return mapValues(this.#authorizations);
  }

  /** Objects of the L7 kinds, kept for waypoints. */
  l7Objects(kind?: ConfigKind): AnyConfigObject[] {
    const all = [...this.#l7.values()];
    return kind ? all.filter((o) => o.kind === kind) : all;
  }

  /** Warnings found while translating (services selecting nothing, waypoints that cannot be used). */
  problems(): ConfigProblem[] {
    const out: ConfigProblem[] = [];
    for (const list of this.#problems.values()) out.push(...list);
    return out;
  }

  /** Does a workload with this SPIFFE identity run on `node`? (The CA's node authorization asks this.) */
  isWorkloadOnNode(node: string, identity: string): boolean {
    return (this.#identitiesByNode.get(node)?.get(identity) ?? 0) > 0;
  }

  /**
   * Whether the ztunnel of `node` needs this Authorization: mesh-wide ones always, namespace ones when the
   * node runs a workload of that namespace, selector ones when a workload on the node lists it.
   */
  isPolicyNeededOnNode(node: string, policy: { name: string; namespace: string; scope: string }): boolean {
    if (policy.scope === 'GLOBAL') return true;
    if (policy.scope === 'NAMESPACE') return (this.#namespacesByNode.get(node)?.get(policy.namespace) ?? 0) > 0;
    return (this.#policiesByNode.get(node)?.get(`${policy.namespace}/${policy.name}`) ?? 0) > 0;
  }

  /** True (once) when some node's set of needed policies changed since the last call. */
  takeNodeViewChange(): boolean {
    const changed = this.#nodeViewsChanged;
    this.#nodeViewsChanged = false;
    return changed;
  }

  /** The identities of the workloads on `node`. */
  identitiesOnNode(node: string): string[] {
    return [...(this.#identitiesByNode.get(node)?.keys() ?? [])];
  }

  /** Applies one batch of changes; returns exactly the resources that changed or disappeared. */
  apply(changes: readonly ConfigChange[]): ResourceDiff {
    const dirtyWorkloads = new Set<string>();
    const dirtyServices = new Set<string>();
    const dirtyPolicies = new Set<string>();
    let peerAuthChanged = false;

    const markNamespace = (ns: string) => {
      for (const k of this.#workloadsByNs.get(ns) ?? NO_NAMES) dirtyWorkloads.add(k);
      for (const k of this.#servicesByNs.get(ns) ?? NO_NAMES) dirtyServices.add(k);
    };
    // Selector-based marking is deferred: when a batch already dirties every workload (a cold start),
    // testing each selector against each workload would be wasted work.
    const selectorMarks: Array<{ ns: string; selector: Readonly<Record<string, string>> }> = [];
    const markSelected = (ns: string, selector: Readonly<Record<string, string>> | undefined) => {
      if (selector) selectorMarks.push({ ns, selector });
    };
    const markServiceSelected = (svc: Service | undefined) => {
      const sel = svc?.spec.selector;
      if (svc && sel && Object.keys(sel).length > 0) selectorMarks.push({ ns: svc.metadata.namespace, selector: sel });
    };
    const applyMarks = () => {
      for (const { ns, selector } of selectorMarks) {
        if (dirtyWorkloads.size === this.#workloads.size) return;
        const namespaces = ns === this.rootNamespace ? [...this.#workloadsByNs.keys()] : [ns];
        for (const n of namespaces) {
          for (const k of this.#workloadsByNs.get(n) ?? NO_NAMES) {
            if (dirtyWorkloads.has(k)) continue;
            const w = this.#workloads.get(k);
            if (w && selectorMatches(selector, workloadLabels(w))) dirtyWorkloads.add(k);
          }
        }
      }
    };

    for (const change of changes) {
      const obj = change.type === 'deleted' ? undefined : change.object;
      const prev = change.type === 'added' ? undefined : change.previous;
      const key = change.key;
      const ns = change.object.metadata.namespace;
      switch (change.object.kind) {
        case 'Namespace': {
          const name = change.object.metadata.name;
          if (obj) this.#namespaces.set(name, obj as ConfigObject<'Namespace'>);
          else this.#namespaces.delete(name);
          markNamespace(name);
          // A waypoint may admit namespaces by label: its dependants elsewhere may change too.
          for (const gw of this.#gateways.values()) {
            if (gw.spec.listeners.some((l) => l.allowedNamespaces.from === 'Selector')) {
              for (const k of this.#waypointDependants.get(keyNs(gw)) ?? NO_NAMES) {
                (k.startsWith('Service/') ? dirtyServices : dirtyWorkloads).add(k);
              }
            }
          }
          break;
        }
        case 'Service': {
          markServiceSelected(prev as Service | undefined);
          setIndexed(this.#services, this.#servicesByNs, key, ns, obj as Service | undefined);
          this.#serviceSelectors.set(key, ns, (obj as Service | undefined)?.spec.selector);
          markServiceSelected(obj as Service | undefined);
          dirtyServices.add(key);
          break;
        }
        case 'Pod':
        case 'WorkloadEntry':
          setIndexed(this.#workloads, this.#workloadsByNs, key, ns, obj as WorkloadSource | undefined);
          dirtyWorkloads.add(key);
          break;
        case 'Gateway': {
          const gwKey = `${ns}/${change.object.metadata.name}`;
          if (obj) this.#gateways.set(gwKey, obj as Gateway);
          else this.#gateways.delete(gwKey);
          for (const k of this.#waypointDependants.get(gwKey) ?? NO_NAMES) {
            (k.startsWith('Service/') ? dirtyServices : dirtyWorkloads).add(k);
          }
          break;
        }
        case 'AuthorizationPolicy': {
          const p = prev as AuthzPolicy | undefined;
          const o = obj as AuthzPolicy | undefined;
          markSelected(ns, p?.spec.selector);
          this.#policies.delete(key);
          removeIndexed(this.#selectorPoliciesByNs, ns, key);
          this.#policySelectors.delete(key);
          if (o) {
            this.#policies.set(key, o);
            if (o.spec.selector) {
              addIndexed(this.#selectorPoliciesByNs, ns, key);
              this.#policySelectors.set(key, ns, o.spec.selector);
            }
          }
          markSelected(ns, o?.spec.selector);
          dirtyPolicies.add(key);
          break;
        }
        case 'PeerAuthentication':
          setIndexed(this.#peerAuths, this.#peerAuthsByNs, key, ns, obj as PeerAuth | undefined);
          if (ns === this.rootNamespace) for (const n of this.#workloadsByNs.keys()) markNamespace(n);
          else markNamespace(ns);
          peerAuthChanged = true;
          break;
        default:
          if (L7_KINDS.has(change.object.kind)) {
            if (obj) this.#l7.set(key, obj);
            else this.#l7.delete(key);
          }
      }
    }

    applyMarks();
    const addrUpserts = new Map<string, AddressResource>();
    const addrRemoved: string[] = [];
    const authzUpserts = new Map<string, AuthorizationResource>();
    const authzRemoved: string[] = [];

    // Policies first: a workload lists only the policies that are actually served.
    for (const key of dirtyPolicies) {
      const p = this.#policies.get(key);
      this.#setAuthorization(
        key,
        p ? this.#convert?.(p, this.rootNamespace).authorization : undefined,
        authzUpserts,
        authzRemoved,
      );
    }
    if (peerAuthChanged) this.#rebuildPeerAuthPolicies(authzUpserts, authzRemoved);
    for (const key of dirtyServices) {
      const svc = this.#services.get(key);
      this.#forget(key);
      this.#setAddress(key, svc ? this.#buildService(key, svc) : undefined, addrUpserts, addrRemoved);
    }
    for (const key of dirtyWorkloads) {
      const w = this.#workloads.get(key);
      this.#forget(key);
      this.#setAddress(key, w ? this.#buildWorkload(key, w) : undefined, addrUpserts, addrRemoved);
    }
    if (dirtyServices.size > 0 || dirtyWorkloads.size > 0) this.#refreshServiceProblems(dirtyServices, dirtyWorkloads);
    if (changes.some((c) => c.object.kind === 'Namespace' || c.object.kind === 'Gateway'))
      this.#refreshNamespaceProblems();

    return {
      addresses: { upserted: addrUpserts, removed: addrRemoved },
      authorizations: { upserted: authzUpserts, removed: authzRemoved },
    };
  }

  #setAddress(
    key: string,
    res: AddressResource | undefined,
    upserts: Map<string, AddressResource>,
    removed: string[],
  ): void {
    const oldName = this.#resourceNames.get(key);
    const newName = res ? addressName(res) : undefined;
    if (oldName !== undefined && oldName !== newName) {
      this.#addresses.delete(oldName);
      upserts.delete(oldName);
      removed.push(oldName);
      this.#resourceNames.delete(key);
    }
    if (!res || newName === undefined) return;
    this.#resourceNames.set(key, newName);
    const json = JSON.stringify(res);
    if (this.#addresses.get(newName)?.json === json) return;
    this.#addresses.set(newName, { resource: res, json });
    upserts.set(newName, res);
    const i = removed.indexOf(newName);
    if (i >= 0) removed.splice(i, 1);
  }

  #setAuthorization(
    key: string,
    res: AuthorizationResource | undefined,
    upserts: Map<string, AuthorizationResource>,
    removed: string[],
  ): void {
    const oldName = this.#resourceNames.get(key);
    const newName = res ? `${res.namespace}/${res.name}` : undefined;
    if (oldName !== undefined && oldName !== newName) {
      this.#authorizations.delete(oldName);
      removed.push(oldName);
      this.#resourceNames.delete(key);
    }
    if (!res || newName === undefined) return;
    this.#resourceNames.set(key, newName);
    const json = JSON.stringify(res);
    if (this.#authorizations.get(newName)?.json === json) return;
    this.#authorizations.set(newName, { resource: res, json });
    upserts.set(newName, res);
    const i = removed.indexOf(newName);
    if (i >= 0) removed.splice(i, 1);
  }

  /** Static STRICT (whenever any PeerAuthentication exists) and each port-level converted policy. */
  #rebuildPeerAuthPolicies(upserts: Map<string, AuthorizationResource>, removed: string[]): void {
    const wanted = new Map<string, AuthorizationResource>();
    if (this.#peerAuths.size > 0) {
      const strict = staticStrictPolicy(this.rootNamespace);
      wanted.set(`${strict.namespace}/${strict.name}`, strict);
    }
    const nsLevel = (ns: string) =>
      oldest(
        [...(this.#peerAuthsByNs.get(ns) ?? NO_NAMES)]
          .map((k) => this.#peerAuths.get(k) as PeerAuth)
          .filter((p) => !p.spec.selector),
      );
    const rootPolicy = nsLevel(this.rootNamespace);
    for (const pa of this.#peerAuths.values()) {
      const converted = convertPeerAuthentication(this.rootNamespace, pa, nsLevel(pa.metadata.namespace), rootPolicy);
      if (converted) wanted.set(`${converted.namespace}/${converted.name}`, converted);
    }
    for (const name of this.#peerAuthResourceNames) {
      if (!wanted.has(name)) {
        this.#authorizations.delete(name);
        removed.push(name);
        this.#peerAuthResourceNames.delete(name);
      }
    }
    for (const [name, res] of wanted) {
      this.#peerAuthResourceNames.add(name);
      const json = JSON.stringify(res);
      if (this.#authorizations.get(name)?.json === json) continue;
      this.#authorizations.set(name, { resource: res, json });
      upserts.set(name, res);
    }
  }

  #hostname(svc: Service): string {
    return `${svc.metadata.name}.${svc.metadata.namespace}.svc.${this.domainSuffix}`;
  }

  /** Drops what an object's previous translation recorded (placement, memberships, waypoint, problems). */
  #forget(key: string): void {
    this.#setPlacement(key, undefined);
    this.#setWaypointRequest(key, undefined);
    this.#problems.delete(key);
    if (key.startsWith('Pod/') || key.startsWith('WorkloadEntry/')) this.#setServices(key, new Set());
  }

  #buildService(key: string, svc: Service): AddressResource {
    const m = svc.metadata;
    const isWaypointService = m.labels[LABELS.gatewayManaged] === MESH_CONTROLLER;
    const waypoint = isWaypointService ? undefined : this.#resolveWaypoint(key, svc, 'service');
    let loadBalancing: LoadBalancingResource | null = null;
    if (svc.spec.trafficDistribution === 'PreferClose' || isWaypointService) {
      loadBalancing = { routingPreference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'], mode: 'FAILOVER' };
    }
    if (svc.spec.internalTrafficPolicy === 'Local') loadBalancing = { routingPreference: ['NODE'], mode: 'STRICT' };
    const service: ServiceResource = {
      name: m.name,
      namespace: m.namespace,
      hostname: this.#hostname(svc),
      addresses: svc.spec.clusterIPs.map((ip) => ({ network: '', address: parseIp(ip) })),
      ports: svc.spec.ports.map((p) => {
        const appProtocol = appProtocolOf(p);
        return {
          servicePort: p.port,
          targetPort: typeof p.targetPort === 'number' ? p.targetPort : 0,
          ...(appProtocol ? { appProtocol } : {}),
        };
      }),
      subjectAltNames: [],
      waypoint: waypoint ?? null,
      loadBalancing,
    };
    return { service };
  }

  #buildWorkload(key: string, w: WorkloadSource): AddressResource | undefined {
    const m = w.metadata;
    const labels = workloadLabels(w);
    let uid: string;
    let addresses: Uint8Array[];
    let workloadName: string;
    let workloadType: WorkloadResource['workloadType'] = 'POD';
    let node = '';
    let serviceAccount: string;
    let network = '';
    let locality: WorkloadResource['locality'] = null;
    let healthy = true;
    if (w.kind === 'Pod') {
      const s = w.spec;
      const phase = s.phase;
      if (s.hostNetwork || phase === 'Succeeded' || phase === 'Failed') return undefined;
      uid = `${this.clusterId}//Pod/${m.namespace}/${m.name}`;
      addresses = s.podIPs.map(parseIp);
      [workloadName, workloadType] = podWorkloadName(w);
      node = s.nodeName ?? '';
      serviceAccount = s.serviceAccountName;
      // Istio: UNHEALTHY unless the Ready condition is True. A hand-written Pod without conditions is ready.
      healthy = s.conditions === undefined || s.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
    } else {
      const s = w.spec;
      uid = `${this.clusterId}/networking.istio.io/WorkloadEntry/${m.namespace}/${m.name}`;
      addresses = [parseIp(s.address)];
      workloadName = labels[LABELS.workloadName] ?? m.name;
      node = labels[LABELS.workloadEntryNode] ?? '';
      serviceAccount = s.serviceAccount;
      network = s.network ?? '';
      if (s.locality) {
        const [region = '', zone = '', subzone = ''] = s.locality.split('/');
        locality = { region, zone, subzone };
      }
    }
    const [canonicalName, canonicalRevision] = canonicalService(labels, workloadName);

    // Services in the same namespace whose (non-empty) selector matches.
    const services: Record<string, { ports: PortResource[] }> = {};
    const memberOf = new Set<string>();
    for (const sk of this.#serviceSelectors.candidates(m.namespace, labels)) {
      const svc = this.#services.get(sk) as Service;
      const sel = svc.spec.selector;
      if (!sel || memberOf.has(sk) || !selectorMatches(sel, labels)) continue;
      memberOf.add(sk);
      const ports: PortResource[] = [];
      for (const p of svc.spec.ports) {
        let target = typeof p.targetPort === 'number' ? p.targetPort : 0;
        if (typeof p.targetPort === 'string') {
          const named = resolveNamedPort(w, p.targetPort);
          if (named === undefined) continue; // this workload does not serve that named port
          target = named;
        }
        ports.push({ servicePort: p.port, targetPort: target });
      }
      services[`${m.namespace}/${this.#hostname(svc)}`] = { ports };
    }
    this.#setServices(key, memberOf);

    // Selector-scoped policies (own namespace and root namespace) that ztunnel enforces, then PeerAuthentication.
    const policies: string[] = [];
    for (const ns of m.namespace === this.rootNamespace ? [m.namespace] : [m.namespace, this.rootNamespace]) {
      for (const pk of this.#policySelectors.candidates(ns, labels)) {
        const p = this.#policies.get(pk) as AuthzPolicy;
        if (!p.spec.selector || !selectorMatches(p.spec.selector, labels)) continue;
        const name = this.#resourceNames.get(pk);
        if (name !== undefined && this.#authorizations.has(name) && !policies.includes(name)) policies.push(name);
      }
    }
    policies.sort();
    policies.push(
      ...effectivePeerAuthenticationKeys(this.rootNamespace, this.#applicablePeerAuths(m.namespace, labels)),
    );

    const isWaypointInstance =
      labels[LABELS.gatewayName] !== undefined &&
      this.#isWaypoint(this.#gateways.get(`${m.namespace}/${labels[LABELS.gatewayName]}`));
    const waypoint = isWaypointInstance ? undefined : this.#resolveWaypoint(key, w, 'workload');

    const [tunnelProtocol, nativeTunnel] = this.#tunnel(w, labels);
    const identity = `spiffe://${this.trustDomain}/ns/${m.namespace}/sa/${serviceAccount}`;
    if (node) this.#setPlacement(key, { node, identity, namespace: m.namespace, policies });

    const workload: WorkloadResource = {
      uid,
      name: m.name,
      namespace: m.namespace,
      addresses,
      network,
      tunnelProtocol,
      trustDomain: this.trustDomain === 'cluster.local' ? '' : this.trustDomain,
      serviceAccount,
      waypoint: waypoint ?? null,
      node,
      canonicalName,
      canonicalRevision,
      workloadType,
      workloadName,
      nativeTunnel,
      services,
      authorizationPolicies: policies,
      status: healthy ? 'HEALTHY' : 'UNHEALTHY',
      clusterId: this.clusterId,
      locality,
    };
    return { workload };
  }

  #applicablePeerAuths(ns: string, labels: Readonly<Record<string, string>>): PeerAuth[] {
    const out: PeerAuth[] = [];
    for (const k of this.#peerAuthsByNs.get(this.rootNamespace) ?? NO_NAMES) {
      const p = this.#peerAuths.get(k) as PeerAuth;
      if (!p.spec.selector) out.push(p);
    }
    if (ns === this.rootNamespace) {
      for (const k of this.#peerAuthsByNs.get(ns) ?? NO_NAMES) {
        const p = this.#peerAuths.get(k) as PeerAuth;
        if (p.spec.selector && selectorMatches(p.spec.selector, labels)) out.push(p);
      }
      return out;
    }
    for (const k of this.#peerAuthsByNs.get(ns) ?? NO_NAMES) {
      const p = this.#peerAuths.get(k) as PeerAuth;
      if (!p.spec.selector || selectorMatches(p.spec.selector, labels)) out.push(p);
    }
    return out;
  }

  #tunnel(w: WorkloadSource, labels: Readonly<Record<string, string>>): ['NONE' | 'HBONE', boolean] {
    if (labels[LABELS.tunnel] === 'http') return ['HBONE', true];
    if (w.metadata.annotations[ANNOTATIONS.redirection] === 'enabled') return ['HBONE', false];
    const own = labels[LABELS.dataplaneMode];
    const nsMode = this.#namespaces.get(w.metadata.namespace)?.metadata.labels[LABELS.dataplaneMode];
    const mode = own ?? nsMode ?? this.#defaultMode;
    return [mode === 'ambient' ? 'HBONE' : 'NONE', false];
  }

  #isWaypoint(gw: Gateway | undefined): gw is Gateway {
    return (
      gw !== undefined && (gw.spec.gatewayClassName === WAYPOINT_GATEWAY_CLASS || gw.spec.statusAddresses.length > 0)
    );
  }

  /**
   * The waypoint for a workload or service: its own istio.io/use-waypoint label (`none` opts out), else its
   * namespace's; the Gateway must exist, admit the object's namespace, and carry that traffic type.
   */
  #resolveWaypoint(
    key: string,
    obj: WorkloadSource | Service,
    traffic: 'workload' | 'service',
  ): GatewayAddressResource | undefined {
    const labels = obj.kind === 'Service' ? obj.metadata.labels : workloadLabels(obj);
    const ns = obj.metadata.namespace;
    let request: WaypointRequest | undefined;
    const own = labels[LABELS.useWaypoint];
    if (own === 'none') request = undefined;
    else if (own !== undefined)
      request = { key: `${labels[LABELS.useWaypointNamespace] ?? ns}/${own}`, from: 'object' };
    else {
      const nsLabels = this.#namespaces.get(ns)?.metadata.labels;
      const nsOwn = nsLabels?.[LABELS.useWaypoint];
      if (nsOwn !== undefined && nsOwn !== 'none') {
        request = { key: `${nsLabels?.[LABELS.useWaypointNamespace] ?? ns}/${nsOwn}`, from: 'namespace' };
      }
    }
    this.#setWaypointRequest(key, request);
    if (!request) return undefined;
    const gw = this.#gateways.get(request.key);
    const problem = (reason: string) => {
      if (request?.from === 'object') this.#addProblem(key, obj, 'unresolved-reference', reason);
      return undefined;
    };
    if (!this.#isWaypoint(gw)) {
      return problem(
        `${LABELS.useWaypoint}: no waypoint Gateway ${request.key} (gatewayClassName ${WAYPOINT_GATEWAY_CLASS})`,
      );
    }
    const forTraffic = gw.metadata.labels[LABELS.waypointFor] ?? 'service';
    if (forTraffic !== traffic && forTraffic !== 'all') {
      return problem(
        `waypoint ${request.key} handles ${forTraffic} traffic (label ${LABELS.waypointFor}), not ${traffic} traffic`,
      );
    }
    if (!this.#admits(gw, ns)) return problem(`waypoint ${request.key} does not admit namespace ${ns} (allowedRoutes)`);
    return this.#gatewayAddress(gw);
  }

  #admits(gw: Gateway, ns: string): boolean {
    const hbone = gw.spec.listeners.find((l) => l.protocol === 'HBONE' && l.port === 15008);
    const from = hbone?.allowedNamespaces.from ?? 'Same';
    if (from === 'All') return true;
    if (from === 'Selector') {
      return selectorMatches(
        hbone?.allowedNamespaces.matchLabels ?? {},
        this.#namespaces.get(ns)?.metadata.labels ?? {},
      );
    }
    return gw.metadata.namespace === ns;
  }

  #gatewayAddress(gw: Gateway): GatewayAddressResource {
    const hboneMtlsPort = 15008;
    const hostname = gw.spec.statusAddresses.find((a) => a.type === 'Hostname');
    if (hostname) return { hostname: { namespace: gw.metadata.namespace, hostname: hostname.value }, hboneMtlsPort };
    for (const a of gw.spec.statusAddresses) {
      if (a.type === 'IPAddress' && isIPAddress(a.value))
        return { address: { network: '', address: parseIp(a.value) }, hboneMtlsPort };
    }
    // Nobody provisions waypoints here: the Service named after the Gateway (as Istio would create) fronts it.
    const host = `${gw.metadata.name}.${gw.metadata.namespace}.svc.${this.domainSuffix}`;
    return { hostname: { namespace: gw.metadata.namespace, hostname: host }, hboneMtlsPort };
  }

  #setWaypointRequest(key: string, request: WaypointRequest | undefined): void {
    const old = this.#waypointRequests.get(key);
    if (old?.key === request?.key) {
      if (request) this.#waypointRequests.set(key, request);
      return;
    }
    if (old) removeIndexed(this.#waypointDependants, old.key, key);
    if (request) {
      this.#waypointRequests.set(key, request);
      addIndexed(this.#waypointDependants, request.key, key);
    } else this.#waypointRequests.delete(key);
  }

  #setServices(key: string, now: Set<string>): void {
    for (const sk of this.#workloadServices.get(key) ?? NO_NAMES)
      if (!now.has(sk)) this.#serviceMembers.get(sk)?.delete(key);
    for (const sk of now) {
      addIndexed(this.#serviceMembers, sk, key);
    }
    if (now.size > 0) this.#workloadServices.set(key, now);
    else this.#workloadServices.delete(key);
  }

  #setPlacement(key: string, placement: Placement | undefined): void {
    const old = this.#workloadPlacement.get(key);
    if (old) {
      this.#count(this.#identitiesByNode, old.node, old.identity, -1);
      if (this.#count(this.#namespacesByNode, old.node, old.namespace, -1)) this.#nodeViewsChanged = true;
      for (const p of old.policies)
        if (this.#count(this.#policiesByNode, old.node, p, -1)) this.#nodeViewsChanged = true;
      this.#workloadPlacement.delete(key);
    }
    if (!placement) return;
    this.#workloadPlacement.set(key, placement);
    this.#count(this.#identitiesByNode, placement.node, placement.identity, 1);
    if (this.#count(this.#namespacesByNode, placement.node, placement.namespace, 1)) this.#nodeViewsChanged = true;
    for (const p of placement.policies)
      if (this.#count(this.#policiesByNode, placement.node, p, 1)) this.#nodeViewsChanged = true;
  }

  /** Adjusts a per-node counter; true when the name appeared or disappeared for that node. */
  #count(index: Map<string, Map<string, number>>, node: string, name: string, delta: 1 | -1): boolean {
    let m = index.get(node);
    if (!m) {
      m = new Map();
      index.set(node, m);
    }
    const n = (m.get(name) ?? 0) + delta;
    if (n > 0) m.set(name, n);
    else {
      m.delete(name);
      if (m.size === 0) index.delete(node);
    }
    return (delta === 1 && n === 1) || n === 0;
  }

  #refreshServiceProblems(dirtyServices: Set<string>, dirtyWorkloads: Set<string>): void {
    const check = new Set(dirtyServices);
    // A workload that changed may have joined or left services: their "selects nothing" state may flip.
    const namespaces = new Set<string>();
    for (const wk of dirtyWorkloads) namespaces.add(wk.slice(wk.indexOf('/') + 1, wk.lastIndexOf('/')));
    for (const ns of namespaces) for (const sk of this.#servicesByNs.get(ns) ?? NO_NAMES) check.add(sk);
    for (const sk of check) {
      const svc = this.#services.get(sk);
      const problemKey = `${sk}#selects`;
      this.#problems.delete(problemKey);
      if (!svc) {
        this.#serviceMembers.delete(sk);
        continue;
      }
      const sel = svc.spec.selector;
      let reason: string | undefined;
      if (!sel || Object.keys(sel).length === 0)
        reason = 'has no spec.selector, so it selects no workloads (EndpointSlices are not read)';
      else if ((this.#serviceMembers.get(sk)?.size ?? 0) === 0) {
        reason = `spec.selector ${JSON.stringify(sel)} matches no Pod or WorkloadEntry in namespace ${svc.metadata.namespace}`;
      }
      if (reason) this.#problems.set(problemKey, [problemFor(svc, 'service-selects-nothing', reason)]);
    }
  }

  #refreshNamespaceProblems(): void {
    for (const k of [...this.#problems.keys()]) if (k.startsWith('Namespace/')) this.#problems.delete(k);
    for (const ns of this.#namespaces.values()) {
      const wp = ns.metadata.labels[LABELS.useWaypoint];
      if (wp === undefined || wp === 'none') continue;
      const key = `${ns.metadata.labels[LABELS.useWaypointNamespace] ?? ns.metadata.name}/${wp}`;
      if (!this.#isWaypoint(this.#gateways.get(key))) {
        this.#problems.set(keyOf(ns), [
          problemFor(
            ns,
            'unresolved-reference',
            `${LABELS.useWaypoint}: no waypoint Gateway ${key} (gatewayClassName ${WAYPOINT_GATEWAY_CLASS})`,
          ),
        ]);
      }
    }
  }

  #addProblem(key: string, obj: AnyConfigObject, code: ConfigProblem['code'], reason: string): void {
    const list = this.#problems.get(key) ?? [];
    list.push(problemFor(obj, code, reason));
    this.#problems.set(key, list);
  }
}

function problemFor(obj: AnyConfigObject, code: ConfigProblem['code'], reason: string): ConfigProblem {
  const m = obj.metadata;
  return {
    code,
    severity: 'warning',
    file: obj.origin.file,
    ...(obj.origin.line !== undefined ? { line: obj.origin.line } : {}),
    object: `${obj.kind} ${m.namespace ? `${m.namespace}/` : ''}${m.name}`,
    reason,
  };
}

function keyNs(gw: Gateway): string {
  return `${gw.metadata.namespace}/${gw.metadata.name}`;
}

function workloadLabels(w: WorkloadSource): Readonly<Record<string, string>> {
  return w.kind === 'WorkloadEntry' ? w.spec.labels : w.metadata.labels;
}

function resolveNamedPort(w: WorkloadSource, name: string): number | undefined {
  if (w.kind === 'WorkloadEntry') return w.spec.ports[name];
  return w.spec.containerPorts.find((p) => p.name === name && p.protocol === 'TCP')?.containerPort;
}

/** Istio's heuristic: a Pod generated by a ReplicaSet of a Deployment, a Job, or a CronJob's Job. */
function podWorkloadName(pod: Pod): [string, WorkloadResource['workloadType']] {
  const m = pod.metadata;
  if (!m.generateName) return [m.name, 'POD'];
  const ctrl = m.ownerReferences.find((o) => o.controller);
  if (!ctrl) return [m.name, 'POD'];
  const hash = m.labels[LABELS.podTemplateHash];
  if (ctrl.kind === 'ReplicaSet' && hash && ctrl.name.endsWith(hash)) {
    return [ctrl.name.endsWith(`-${hash}`) ? ctrl.name.slice(0, -(hash.length + 1)) : ctrl.name, 'DEPLOYMENT'];
  }
  if (ctrl.kind === 'Job') {
    const cron = /^(.+)-\d{8,10}$/.exec(ctrl.name);
    return cron ? [cron[1] as string, 'CRONJOB'] : [ctrl.name, 'JOB'];
  }
  return [m.name, 'POD'];
}

function isIPAddress(s: string): boolean {
  return isIP(s) !== 0;
}

function addressName(res: AddressResource): string {
  return 'workload' in res ? res.workload.uid : `${res.service.namespace}/${res.service.hostname}`;
}

function setIndexed<T>(
  map: Map<string, T>,
  index: Map<string, Set<string>>,
  key: string,
  ns: string,
  obj: T | undefined,
): void {
  if (obj) {
    map.set(key, obj);
    addIndexed(index, ns, key);
  } else {
    map.delete(key);
    removeIndexed(index, ns, key);
  }
}

function addIndexed(index: Map<string, Set<string>>, k: string, v: string): void {
  let s = index.get(k);
  if (!s) {
    s = new Set();
    index.set(k, s);
  }
  s.add(v);
}

function removeIndexed(index: Map<string, Set<string>>, k: string, v: string): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) index.delete(k);
}

function mapValues<T>(m: Map<string, Entry<T>>): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of m) out.set(k, v.resource);
  return out;
}
