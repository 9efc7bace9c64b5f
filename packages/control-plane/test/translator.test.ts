import { keyOf } from '../src/config-object.js';
import type { AuthorizationResource } from '../src/resources.js';
import { type PolicyConverter, Translator } from '../src/translator.js';
import { added, deleted, modified, objects, type Rendered, render, yaml } from './helpers.js';

const base = yaml(`
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  clusterIP: 10.96.0.10
  ports:
  - {name: http, port: 80, targetPort: 8080, appProtocol: http}
  - {name: admin, port: 9000, targetPort: admin}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-7d4b9c-x2x9z
  generateName: web-7d4b9c-
  namespace: shop
  labels: {app: web, version: v2, pod-template-hash: 7d4b9c}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4b9c, controller: true}]
spec:
  nodeName: node-1
  serviceAccountName: web
  containers:
  - name: app
    ports: [{name: admin, containerPort: 9901}]
status:
  podIP: 127.0.1.10
`);

describe('Translator: golden Pod + Service', () => {
  it('builds the Workload and Service exactly as istiod does', () => {
    const t = new Translator();
    const diff = t.apply(added(base));
    expect(diff.addresses.removed).toEqual([]);
    expect(render(diff.addresses.upserted)).toEqual({
      'shop/web.shop.svc.cluster.local': {
        service: {
          name: 'web',
          namespace: 'shop',
          hostname: 'web.shop.svc.cluster.local',
          addresses: [{ network: '', address: '10.96.0.10' }],
          ports: [
            { servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' },
            { servicePort: 9000, targetPort: 0 },
          ],
          subjectAltNames: [],
          waypoint: null,
          loadBalancing: null,
        },
      },
      'Kubernetes//Pod/shop/web-7d4b9c-x2x9z': {
        workload: {
          uid: 'Kubernetes//Pod/shop/web-7d4b9c-x2x9z',
          name: 'web-7d4b9c-x2x9z',
          namespace: 'shop',
          addresses: ['127.0.1.10'],
          network: '',
          tunnelProtocol: 'HBONE',
          trustDomain: '',
          serviceAccount: 'web',
          waypoint: null,
          node: 'node-1',
          canonicalName: 'web',
          canonicalRevision: 'v2',
          workloadType: 'DEPLOYMENT',
          workloadName: 'web',
          nativeTunnel: false,
          services: {
            'shop/web.shop.svc.cluster.local': {
              ports: [
                { servicePort: 80, targetPort: 8080 },
                { servicePort: 9000, targetPort: 9901 },
              ],
            },
          },
          authorizationPolicies: [],
          status: 'HEALTHY',
          clusterId: 'Kubernetes',
          locality: null,
        },
      },
    });
    expect(t.problems()).toEqual([]);
  });

  it('honours cluster id, trust domain and domain suffix', () => {
    const t = new Translator({ clusterId: 'east', trustDomain: 'example.org', domainSuffix: 'mesh.internal' });
    const res = render(t.apply(added(base)).addresses.upserted);
    expect(Object.keys(res).sort()).toEqual(['east//Pod/shop/web-7d4b9c-x2x9z', 'shop/web.shop.svc.mesh.internal']);
    expect(res['east//Pod/shop/web-7d4b9c-x2x9z'].workload).toMatchObject({
      trustDomain: 'example.org',
      clusterId: 'east',
    });
    expect(t.isWorkloadOnNode('node-1', 'spiffe://example.org/ns/shop/sa/web')).toBe(true);
  });
});

describe('Translator: Service port appProtocol', () => {
  it('maps Kubernetes appProtocol values to the workload API Port.app_protocol (field 3)', () => {
    const t = new Translator();
    const diff = t.apply(
      added(
        yaml(`
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports:
  - {name: web, port: 80, appProtocol: http}
  - {name: h2c, port: 81, appProtocol: kubernetes.io/h2c}
  - {name: rpc, port: 82, appProtocol: grpc}
  - {name: h2, port: 83, appProtocol: HTTP2}
  - {name: ws, port: 84, appProtocol: kubernetes.io/ws}
  - {name: alt, port: 85, appProtocol: http-alt}
  - {name: grpc-web, port: 86, appProtocol: grpc-web}
  - {name: wss, port: 87, appProtocol: kubernetes.io/wss}
  - {name: tls, port: 88, appProtocol: https}
  - {name: custom, port: 89, appProtocol: example.com/custom}
  - {name: http-by-name, port: 90}
  - {name: dns, port: 91, protocol: UDP, appProtocol: http}
`),
      ),
    );
    expect(render(diff.addresses.upserted)['shop/api.shop.svc.cluster.local'].service.ports).toEqual([
      { servicePort: 80, targetPort: 80, appProtocol: 'HTTP11' },
      { servicePort: 81, targetPort: 81, appProtocol: 'HTTP2' },
      { servicePort: 82, targetPort: 82, appProtocol: 'GRPC' },
      { servicePort: 83, targetPort: 83, appProtocol: 'HTTP2' },
      { servicePort: 84, targetPort: 84, appProtocol: 'HTTP11' },
      { servicePort: 85, targetPort: 85, appProtocol: 'HTTP11' },
      // Unknown: not sent (the decoder's default is UNKNOWN); the port name is not consulted.
      { servicePort: 86, targetPort: 86 },
      { servicePort: 87, targetPort: 87 },
      { servicePort: 88, targetPort: 88 },
      { servicePort: 89, targetPort: 89 },
      { servicePort: 90, targetPort: 90 },
      { servicePort: 91, targetPort: 91 },
    ]);
    for (const p of render(diff.addresses.upserted)['shop/api.shop.svc.cluster.local'].service.ports.slice(6)) {
      expect(p).not.toHaveProperty('appProtocol');
    }
  });
});

const pod = (name: string, labels: string, extra = '', meta = '') =>
  yaml(`
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ns
  labels: {${labels}}
${meta}spec:
  nodeName: node-1
${extra}status:
  podIP: 10.0.0.1
`);

function workloadOf(t: Translator, name: string, ns = 'ns'): Rendered {
  const a = t.addresses().get(`Kubernetes//Pod/${ns}/${name}`);
  return a && 'workload' in a ? render(a.workload) : undefined;
}

describe('Translator: workload identity labels', () => {
  it.each([
    ['service.istio.io/canonical-name: c, app.kubernetes.io/name: a, app: x', 'c', 'latest'],
    ['app.kubernetes.io/name: a, app: x, version: v1', 'a', 'v1'],
    ['app: x, app.kubernetes.io/version: "3", version: v1', 'x', '3'],
    ['service.istio.io/canonical-revision: r9, version: v1', 'p', 'r9'],
    ['', 'p', 'latest'],
  ])('labels {%s} -> canonical %s/%s', (labels, name, revision) => {
    const t = new Translator();
    t.apply(added(pod('p', labels)));
    expect(workloadOf(t, 'p')).toMatchObject({ canonicalName: name, canonicalRevision: revision });
  });

  it.each([
    ['generateName: j-', 'ownerReferences: [{kind: Job, name: backup, controller: true}]', 'backup', 'JOB'],
    [
      'generateName: j-',
      'ownerReferences: [{kind: Job, name: nightly-28391400, controller: true}]',
      'nightly',
      'CRONJOB',
    ],
    ['generateName: s-', 'ownerReferences: [{kind: StatefulSet, name: db, controller: true}]', 'p', 'POD'],
    ['', 'ownerReferences: [{kind: ReplicaSet, name: web-abc, controller: true}]', 'p', 'POD'],
  ])('%s %s -> workload %s (%s)', (gen, owners, name, type) => {
    const t = new Translator();
    t.apply(added(pod('p', 'pod-template-hash: abc', '', `  ${gen ? `${gen}\n  ` : ''}${owners}\n`)));
    expect(workloadOf(t, 'p')).toMatchObject({ workloadName: name, workloadType: type, canonicalName: name });
  });

  it('marks a pod UNHEALTHY unless Ready, and skips finished and host-network pods', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          pod('ready', 'a: b').replace(
            '  podIP: 10.0.0.1',
            '  podIP: 10.0.0.1\n  conditions: [{type: Ready, status: "True"}]',
          ),
          pod('notready', 'a: b').replace(
            '  podIP: 10.0.0.1',
            '  podIP: 10.0.0.2\n  conditions: [{type: Ready, status: "False"}]',
          ),
          pod('done', 'a: b').replace('  podIP: 10.0.0.1', '  podIP: 10.0.0.3\n  phase: Succeeded'),
          pod('host', 'a: b', '  hostNetwork: true\n'),
        ].join('---\n'),
      ),
    );
    expect(workloadOf(t, 'ready').status).toBe('HEALTHY');
    expect(workloadOf(t, 'notready').status).toBe('UNHEALTHY');
    expect(workloadOf(t, 'done')).toBeUndefined();
    expect(workloadOf(t, 'host')).toBeUndefined();
  });

  it('sets the tunnel protocol from istio.io/dataplane-mode (pod, then namespace, then the default)', () => {
    const t = new Translator({ defaultDataplaneMode: 'none' });
    t.apply(
      added(
        [
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {istio.io/dataplane-mode: ambient}}\n',
          pod('in', 'a: b'),
          pod('out', 'istio.io/dataplane-mode: none'),
          pod('native', 'networking.istio.io/tunnel: http, istio.io/dataplane-mode: none'),
          pod('other', 'a: b').replace('namespace: ns', 'namespace: elsewhere'),
        ].join('---\n'),
      ),
    );
    expect(workloadOf(t, 'in').tunnelProtocol).toBe('HBONE');
    expect(workloadOf(t, 'out').tunnelProtocol).toBe('NONE');
    expect(workloadOf(t, 'native')).toMatchObject({ tunnelProtocol: 'HBONE', nativeTunnel: true });
    expect(workloadOf(t, 'other', 'elsewhere').tunnelProtocol).toBe('NONE');
  });
});

