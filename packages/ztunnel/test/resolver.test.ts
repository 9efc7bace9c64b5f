import { ZtunnelError } from '../src/errors.js';
import { Resolver } from '../src/resolver.js';
import { ProxyState } from '../src/state.js';
import { policy, service, workload } from './helpers/model.js';

function setup(random = () => 0) {
  const state = new ProxyState();
  const own = new Set(['127.0.1.1:15080', '127.0.1.10:15008']);
  const resolver = new Resolver({
    state,
    trustDomain: 'cluster.local',
    hbonePort: 15008,
    isOwnListener: (ip, port) => own.has(`${ip}:${port}`),
    random,
  });
  const client = workload({ uid: 'client', addresses: ['127.0.1.10'], serviceAccount: 'client' });
  state.upsertWorkload(client);
  return { state, resolver, client };
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ZtunnelError);
    return (err as ZtunnelError).code;
  }
  throw new Error('expected an error');
}

describe('ProxyState', () => {
  it('indexes workloads by uid and IP, services by VIP and hostname, policies by name, in one change event per batch', () => {
    const { state } = setup();
    const events: unknown[] = [];
    state.on('change', (c) => events.push(c));
    state.batch(() => {
      state.upsertService(service({ name: 'echo', addresses: [{ network: '', address: '10.96.0.1' }] }));
      state.upsertWorkload(
        workload({
          uid: 'e1',
          addresses: ['127.0.2.10'],
          node: 'node-2',
          services: { 'default/echo.default.svc.cluster.local': [{ servicePort: 80, targetPort: 8080 }] },
        }),
      );
      state.upsertPolicy(policy({ name: 'p' }));
    });
    expect(events).toEqual([{ workloads: true, services: true, policies: true }]);
    expect(state.workloadByAddress('::ffff:127.0.2.10')?.uid).toBe('e1');
    expect(state.serviceByAddress('10.96.0.1')?.name).toBe('echo');
    expect(state.serviceByHostname('ECHO.default.svc.cluster.local.')?.name).toBe('echo');
    expect(state.endpointsOf('default/echo.default.svc.cluster.local').map((w) => w.uid)).toEqual(['e1']);
    expect(state.localWorkloads('node-2').map((w) => w.uid)).toEqual(['e1']);
    // Re-upserting with a new IP drops the old index entry.
    state.upsertWorkload(workload({ uid: 'e1', addresses: ['127.0.2.11'], node: 'node-2' }));
    expect(state.workloadByAddress('127.0.2.10')).toBeUndefined();
    expect(state.endpointsOf('default/echo.default.svc.cluster.local')).toEqual([]);
    expect(state.removeWorkload('e1')).toBe(true);
    expect(state.removeWorkload('e1')).toBe(false);
    expect(state.removeService('default/echo.default.svc.cluster.local')).toBe(true);
    expect(state.serviceByHostname('echo.default.svc.cluster.local')).toBeUndefined();
  });

  it('scopes policies as ztunnel does: global, namespace, selector', () => {
    const { state } = setup();
    state.upsertPolicy(policy({ name: 'mesh', namespace: 'istio-system', scope: 'GLOBAL' }));
    state.upsertPolicy(policy({ name: 'ns', namespace: 'default', scope: 'NAMESPACE' }));
    state.upsertPolicy(policy({ name: 'other-ns', namespace: 'other', scope: 'NAMESPACE' }));
    state.upsertPolicy(policy({ name: 'sel', namespace: 'default', scope: 'WORKLOAD_SELECTOR' }));
    state.upsertPolicy(policy({ name: 'sel2', namespace: 'default', scope: 'WORKLOAD_SELECTOR' }));
    const w = workload({ uid: 'w', addresses: ['127.0.2.12'], authorizationPolicies: ['default/sel'] });
    expect(
      state
        .policiesFor(w)
        .map((p) => p.name)
        .sort(),
    ).toEqual(['mesh', 'ns', 'sel']);
    expect(state.removePolicy('default/ns')).toBe(true);
    expect(
      state
        .policiesFor(w)
        .map((p) => p.name)
        .sort(),
    ).toEqual(['mesh', 'sel']);
  });
});

