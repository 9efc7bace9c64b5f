import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import {
  ADDRESS_TYPE_URL,
  createIstioRegistry,
  defineResourceType,
  PROTO_FILES,
  parseIp,
  ResourceCache,
  TypeRegistry,
  XdsClient,
  XdsError,
  XdsServer,
} from '../src/index.js';
import { workload } from './helpers.js';

// What another package (e.g. the waypoint) would write: its own proto, type and validator.
const ROUTE_PROTO = `syntax = "proto3";
package example.l7.v1;
message HttpRoute {
  string name = 1;
  string path_prefix = 2;
  uint32 weight = 3;
}`;

interface HttpRoute {
  name: string;
  pathPrefix: string;
  weight: number;
}

function routeType() {
  const root = protobuf.parse(ROUTE_PROTO, new protobuf.Root()).root;
  return defineResourceType<HttpRoute>({
    messageType: root.lookupType('example.l7.v1.HttpRoute'),
    validate: (name, r) => [
      ...(name === r.name ? [] : [`resource name "${name}" differs from route name "${r.name}"`]),
      ...(r.pathPrefix.startsWith('/') ? [] : [`pathPrefix "${r.pathPrefix}" must start with "/"`]),
    ],
  });
}

describe('type registry', () => {
  it('a package registers its own type and it is served and validated end to end', async () => {
    const route = routeType();
    expect(route.typeUrl).toBe('type.googleapis.com/example.l7.v1.HttpRoute');
    const registry = createIstioRegistry().register(route);
    const cache = new ResourceCache({ registry });
    cache.set(route.typeUrl, 'r1', { name: 'r1', pathPrefix: '/api', weight: 3 });
    expect(() => cache.set(route.typeUrl, 'r2', { name: 'r2', pathPrefix: 'api' })).toThrow(/must start with/);
    const server = new XdsServer({ cache });
    const port = await server.listen('127.0.0.1:0');
    const c = new XdsClient({ target: `127.0.0.1:${port}`, node: { id: 'wp' }, registry }).subscribe(route.typeUrl);
    try {
      await c.start().ready();
      expect(c.get<HttpRoute>(route.typeUrl, 'r1')?.value).toEqual({ name: 'r1', pathPrefix: '/api', weight: 3 });
    } finally {
      c.destroy();
      server.destroy();
    }
  });

  it('refuses a second, different definition for a type URL and unknown types', () => {
    const registry = createIstioRegistry();
    const route = routeType();
    registry.register(route);
    registry.register(route);
    expect(() => registry.register(routeType())).toThrow(expect.objectContaining({ code: 'ERR_XDS_TYPE_CONFLICT' }));
    const cache = new ResourceCache({ registry });
    expect(() => cache.set('type.googleapis.com/nope.T', 'x', {})).toThrow(
      expect.objectContaining({ code: 'ERR_XDS_UNKNOWN_TYPE' }),
    );
    const client = new XdsClient({ target: '127.0.0.1:1', node: { id: 'n' }, registry: new TypeRegistry() });
    expect(() => client.subscribe(ADDRESS_TYPE_URL)).toThrow(XdsError);
    client.destroy();
  });
});