describe('Translator: services', () => {
  it('builds VIPs, IPv6, load balancing and skips named ports a workload lacks', () => {
    const t = new Translator();
    t.apply(
      added(
        yaml(`
apiVersion: v1
kind: Service
metadata: {name: a, namespace: ns}
spec:
  selector: {app: a}
  clusterIPs: [10.96.0.1, "fd00::1"]
  trafficDistribution: PreferClose
  ports: [{name: grpc, port: 50051, targetPort: grpc}, {name: tcp, port: 7000}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: ns}
spec:
  clusterIP: None
  internalTrafficPolicy: Local
  selector: {app: a}
  ports: [{port: 80}]
---
${pod('p', 'app: a')}`),
      ),
    );
    const a = render(t.addresses().get('ns/a.ns.svc.cluster.local'));
    expect(a.service.addresses).toEqual([
      { network: '', address: '10.96.0.1' },
      { network: '', address: 'fd00::1' },
    ]);
    expect(a.service.loadBalancing).toEqual({
      routingPreference: ['NETWORK', 'REGION', 'ZONE', 'SUBZONE'],
      mode: 'FAILOVER',
    });
    const b = render(t.addresses().get('ns/b.ns.svc.cluster.local'));
    expect(b.service.addresses).toEqual([]);
    expect(b.service.loadBalancing).toEqual({ routingPreference: ['NODE'], mode: 'STRICT' });
    expect(workloadOf(t, 'p').services).toEqual({
      'ns/a.ns.svc.cluster.local': { ports: [{ servicePort: 7000, targetPort: 7000 }] },
      'ns/b.ns.svc.cluster.local': { ports: [{ servicePort: 80, targetPort: 80 }] },
    });
  });

  it('warns about a Service that selects nothing, and clears it when a workload appears', () => {
    const t = new Translator();
    t.apply(
      added(
        'apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns}\nspec: {selector: {app: x}, ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: manual, namespace: ns}\nspec: {ports: [{port: 80}]}\n',
      ),
    );
    expect(t.problems()).toEqual([
      expect.objectContaining({
        code: 'service-selects-nothing',
        severity: 'warning',
        object: 'Service ns/s',
        file: 'test.yaml',
        line: 1,
      }),
      expect.objectContaining({
        code: 'service-selects-nothing',
        object: 'Service ns/manual',
        reason: expect.stringContaining('no spec.selector'),
      }),
    ]);
    t.apply(added(pod('p', 'app: x')));
    expect(t.problems().map((p) => p.object)).toEqual(['Service ns/manual']);
  });
});