describe('Resolver', () => {
  const echoKey = 'default/echo.default.svc.cluster.local';
  function withEcho(state: ProxyState, extra: Partial<Parameters<typeof service>[0]> = {}) {
    state.upsertService(service({ name: 'echo', addresses: [{ network: '', address: '10.96.0.1' }], ...extra }));
    for (const [uid, ip, status, node] of [
      ['e1', '127.0.2.10', 'HEALTHY', 'node-2'],
      ['e2', '127.0.3.10', 'HEALTHY', 'node-3'],
      ['e3', '127.0.4.10', 'UNHEALTHY', 'node-1'],
    ] as const) {
      state.upsertWorkload(
        workload({
          uid,
          addresses: [ip],
          status,
          node,
          serviceAccount: 'echo',
          services: { [echoKey]: [{ servicePort: 80, targetPort: 8080 }] },
        }),
      );
    }
  }

  it('resolves a hostname and a VIP to a healthy endpoint over HBONE with its identity', () => {
    const { state, resolver, client } = setup(() => 0.99);
    withEcho(state);
    for (const host of ['echo.default.svc.cluster.local', '10.96.0.1']) {
      const r = resolver.resolve(client, { host, port: 80 });
      expect(r).toMatchObject({
        kind: 'hbone',
        dial: { host: '127.0.3.10', port: 15008 },
        authority: { host: '127.0.3.10', port: 8080 },
        expectedIdentities: ['spiffe://cluster.local/ns/default/sa/echo'],
        viaWaypoint: false,
      });
      if (r.kind === 'hbone') expect(r.destService?.name).toBe('echo');
    }
  });

  it('picks at random among healthy endpoints only, unless the health policy allows all', () => {
    const { state, resolver, client } = setup();
    withEcho(state);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const r = resolver.resolve(client, { host: '10.96.0.1', port: 80 });
      if (r.kind === 'hbone') seen.add(r.dial.host);
    }
    const real = new Resolver({ state, trustDomain: 'cluster.local', hbonePort: 15008, isOwnListener: () => false });
    for (let i = 0; i < 200; i++) {
      const r = real.resolve(client, { host: '10.96.0.1', port: 80 });
      if (r.kind === 'hbone') seen.add(r.dial.host);
    }
    expect([...seen].sort()).toEqual(['127.0.2.10', '127.0.3.10']);
    state.upsertService(
      service({
        name: 'echo',
        addresses: [{ network: '', address: '10.96.0.1' }],
        loadBalancing: { routingPreference: [], mode: 'UNSPECIFIED', healthPolicy: 'ALLOW_ALL' },
      }),
    );
    const all = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const r = real.resolve(client, { host: '10.96.0.1', port: 80 });
      if (r.kind === 'hbone') all.add(r.dial.host);
    }
    expect(all.has('127.0.4.10')).toBe(true);
  });

  it('honours routing preference: STRICT keeps only matching endpoints, FAILOVER prefers them', () => {
    const { state, client } = setup();
    withEcho(state, { loadBalancing: { routingPreference: ['NODE'], mode: 'STRICT', healthPolicy: 'ALLOW_ALL' } });
    const r1 = new Resolver({ state, trustDomain: 'cluster.local', hbonePort: 15008, isOwnListener: () => false });
    for (let i = 0; i < 20; i++)
      expect(r1.resolve(client, { host: '10.96.0.1', port: 80 }).dial.host).toBe('127.0.4.10');
    state.upsertService(
      service({
        name: 'echo',
        addresses: [{ network: '', address: '10.96.0.1' }],
        loadBalancing: { routingPreference: ['NODE'], mode: 'STRICT', healthPolicy: 'ONLY_HEALTHY' },
      }),
    );
    expect(codeOf(() => r1.resolve(client, { host: '10.96.0.1', port: 80 }))).toBe('ERR_ZTUNNEL_NO_ROUTE');
    state.upsertService(
      service({
        name: 'echo',
        addresses: [{ network: '', address: '10.96.0.1' }],
        loadBalancing: { routingPreference: ['NODE'], mode: 'FAILOVER', healthPolicy: 'ONLY_HEALTHY' },
      }),
    );
    expect(['127.0.2.10', '127.0.3.10']).toContain(r1.resolve(client, { host: '10.96.0.1', port: 80 }).dial.host);
  });

  it('goes to a workload IP directly, and over plain TCP when it is not in the mesh', () => {
    const { state, resolver, client } = setup();
    state.upsertWorkload(workload({ uid: 'w', addresses: ['127.0.2.20'], serviceAccount: 'sa' }));
    state.upsertWorkload(workload({ uid: 'legacy', addresses: ['127.0.2.21'], tunnelProtocol: 'NONE' }));
    expect(resolver.resolve(client, { host: '127.0.2.20', port: 9000 })).toMatchObject({
      kind: 'hbone',
      authority: { host: '127.0.2.20', port: 9000 },
      dial: { host: '127.0.2.20', port: 15008 },
    });
    expect(resolver.resolve(client, { host: '127.0.2.21', port: 9000 })).toMatchObject({
      kind: 'tcp',
      dial: { host: '127.0.2.21', port: 9000 },
    });
  });

  it('sends to the waypoint with the original VIP:port as authority', () => {
    const { state, resolver, client } = setup();
    withEcho(state, {
      waypoint: {
        hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' },
        hbonePort: 15008,
      },
    });
    state.upsertService(
      service({
        name: 'waypoint',
        addresses: [{ network: '', address: '10.96.0.9' }],
        ports: [{ servicePort: 15008, targetPort: 15008 }],
      }),
    );
    state.upsertWorkload(
      workload({
        uid: 'wp',
        addresses: ['127.0.5.10'],
        serviceAccount: 'waypoint',
        services: { 'default/waypoint.default.svc.cluster.local': [{ servicePort: 15008, targetPort: 15008 }] },
      }),
    );
    const r = resolver.resolve(client, { host: 'echo.default.svc.cluster.local', port: 80 });
    expect(r).toMatchObject({
      kind: 'hbone',
      viaWaypoint: true,
      dial: { host: '127.0.5.10', port: 15008 },
      authority: { host: '10.96.0.1', port: 80 },
      expectedIdentities: ['spiffe://cluster.local/ns/default/sa/waypoint'],
    });
    // By address, and the waypoint itself is not sent back to itself.
    state.upsertWorkload(
      workload({
        uid: 'w',
        addresses: ['127.0.2.30'],
        waypoint: { address: { network: '', address: '127.0.5.10' }, hbonePort: 15009 },
      }),
    );
    expect(resolver.resolve(client, { host: '127.0.2.30', port: 7 })).toMatchObject({
      viaWaypoint: true,
      dial: { host: '127.0.5.10', port: 15009 },
      authority: { host: '127.0.2.30', port: 7 },
    });
    const wp = state.workload('wp');
    if (!wp) throw new Error('no waypoint');
    expect(resolver.resolve(wp, { host: '10.96.0.1', port: 80 })).toMatchObject({ viaWaypoint: false });
  });

  it('passes through destinations outside the mesh, refuses loops, unknown mesh names and missing ports', () => {
    const { state, resolver, client } = setup();
    withEcho(state);
    expect(resolver.resolve(client, { host: '192.0.2.1', port: 443 })).toEqual({
      kind: 'passthrough',
      dial: { host: '192.0.2.1', port: 443 },
    });
    expect(resolver.resolve(client, { host: 'example.com', port: 443 })).toEqual({
      kind: 'passthrough',
      dial: { host: 'example.com', port: 443 },
    });
    expect(codeOf(() => resolver.resolve(client, { host: '127.0.1.1', port: 15080 }))).toBe('ERR_ZTUNNEL_LOOP');
    expect(codeOf(() => resolver.resolve(client, { host: 'nope.default.svc.cluster.local', port: 80 }))).toBe(
      'ERR_ZTUNNEL_NO_ROUTE',
    );
    expect(codeOf(() => resolver.resolve(client, { host: '10.96.0.1', port: 81 }))).toBe('ERR_ZTUNNEL_NO_ROUTE');
  });
  it('dual-stack: a workload IP is used as asked, a VIP leads to the endpoint address of its own family', () => {
    const { state, resolver, client } = setup();
    state.upsertService(
      service({
        name: 'echo',
        addresses: [
          { network: '', address: '10.96.0.1' },
          { network: '', address: 'fd00:96::1' },
        ],
      }),
    );
    state.upsertWorkload(
      workload({
        uid: 'e1',
        addresses: ['10.248.2.11', 'fd00:248:2::11'],
        serviceAccount: 'echo',
        services: { [echoKey]: [{ servicePort: 80, targetPort: 8080 }] },
      }),
    );
    const via = (host: string, port: number) => {
      const r = resolver.resolve(client, { host, port });
      if (r.kind !== 'hbone') throw new Error(`expected hbone, got ${r.kind}`);
      return [r.dial.host, r.authority.host, r.authority.port];
    };
    // Any spelling of an address finds it; IPv4-mapped IPv6 (dotted or hex) is the IPv4 address.
    for (const spelling of ['FD00:248:2:0:0:0:0:11', 'fd00:248:2::0011', '::ffff:10.248.2.11', '::ffff:af8:20b']) {
      expect(state.workloadByAddress(spelling)?.uid).toBe('e1');
    }
    expect(via('fd00:248:2::11', 9090)).toEqual(['fd00:248:2::11', 'fd00:248:2::11', 9090]);
    expect(via('10.248.2.11', 9090)).toEqual(['10.248.2.11', '10.248.2.11', 9090]);
    expect(via('fd00:96::1', 80)).toEqual(['fd00:248:2::11', 'fd00:248:2::11', 8080]);
    expect(via('FD00:96:0::1', 80)).toEqual(['fd00:248:2::11', 'fd00:248:2::11', 8080]);
    expect(via('10.96.0.1', 80)).toEqual(['10.248.2.11', '10.248.2.11', 8080]);
    // By hostname: the family of the service's first VIP.
    expect(via('echo.default.svc.cluster.local', 80)).toEqual(['10.248.2.11', '10.248.2.11', 8080]);
    // An IPv4-only endpoint behind an IPv6 VIP is still reached (its only address).
    state.upsertWorkload(
      workload({
        uid: 'e1',
        addresses: ['10.248.2.11'],
        serviceAccount: 'echo',
        services: { [echoKey]: [{ servicePort: 80, targetPort: 8080 }] },
      }),
    );
    expect(via('fd00:96::1', 80)).toEqual(['10.248.2.11', '10.248.2.11', 8080]);

    // Through a dual-stack waypoint: dialled at its address of the asked VIP's family, the VIP as authority.
    state.upsertService(
      service({
        name: 'echo',
        addresses: [
          { network: '', address: '10.96.0.1' },
          { network: '', address: 'fd00:96::1' },
        ],
        waypoint: { hostname: { namespace: 'default', hostname: 'waypoint.default.svc.cluster.local' }, hbonePort: 0 },
      }),
    );
    state.upsertService(
      service({
        name: 'waypoint',
        addresses: [{ network: '', address: '10.96.0.9' }],
        ports: [{ servicePort: 15008, targetPort: 15008 }],
      }),
    );
    state.upsertWorkload(
      workload({
        uid: 'wp',
        addresses: ['10.248.3.11', 'fd00:248:3::11'],
        serviceAccount: 'waypoint',
        services: { 'default/waypoint.default.svc.cluster.local': [{ servicePort: 15008, targetPort: 15008 }] },
      }),
    );
    expect(via('fd00:96::1', 80)).toEqual(['fd00:248:3::11', 'fd00:96::1', 80]);
    expect(via('10.96.0.1', 80)).toEqual(['10.248.3.11', '10.96.0.1', 80]);
  });
});
