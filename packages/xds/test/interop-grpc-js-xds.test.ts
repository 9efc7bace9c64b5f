/**
 * Interop: the gRPC team's xDS client (@grpc/grpc-js-xds, proxyless gRPC) resolves an `xds:///`
 * target through our XdsServer over state-of-the-world ADS, fetching Listener →
 * RouteConfiguration → Cluster → ClusterLoadAssignment, and a real gRPC call is then routed to
 * the endpoint we served. The envoy resource messages are encoded with protobufjs from Envoy's
 * own .proto files, which grpc-js-xds ships in its package (deps/); our server only sees them as
 * registered types, exactly as another package would add its own.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { defineResourceType, ResourceCache, TypeRegistry, XdsServer } from '../src/index.js';

const xdsDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const protobufjsDir = dirname(require.resolve('protobufjs/package.json'));
const includes = ['deps/envoy-api', 'deps/xds', 'deps/googleapis', 'deps/protoc-gen-validate'].map((d) =>
  join(xdsDir, d),
);
includes.push(protobufjsDir);

function loadEnvoy(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of includes) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(
    [
      'envoy/config/listener/v3/listener.proto',
      'envoy/config/route/v3/route.proto',
      'envoy/config/cluster/v3/cluster.proto',
      'envoy/config/endpoint/v3/endpoint.proto',
      'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
      'envoy/extensions/filters/http/router/v3/router.proto',
    ],
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

const T = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  endpoints: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
};

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('grpc-js-xds resolves xds:///echo through XdsServer and a real call reaches the served endpoint', async () => {
  const envoy = loadEnvoy();
  const type = (name: string) => envoy.lookupType(name);
  const encode = (name: string, obj: Record<string, unknown>) => {
    const t = type(name);
    return t.encode(t.fromObject(obj)).finish();
  };

  // The backend: a unary echo method with byte (de)serialisation.
  const backend = new grpc.Server();
  const id = (b: Buffer): Buffer => b;
  let calls = 0;
  backend.addService(
    {
      Echo: {
        path: '/test.Echo/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        calls++;
        cb(null, Buffer.concat([Buffer.from('echo:'), call.request]));
      },
    },
  );
  const backendPort = await new Promise<number>((resolve, reject) =>
    backend.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => backend.forceShutdown());

  const registry = new TypeRegistry([
    defineResourceType({ typeUrl: T.listener, messageType: type('envoy.config.listener.v3.Listener') }),
    defineResourceType({ typeUrl: T.route, messageType: type('envoy.config.route.v3.RouteConfiguration') }),
    defineResourceType({ typeUrl: T.cluster, messageType: type('envoy.config.cluster.v3.Cluster') }),
    defineResourceType({ typeUrl: T.endpoints, messageType: type('envoy.config.endpoint.v3.ClusterLoadAssignment') }),
  ]);
  const cache = new ResourceCache({ registry });
  const hcm = encode('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', {
    rds: { route_config_name: 'echo-route', config_source: { ads: {} } },
    http_filters: [
      {
        name: 'router',
        typed_config: { type_url: T.router, value: encode('envoy.extensions.filters.http.router.v3.Router', {}) },
      },
    ],
  });
  cache.transaction((tx) => {
    tx.set(
      T.listener,
      'echo',
      encode('envoy.config.listener.v3.Listener', {
        name: 'echo',
        api_listener: { api_listener: { type_url: T.hcm, value: hcm } },
      }),
    );
    tx.set(
      T.route,
      'echo-route',
      encode('envoy.config.route.v3.RouteConfiguration', {
        name: 'echo-route',
        virtual_hosts: [
          { name: 'all', domains: ['*'], routes: [{ match: { prefix: '' }, route: { cluster: 'echo-cluster' } }] },
        ],
      }),
    );
    tx.set(
      T.cluster,
      'echo-cluster',
      encode('envoy.config.cluster.v3.Cluster', {
        name: 'echo-cluster',
        type: 'EDS',
        eds_cluster_config: { eds_config: { ads: {} }, service_name: 'echo-endpoints' },
        lb_policy: 'ROUND_ROBIN',
      }),
    );
    tx.set(
      T.endpoints,
      'echo-endpoints',
      encode('envoy.config.endpoint.v3.ClusterLoadAssignment', {
        cluster_name: 'echo-endpoints',
        endpoints: [
          {
            locality: { region: 'r1', zone: 'z1', sub_zone: 's1' },
            load_balancing_weight: { value: 1 },
            lb_endpoints: [
              {
                health_status: 'HEALTHY',
                endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: backendPort } } },
              },
            ],
          },
        ],
      }),
    );
  });
  const server = new XdsServer({ cache });
  const xdsPort = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.destroy());

  // grpc-js-xds registers the xds: scheme in the same @grpc/grpc-js instance we use.
  (require('@grpc/grpc-js-xds') as { register(): void }).register();
  const bootstrap = {
    xds_servers: [
      { server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    node: { id: 'interop-test', locality: {} },
  };
  const client = new grpc.Client('xds:///echo', grpc.credentials.createInsecure(), {
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
  });
  cleanups.push(() => client.close());
  const reply = await new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      '/test.Echo/Echo',
      id,
      id,
      Buffer.from('hi'),
      new grpc.Metadata(),
      { deadline: Date.now() + 20_000 },
      (err, res) => (err || !res ? reject(err) : resolve(res)),
    );
  });
  expect(reply.toString()).toBe('echo:hi');
  expect(calls).toBe(1);

  // grpc-js-xds subscribed by name to all four types over SotW and ACKed each.
  const [peer] = server.clients();
  expect(peer?.protocol).toBe('sotw');
  expect(peer?.node?.id).toBe('interop-test');
  const types = new Map(peer?.types.map((t) => [t.typeUrl, t]));
  for (const [url, name] of [
    [T.listener, 'echo'],
    [T.route, 'echo-route'],
    [T.cluster, 'echo-cluster'],
    [T.endpoints, 'echo-endpoints'],
  ] as const) {
    expect(types.get(url)?.names).toEqual([name]);
    expect(types.get(url)?.nacks).toBe(0);
    expect(types.get(url)?.ackedVersion).toBe(String(cache.seq));
  }
});

it('Delta: a client generated by @grpc/proto-loader from Envoy’s own ads.proto talks to XdsServer', async () => {
  const protoLoader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const def = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: includes,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: {
      service: {
        discovery: { v3: { AggregatedDiscoveryService: new (t: string, c: grpc.ChannelCredentials) => grpc.Client } };
      };
    };
  };
  const { ADDRESS_TYPE_URL, createIstioRegistry, addressResourceType, parseIp } = await import('../src/index.js');
  const cache = new ResourceCache({ registry: createIstioRegistry() });
  cache.set(ADDRESS_TYPE_URL, 'uid-1', { workload: { uid: 'uid-1', name: 'p1', addresses: [parseIp('10.1.2.3')] } });
  const server = new XdsServer({ cache });
  const port = await server.listen('127.0.0.1:0');
  cleanups.push(() => server.destroy());

  const ads = new pkg.envoy.service.discovery.v3.AggregatedDiscoveryService(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  cleanups.push(() => ads.close());
  type Res = {
    type_url: string;
    nonce: string;
    resources: { name: string; version: string; resource: { type_url: string; value: Buffer } }[];
    removed_resources: string[];
  };
  const call = (
    ads as unknown as { DeltaAggregatedResources(): grpc.ClientDuplexStream<unknown, Res> }
  ).DeltaAggregatedResources();
  cleanups.push(() => call.cancel());
  call.on('error', () => {});
  const responses: Res[] = [];
  const next = () => new Promise<Res>((resolve) => call.once('data', resolve));
  let pending = next();
  call.write({ node: { id: 'envoy-shaped' }, type_url: ADDRESS_TYPE_URL, resource_names_subscribe: ['*'] });
  responses.push(await pending);
  const r1 = responses[0] as Res;
  expect(r1.type_url).toBe(ADDRESS_TYPE_URL);
  expect(r1.resources.map((r) => r.name)).toEqual(['uid-1']);
  expect(r1.resources[0]?.resource.type_url).toBe(ADDRESS_TYPE_URL);
  const decoded = addressResourceType().decode(r1.resources[0]?.resource.value as Buffer);
  expect(decoded.type === 'workload' && decoded.workload.name).toBe('p1');

  pending = next();
  call.write({ type_url: ADDRESS_TYPE_URL, response_nonce: r1.nonce });
  cache.delete(ADDRESS_TYPE_URL, 'uid-1');
  const r2 = await pending;
  expect(r2.removed_resources).toEqual(['uid-1']);
  expect(r2.nonce).not.toBe(r1.nonce);
});