describe('Translator: WorkloadEntry', () => {
  it('builds a VM workload with its node label, network, locality and named ports', () => {
    const t = new Translator();
    t.apply(
      added(
        yaml(`
apiVersion: v1
kind: Service
metadata: {name: db, namespace: ns}
spec:
  selector: {app: db}
  ports: [{name: sql, port: 5432, targetPort: sql}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: vm-1
  namespace: ns
  labels: {ambient-ts.io/node: node-7}
spec:
  address: 10.1.2.3
  labels: {app: db, version: v5}
  ports: {sql: 15432}
  network: vpc-1
  locality: eu/eu-west-1/a
  serviceAccount: database
`),
      ),
    );
    const wle = render(t.addresses().get('Kubernetes/networking.istio.io/WorkloadEntry/ns/vm-1'));
    expect(wle.workload).toMatchObject({
      uid: 'Kubernetes/networking.istio.io/WorkloadEntry/ns/vm-1',
      addresses: ['10.1.2.3'],
      node: 'node-7',
      network: 'vpc-1',
      serviceAccount: 'database',
      workloadType: 'POD',
      workloadName: 'vm-1',
      canonicalName: 'db',
      canonicalRevision: 'v5',
      locality: { region: 'eu', zone: 'eu-west-1', subzone: 'a' },
      services: { 'ns/db.ns.svc.cluster.local': { ports: [{ servicePort: 5432, targetPort: 15432 }] } },
    });
    expect(t.isWorkloadOnNode('node-7', 'spiffe://cluster.local/ns/ns/sa/database')).toBe(true);
  });
});