describe('resource cache', () => {
  it('a transaction with one invalid resource applies nothing', () => {
    const cache = new ResourceCache({ registry: createIstioRegistry() });
    cache.set(ADDRESS_TYPE_URL, 'a', workload('a', '10.0.0.1'));
    const seq = cache.seq;
    const events: unknown[] = [];
    cache.on('change', (c) => events.push(c));
    expect(() =>
      cache.transaction((tx) => {
        tx.set(ADDRESS_TYPE_URL, 'b', workload('b', '10.0.0.2'));
        tx.delete(ADDRESS_TYPE_URL, 'a');
        tx.set(ADDRESS_TYPE_URL, 'c', { workload: { uid: 'c', addresses: [Buffer.alloc(7)] } });
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_XDS_INVALID_RESOURCE' }));
    expect(cache.seq).toBe(seq);
    expect(cache.get(ADDRESS_TYPE_URL, 'a')).toBeDefined();
    expect(cache.get(ADDRESS_TYPE_URL, 'b')).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('versions are content hashes: re-setting the same content is not a change', () => {
    const cache = new ResourceCache({ registry: createIstioRegistry() });
    cache.set(ADDRESS_TYPE_URL, 'a', workload('a', '10.0.0.1'));
    const v = cache.get(ADDRESS_TYPE_URL, 'a')?.version;
    const seq = cache.seq;
    cache.set(ADDRESS_TYPE_URL, 'a', workload('a', '10.0.0.1'));
    expect(cache.seq).toBe(seq);
    const other = new ResourceCache({ registry: createIstioRegistry() });
    other.set(ADDRESS_TYPE_URL, 'a', workload('a', '10.0.0.1'));
    expect(other.get(ADDRESS_TYPE_URL, 'a')?.version).toBe(v);
    cache.set(ADDRESS_TYPE_URL, 'a', workload('a', '10.0.0.2'));
    expect(cache.get(ADDRESS_TYPE_URL, 'a')?.version).not.toBe(v);
  });

  it('changedSince lists each changed name once and reports lost history after tombstone pruning', () => {
    const cache = new ResourceCache({ registry: createIstioRegistry(), maxTombstones: 2 });
    for (let i = 0; i < 5; i++) cache.set(ADDRESS_TYPE_URL, `w${i}`, workload(`w${i}`, `10.0.0.${i}`));
    const s = cache.seq;
    cache.set(ADDRESS_TYPE_URL, 'w1', workload('w1', '10.1.0.1'));
    cache.set(ADDRESS_TYPE_URL, 'w1', workload('w1', '10.1.0.2'));
    cache.delete(ADDRESS_TYPE_URL, 'w2');
    expect(cache.changedSince(ADDRESS_TYPE_URL, s)?.sort()).toEqual(['w1', 'w2']);
    cache.delete(ADDRESS_TYPE_URL, 'w3');
    cache.delete(ADDRESS_TYPE_URL, 'w4');
    expect(cache.changedSince(ADDRESS_TYPE_URL, s)).toBeUndefined();
    expect(cache.changedSince(ADDRESS_TYPE_URL, cache.seq - 1)).toEqual(['w4']);
  });

  it('Istio validators: service names, authorization names and prefixes', () => {
    const cache = new ResourceCache({ registry: createIstioRegistry() });
    cache.set(ADDRESS_TYPE_URL, 'default/svc.default.svc.cluster.local', {
      service: {
        name: 'svc',
        namespace: 'default',
        hostname: 'svc.default.svc.cluster.local',
        addresses: [{ address: parseIp('10.96.0.1') }],
      },
    });
    expect(() =>
      cache.set(ADDRESS_TYPE_URL, 'svc', {
        service: { name: 'svc', namespace: 'default', hostname: 'svc.default.svc.cluster.local' },
      }),
    ).toThrow(/resource name must be "default\/svc.default.svc.cluster.local"/);
    const AUTHZ = 'type.googleapis.com/istio.security.Authorization';
    cache.set(AUTHZ, 'ns/p', {
      name: 'p',
      namespace: 'ns',
      rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: parseIp('10.0.0.0'), length: 8 }] }] }] }],
    });
    expect(() =>
      cache.set(AUTHZ, 'ns/q', {
        name: 'q',
        namespace: 'ns',
        rules: [{ clauses: [{ matches: [{ sourceIps: [{ address: parseIp('10.0.0.0'), length: 33 }] }] }] }],
      }),
    ).toThrow(/prefix length 33 exceeds 32/);
    expect(() =>
      cache.set(AUTHZ, 'ns/r', {
        name: 'r',
        namespace: 'ns',
        rules: [{ clauses: [{ matches: [{ principals: [{}] }] }] }],
      }),
    ).toThrow(/needs exact, prefix, suffix or presence/);
  });
});

describe('shipped .proto files', () => {
  it('match the embedded sources (well-known google.protobuf types come from protoc’s own include path)', () => {
    for (const [path, text] of Object.entries(PROTO_FILES)) {
      if (path.startsWith('google/protobuf/')) continue;
      expect(readFileSync(join(__dirname, '..', 'proto', path), 'utf8')).toBe(text);
    }
  });
});