const waypointGateway = (name: string, ns: string, labels = '', from = 'Same') =>
  yaml(`
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${ns}, labels: {${labels}}}
spec:
  gatewayClassName: istio-waypoint
  listeners: [{name: mesh, port: 15008, protocol: HBONE, allowedRoutes: {namespaces: {from: ${from}}}}]
`);

describe('Translator: istio.io/use-waypoint', () => {
  it('points services (default traffic type) and, with waypoint-for, workloads at the waypoint', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {istio.io/use-waypoint: wp}}\n',
          waypointGateway('wp', 'ns'),
          'apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns}\nspec: {selector: {app: a}, ports: [{port: 80}]}\n',
          pod('p', 'app: a'),
        ].join('---\n'),
      ),
    );
    const wpAddress = { hostname: { namespace: 'ns', hostname: 'wp.ns.svc.cluster.local' }, hboneMtlsPort: 15008 };
    expect(render(t.addresses().get('ns/s.ns.svc.cluster.local')).service.waypoint).toEqual(wpAddress);
    expect(workloadOf(t, 'p').waypoint).toBeNull(); // a service waypoint does not capture workload traffic

    const gw = objects(waypointGateway('wp', 'ns'))[0]!;
    const diff = t.apply([modified(gw, waypointGateway('wp', 'ns', 'istio.io/waypoint-for: all'))]);
    expect([...diff.addresses.upserted.keys()].sort()).toEqual(['Kubernetes//Pod/ns/p']);
    expect(workloadOf(t, 'p').waypoint).toEqual(wpAddress);
  });

  it('uses the object label over the namespace, honours none and use-waypoint-namespace, and status addresses', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {istio.io/use-waypoint: wp}}\n',
          waypointGateway('wp', 'ns', 'istio.io/waypoint-for: all'),
          waypointGateway('shared', 'infra', 'istio.io/waypoint-for: workload', 'All').replace(
            'spec:',
            'status: {addresses: [{type: IPAddress, value: 10.9.9.9}]}\nspec:',
          ),
          pod('optout', 'istio.io/use-waypoint: none'),
          pod('cross', 'istio.io/use-waypoint: shared, istio.io/use-waypoint-namespace: infra'),
          pod('inherit', 'a: b'),
        ].join('---\n'),
      ),
    );
    expect(workloadOf(t, 'optout').waypoint).toBeNull();
    expect(workloadOf(t, 'cross').waypoint).toEqual({
      address: { network: '', address: '10.9.9.9' },
      hboneMtlsPort: 15008,
    });
    expect(workloadOf(t, 'inherit').waypoint).toMatchObject({ hostname: { hostname: 'wp.ns.svc.cluster.local' } });
  });

  it('reports a waypoint that is missing, of the wrong traffic type, or not admitting the namespace', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          waypointGateway('svc-only', 'ns'),
          waypointGateway('other-ns', 'infra', 'istio.io/waypoint-for: all'),
          pod('a', 'istio.io/use-waypoint: missing'),
          pod('b', 'istio.io/use-waypoint: svc-only'),
          pod('c', 'istio.io/use-waypoint: other-ns, istio.io/use-waypoint-namespace: infra'),
          'apiVersion: v1\nkind: Namespace\nmetadata: {name: empty, labels: {istio.io/use-waypoint: ghost}}\n',
        ].join('---\n'),
      ),
    );
    const byObject = Object.fromEntries(
      t
        .problems()
        .filter((p) => p.code === 'unresolved-reference')
        .map((p) => [p.object, p.reason]),
    );
    expect(byObject).toEqual({
      'Pod ns/a': expect.stringContaining('no waypoint Gateway ns/missing'),
      'Pod ns/b': expect.stringContaining('handles service traffic'),
      'Pod ns/c': expect.stringContaining('does not admit namespace ns'),
      'Namespace empty': expect.stringContaining('no waypoint Gateway empty/ghost'),
    });
    for (const n of ['a', 'b', 'c']) expect(workloadOf(t, n).waypoint).toBeNull();
  });

  it('gives the waypoint Service itself no waypoint and failover load balancing', () => {
    const t = new Translator();
    t.apply(
      added(
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: ns, labels: {istio.io/use-waypoint: wp}}\n---\n' +
          `${waypointGateway('wp', 'ns')}---\napiVersion: v1\nkind: Service\nmetadata: {name: wp, namespace: ns, labels: {gateway.istio.io/managed: istio.io-mesh-controller}}\nspec: {selector: {gateway.networking.k8s.io/gateway-name: wp}, ports: [{port: 15008}]}\n`,
      ),
    );
    const svc = render(t.addresses().get('ns/wp.ns.svc.cluster.local')).service;
    expect(svc.waypoint).toBeNull();
    expect(svc.loadBalancing.mode).toBe('FAILOVER');
  });
});

describe('Translator: PeerAuthentication', () => {
  const pa = (name: string, ns: string, mode: string, extra = '') =>
    `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  mtls: {mode: ${mode}}\n${extra}`;

  it('STRICT in a namespace publishes the static DENY-plaintext policy and attaches it', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          pa('default', 'ns', 'STRICT'),
          pod('p', 'app: a'),
          pod('q', 'app: a').replace('namespace: ns', 'namespace: other'),
        ].join('---\n'),
      ),
    );
    expect(render(t.authorizations())).toEqual({
      'istio-system/istio_converted_static_strict': {
        name: 'istio_converted_static_strict',
        namespace: 'istio-system',
        scope: 'WORKLOAD_SELECTOR',
        action: 'DENY',
        rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }] }] }] }],
        dryRun: false,
      },
    });
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['istio-system/istio_converted_static_strict']);
    expect(workloadOf(t, 'q', 'other').authorizationPolicies).toEqual([]);
  });

  it('mesh-wide STRICT applies everywhere; a workload PERMISSIVE overrides; deleting the last PA removes the policy', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          pa('mesh', 'istio-system', 'STRICT'),
          pa('relaxed', 'ns', 'PERMISSIVE', '  selector: {matchLabels: {app: legacy}}\n'),
          pod('p', 'app: a'),
          pod('legacy', 'app: legacy'),
        ].join('---\n'),
      ),
    );
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['istio-system/istio_converted_static_strict']);
    expect(workloadOf(t, 'legacy').authorizationPolicies).toEqual([]);
    const [mesh, relaxed] = objects(
      [
        pa('mesh', 'istio-system', 'STRICT'),
        pa('relaxed', 'ns', 'PERMISSIVE', '  selector: {matchLabels: {app: legacy}}\n'),
      ].join('---\n'),
    );
    t.apply([deleted(mesh!), deleted(relaxed!)]);
    expect(t.authorizations().size).toBe(0);
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual([]);
  });

  it('port-level mTLS becomes a converted policy exempting the PERMISSIVE port', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          pa(
            'strict',
            'ns',
            'STRICT',
            '  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    "8080": {mode: PERMISSIVE}\n',
          ),
          pod('p', 'app: a'),
        ].join('---\n'),
      ),
    );
    expect(render(t.authorizations().get('ns/converted_peer_authentication_strict'))).toEqual({
      name: 'converted_peer_authentication_strict',
      namespace: 'ns',
      scope: 'WORKLOAD_SELECTOR',
      action: 'DENY',
      rules: [
        {
          clauses: [
            { matches: [{ notPrincipals: [{ presence: {} }] }] },
            { matches: [{ notDestinationPorts: [8080] }] },
          ],
        },
      ],
      dryRun: false,
    });
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['ns/converted_peer_authentication_strict']);
  });

  it('a PERMISSIVE workload with a STRICT port gets a per-port deny', () => {
    const t = new Translator();
    t.apply(
      added(
        [
          pa(
            'p1',
            'ns',
            'PERMISSIVE',
            '  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    "9090": {mode: STRICT}\n',
          ),
          pod('p', 'app: a'),
        ].join('---\n'),
      ),
    );
    expect(render(t.authorizations().get('ns/converted_peer_authentication_p1'))).toMatchObject({
      rules: [{ clauses: [{ matches: [{ notPrincipals: [{ presence: {} }], destinationPorts: [9090] }] }] }],
    });
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['ns/converted_peer_authentication_p1']);
  });
});

describe('Translator: AuthorizationPolicy', () => {
  const converter: PolicyConverter = (p, root) => {
    const raw = p.spec.raw as { action?: string; targetRefs?: unknown };
    if (raw.targetRefs || (raw.action && raw.action !== 'ALLOW' && raw.action !== 'DENY')) return {};
    const auth: AuthorizationResource = {
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      scope: p.spec.selector ? 'WORKLOAD_SELECTOR' : p.metadata.namespace === root ? 'GLOBAL' : 'NAMESPACE',
      action: raw.action === 'DENY' ? 'DENY' : 'ALLOW',
      rules: [],
      dryRun: false,
    };
    return { authorization: auth };
  };
  const policy = (name: string, ns: string, spec: string) =>
    `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: ${spec}\n`;

  it('publishes converted policies and lists selector policies (own and root namespace) on matching workloads', () => {
    const t = new Translator({ convertPolicy: converter });
    t.apply(
      added(
        [
          policy('ns-wide', 'ns', '{action: DENY}'),
          policy('z-sel', 'ns', '{selector: {matchLabels: {app: a}}}'),
          policy('a-root-sel', 'istio-system', '{selector: {matchLabels: {app: a}}}'),
          policy('other', 'ns', '{selector: {matchLabels: {app: b}}}'),
          policy('waypoint-only', 'ns', '{targetRefs: [{kind: Service, group: "", name: s}]}'),
          pod('p', 'app: a'),
        ].join('---\n'),
      ),
    );
    expect([...t.authorizations().keys()].sort()).toEqual([
      'istio-system/a-root-sel',
      'ns/ns-wide',
      'ns/other',
      'ns/z-sel',
    ]);
    expect(t.authorizations().get('ns/ns-wide')?.scope).toBe('NAMESPACE');
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['istio-system/a-root-sel', 'ns/z-sel']);

    // Changing a policy's selector re-lists it on exactly the affected workloads.
    const [zsel] = objects(policy('z-sel', 'ns', '{selector: {matchLabels: {app: a}}}'));
    const diff = t.apply([modified(zsel!, policy('z-sel', 'ns', '{selector: {matchLabels: {app: nobody}}}'))]);
    expect([...diff.addresses.upserted.keys()]).toEqual(['Kubernetes//Pod/ns/p']);
    expect(workloadOf(t, 'p').authorizationPolicies).toEqual(['istio-system/a-root-sel']);
  });
});

describe('Translator: incremental updates', () => {
  it('recomputes only what depends on the change and reports only changed or removed resources', () => {
    const t = new Translator();
    const objs = objects(base);
    t.apply(added(base));
    const podObj = objs.find((o) => o.kind === 'Pod')!;
    const svcObj = objs.find((o) => o.kind === 'Service')!;

    // No-op: same content again.
    expect(
      t.apply([{ type: 'modified', key: keyOf(podObj), object: podObj, previous: podObj }]).addresses.upserted.size,
    ).toBe(0);

    // One pod changes: exactly that workload.
    const moved = modified(podObj, base.split('---\n')[2]!.replace('127.0.1.10', '127.0.1.11'));
    const d1 = t.apply([moved]);
    expect([...d1.addresses.upserted.keys()]).toEqual(['Kubernetes//Pod/shop/web-7d4b9c-x2x9z']);
    expect(d1.addresses.removed).toEqual([]);

    // The service's ports change: the service and the workloads it selects.
    const d2 = t.apply([modified(svcObj, base.split('---\n')[1]!.replace('port: 80,', 'port: 81,'))]);
    expect([...d2.addresses.upserted.keys()].sort()).toEqual([
      'Kubernetes//Pod/shop/web-7d4b9c-x2x9z',
      'shop/web.shop.svc.cluster.local',
    ]);

    // Deletion: the resource name is reported removed, and node authorization forgets it.
    const d3 = t.apply([deleted(moved.object)]);
    expect(d3.addresses.removed).toEqual(['Kubernetes//Pod/shop/web-7d4b9c-x2x9z']);
    expect(t.isWorkloadOnNode('node-1', 'spiffe://cluster.local/ns/shop/sa/web')).toBe(false);
  });

  it('tracks node placement for CA node authorization', () => {
    const t = new Translator();
    t.apply(added([pod('a', 'x: y'), pod('b', 'x: y').replace('node-1', 'node-2')].join('---\n')));
    expect(t.isWorkloadOnNode('node-1', 'spiffe://cluster.local/ns/ns/sa/default')).toBe(true);
    expect(t.isWorkloadOnNode('node-2', 'spiffe://cluster.local/ns/ns/sa/default')).toBe(true);
    expect(t.isWorkloadOnNode('node-3', 'spiffe://cluster.local/ns/ns/sa/default')).toBe(false);
    expect(t.isWorkloadOnNode('node-1', 'spiffe://cluster.local/ns/ns/sa/other')).toBe(false);
    expect(t.identitiesOnNode('node-2')).toEqual(['spiffe://cluster.local/ns/ns/sa/default']);
  });

  it('keeps L7 kinds for the waypoint', () => {
    const t = new Translator();
    t.apply(
      added(
        'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: ns}\nspec: {parentRefs: [{name: s, kind: Service, group: ""}]}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: ns}\nspec: {host: s}\n---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: ns}\nspec: {}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: ns}\nspec: {}\n',
      ),
    );
    expect(
      t
        .l7Objects()
        .map((o) => o.kind)
        .sort(),
    ).toEqual(['DestinationRule', 'GRPCRoute', 'HTTPRoute', 'RequestAuthentication']);
    expect(t.l7Objects('HTTPRoute')[0]?.spec).toEqual({ parentRefs: [{ name: 's', kind: 'Service', group: '' }] });
    expect(t.addresses().size).toBe(0);
  });
});
