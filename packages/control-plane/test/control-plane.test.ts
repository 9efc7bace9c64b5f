import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CaClient, TlsChannelCredentials } from '@ambient-ts/ca';
import { ADDRESS_TYPE_URL, AUTHORIZATION_TYPE_URL, XdsClient } from '@ambient-ts/xds';
import { ControlPlane } from '../src/control-plane.js';
import { ManualScheduler, tempDir, yaml } from './helpers.js';

const ZTUNNEL_1 = 'ztunnel-node-1-token-0123456789';
const ZTUNNEL_2 = 'ztunnel-node-2-token-0123456789';
const WAYPOINT = 'waypoint-token-abcdefghijklmnop';
const ZT_ID = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';

const mesh = yaml(`
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {selector: {app: web}, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {nodeName: node-1, serviceAccountName: web}
status: {podIP: 127.0.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: db-1, namespace: shop, labels: {app: db}}
spec: {nodeName: node-2, serviceAccountName: db}
status: {podIP: 127.0.2.10}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web-allow, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: db-allow, namespace: shop}
spec:
  selector: {matchLabels: {app: db}}
  rules: [{from: [{source: {namespaces: [shop]}}]}]
`);

const tokens = yaml(`
tokens:
- {token: ${ZTUNNEL_1}, identity: "${ZT_ID}", kind: ztunnel, node: node-1}
- {token: ${ZTUNNEL_2}, identity: "${ZT_ID}", kind: ztunnel, node: node-2}
- {token: ${WAYPOINT}, identity: "spiffe://cluster.local/ns/shop/sa/waypoint", kind: waypoint}
`);

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('ControlPlane end to end (real TLS gRPC, XdsClient and CaClient)', () => {
  let dir: string;
  let cleanup: () => void;
  let cp: ControlPlane | undefined;
  const closers: Array<() => unknown> = [];
  let scheduler: ManualScheduler;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir('cp-e2e-'));
    scheduler = new ManualScheduler();
    writeFileSync(join(dir, 'tokens.yaml'), tokens);
    require('node:fs').mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config', 'mesh.yaml'), mesh);
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
    await cp?.close();
    cp = undefined;
    cleanup();
  });

  async function start(): Promise<ControlPlane> {
    cp = await ControlPlane.start({
      configDir: join(dir, 'config'),
      stateDir: join(dir, 'state'),
      tokens: join(dir, 'tokens.yaml'),
      listen: '127.0.0.1:0',
      monitoringListen: '127.0.0.1:0',
      scheduler,
    });
    return cp;
  }

  function xdsClient(
    c: ControlPlane,
    token: string,
    nodeId = 'ztunnel~127.0.1.1~ztunnel-1.istio-system~istio-system.svc.cluster.local',
  ) {
    const root = readFileSync(join(dir, 'state', 'root-cert.pem'));
    const client = new XdsClient({
      target: `127.0.0.1:${c.grpcPort}`,
      credentials: new TlsChannelCredentials({ serverName: '127.0.0.1', trustBundle: root }),
      token: () => token,
      node: { id: nodeId },
    });
    client.subscribe(ADDRESS_TYPE_URL).subscribe(AUTHORIZATION_TYPE_URL).start();
    closers.push(() => client.close());
    return client;
  }

  function caClient(c: ControlPlane, token: string, impersonate = true) {
    const client = new CaClient({
      address: `127.0.0.1:${c.grpcPort}`,
      trustBundle: () => readFileSync(join(dir, 'state', 'root-cert.pem')),
      token,
      impersonate,
    });
    closers.push(() => client.close());
    return client;
  }

  it('serves translated resources over Delta xDS with a per-node policy view, and a file change reaches the client', async () => {
    const c = await start();
    expect(statSync(join(dir, 'state', 'root-cert.pem')).isFile()).toBe(true);
    const z1 = xdsClient(c, ZTUNNEL_1);
    await z1.ready();
    expect([...z1.resources(ADDRESS_TYPE_URL).keys()].sort()).toEqual([
      'Kubernetes//Pod/shop/db-1',
      'Kubernetes//Pod/shop/web-1',
      'shop/web.shop.svc.cluster.local',
    ]);
    const web = z1.get<{ type: string; workload: { authorizationPolicies: string[]; node: string } }>(
      ADDRESS_TYPE_URL,
      'Kubernetes//Pod/shop/web-1',
    );
    expect(web?.value.workload).toMatchObject({ authorizationPolicies: ['shop/web-allow'], node: 'node-1' });
    // The Service port's appProtocol crosses the wire as Port.app_protocol.
    expect(
      z1.get<{ service: { ports: unknown[] } }>(ADDRESS_TYPE_URL, 'shop/web.shop.svc.cluster.local')?.value.service
        .ports,
    ).toEqual([{ servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' }]);
    // node-1 runs only web-1: its ztunnel needs web-allow, not db-allow.
    expect([...z1.resources(AUTHORIZATION_TYPE_URL).keys()]).toEqual(['shop/web-allow']);
    const wp = xdsClient(c, WAYPOINT, 'waypoint~127.0.1.2~wp.shop~shop.svc.cluster.local');
    await wp.ready();
    expect([...wp.resources(AUTHORIZATION_TYPE_URL).keys()].sort()).toEqual(['shop/db-allow', 'shop/web-allow']);
    // Only the ztunnel's Authorizations are filtered (tracked name by name); its Addresses and everything the
    // waypoint gets stay on the shared wildcard fast path.
    const tracked = (kind: string) =>
      Object.fromEntries(
        (c.xds.clients().find((x) => (x.principal as { kind: string }).kind === kind)?.types ?? []).map((t) => [
          t.typeUrl,
          t.trackedNames,
        ]),
      );
    expect(tracked('ztunnel')).toEqual({ [ADDRESS_TYPE_URL]: 0, [AUTHORIZATION_TYPE_URL]: 1 });
    expect(tracked('waypoint')).toEqual({ [ADDRESS_TYPE_URL]: 0, [AUTHORIZATION_TYPE_URL]: 0 });

    // A pod moves to node-1: the change is pushed and node-1's view now includes db-allow.
    const updated = new Promise<void>((resolve) => {
      z1.on('update', () => {
        if (z1.get(AUTHORIZATION_TYPE_URL, 'shop/db-allow')) resolve();
      });
    });
    writeFileSync(join(dir, 'config', 'mesh.yaml'), mesh.replace('nodeName: node-2', 'nodeName: node-1'));
    await scheduler.nextTask();
    scheduler.runAll();
    await updated;
    expect(
      z1.get<{ workload: { node: string } }>(ADDRESS_TYPE_URL, 'Kubernetes//Pod/shop/db-1')?.value.workload.node,
    ).toBe('node-1');

    const conns = JSON.parse((await get(c.monitoringPort, '/debug/connections')).body);
    expect(conns).toHaveLength(2);
    expect(conns.map((x: { principal: { kind: string } }) => x.principal.kind).sort()).toEqual(['waypoint', 'ztunnel']);
    expect(conns[0].types[0].ackedVersion).not.toBe('');
    const metrics = (await get(c.monitoringPort, '/metrics')).body;
    expect(metrics).toMatch(/pilot_xds\{kind="ztunnel"\} 1/);
    expect(metrics).toMatch(/pilot_xds_pushes\{type="Address"\} [1-9]/);
    expect(metrics).toMatch(/pilot_proxy_convergence_time_count [1-9]/);
  });

  it('serves state-of-the-world xDS too', async () => {
    const c = await start();
    const root = readFileSync(join(dir, 'state', 'root-cert.pem'));
    const client = new XdsClient({
      target: `127.0.0.1:${c.grpcPort}`,
      credentials: new TlsChannelCredentials({ serverName: '127.0.0.1', trustBundle: root }),
      token: () => WAYPOINT,
      node: { id: 'waypoint~127.0.1.2~wp.shop~shop.svc.cluster.local' },
      protocol: 'sotw',
    });
    closers.push(() => client.close());
    client.subscribe(ADDRESS_TYPE_URL).subscribe(AUTHORIZATION_TYPE_URL).start();
    await client.ready();
    expect(client.resources(ADDRESS_TYPE_URL).size).toBe(3);
    expect([...client.resources(AUTHORIZATION_TYPE_URL).keys()].sort()).toEqual(['shop/db-allow', 'shop/web-allow']);
  });

  it('refuses xDS streams without a valid token', async () => {
    const c = await start();
    const bad = xdsClient(c, 'not-a-known-token-at-all');
    const err = await new Promise<Error>((resolve) => bad.once('disconnected', resolve));
    expect(err.message).toMatch(/UNAUTHENTICATED|not authenticated|token/i);
  });

  it('node authorization: a ztunnel gets certificates only for workloads on its node; a waypoint only its own', async () => {
    const c = await start();
    const z1 = caClient(c, ZTUNNEL_1);
    const cert = await z1.fetchCertificate('spiffe://cluster.local/ns/shop/sa/web');
    expect(cert.identity).toBe('spiffe://cluster.local/ns/shop/sa/web');
    expect(cert.trustBundle).toBe(readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8'));
    await expect(z1.fetchCertificate('spiffe://cluster.local/ns/shop/sa/db')).rejects.toMatchObject({
      code: 'ERR_CA_REFUSED',
      message: expect.stringContaining('PERMISSION_DENIED'),
    });
    const z2 = caClient(c, ZTUNNEL_2);
    await expect(z2.fetchCertificate('spiffe://cluster.local/ns/shop/sa/db')).resolves.toMatchObject({
      identity: 'spiffe://cluster.local/ns/shop/sa/db',
    });
    // Its own identity, without impersonation.
    await expect(caClient(c, ZTUNNEL_1, false).fetchCertificate(ZT_ID)).resolves.toMatchObject({ identity: ZT_ID });

    const w = caClient(c, WAYPOINT, false);
    await expect(w.fetchCertificate('spiffe://cluster.local/ns/shop/sa/waypoint')).resolves.toBeDefined();
    await expect(
      caClient(c, WAYPOINT, true).fetchCertificate('spiffe://cluster.local/ns/shop/sa/web'),
    ).rejects.toMatchObject({
      code: 'ERR_CA_REFUSED',
    });
    await expect(caClient(c, 'unknown-token-0123456789', false).fetchCertificate(ZT_ID)).rejects.toMatchObject({
      message: expect.stringContaining('UNAUTHENTICATED'),
    });
    // A malformed CSR and a foreign cluster id are refused with their own status codes.
    await expect(caClient(c, ZTUNNEL_1, false).createCertificate('not a csr')).rejects.toMatchObject({
      message: expect.stringContaining('INVALID_ARGUMENT'),
    });
    const foreign = new CaClient({
      address: `127.0.0.1:${c.grpcPort}`,
      trustBundle: () => readFileSync(join(dir, 'state', 'root-cert.pem')),
      token: ZTUNNEL_1,
      clusterId: 'other-cluster',
    });
    closers.push(() => foreign.close());
    await expect(foreign.fetchCertificate(ZT_ID)).rejects.toMatchObject({
      message: expect.stringContaining('PERMISSION_DENIED'),
    });
    const metrics = (await get(c.monitoringPort, '/metrics')).body;
    expect(metrics).toMatch(/citadel_server_success_cert_issuance_count 4/);
    expect(metrics).toMatch(/ambient_cp_certificate_refusals_total\{code="7"\} [1-9]/);
  });

  it("the CA's per-caller limit on bad requests applies on the shared port, without slowing others", async () => {
    const c = await start();
    const flooder = caClient(c, ZTUNNEL_1, false);
    // The default budget: 20 bad requests in a burst.
    for (let i = 0; i < 20; i++) {
      await expect(flooder.createCertificate('not a csr')).rejects.toMatchObject({
        message: expect.stringContaining('INVALID_ARGUMENT'),
      });
    }
    await expect(flooder.createCertificate('not a csr')).rejects.toMatchObject({
      message: expect.stringContaining('RESOURCE_EXHAUSTED'),
    });
    await expect(flooder.fetchCertificate(ZT_ID)).rejects.toMatchObject({
      message: expect.stringContaining('RESOURCE_EXHAUSTED'),
    });
    // Another credential is not affected.
    await expect(
      caClient(c, WAYPOINT, false).fetchCertificate('spiffe://cluster.local/ns/shop/sa/waypoint'),
    ).resolves.toBeDefined();
    const metrics = (await get(c.monitoringPort, '/metrics')).body;
    expect(metrics).toMatch(/ambient_cp_certificate_refusals_total\{code="3"\} 20/);
    expect(metrics).toMatch(/ambient_cp_certificate_refusals_total\{code="8"\} 2/);
  });

  it('a mesh certificate authenticates xDS (a proxy renewing with its own identity)', async () => {
    const c = await start();
    const cert = await caClient(c, WAYPOINT, false).fetchCertificate('spiffe://cluster.local/ns/shop/sa/waypoint');
    const root = readFileSync(join(dir, 'state', 'root-cert.pem'));
    const client = new XdsClient({
      target: `127.0.0.1:${c.grpcPort}`,
      credentials: new TlsChannelCredentials({ serverName: '127.0.0.1', trustBundle: root, clientCertificate: cert }),
      node: { id: 'waypoint~x' },
    });
    closers.push(() => client.close());
    client.subscribe(ADDRESS_TYPE_URL).subscribe(AUTHORIZATION_TYPE_URL).start();
    await client.ready();
    expect(client.resources(ADDRESS_TYPE_URL).size).toBe(3);
    const conns = JSON.parse((await get(c.monitoringPort, '/debug/connections')).body);
    expect(conns[0].principal).toEqual({
      identity: 'spiffe://cluster.local/ns/shop/sa/waypoint',
      kind: 'mesh',
      authenticatedBy: 'client-certificate',
    });
  });

  it('monitoring: ready, config_dump, config-errors', async () => {
    writeFileSync(
      join(dir, 'config', 'bad.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: ghost, namespace: shop}\n',
    );
    const c = await start();
    expect(await get(c.monitoringPort, '/ready')).toEqual({ status: 200, body: 'ready\n' });
    const dump = JSON.parse((await get(c.monitoringPort, '/debug/config_dump')).body);
    expect(dump.addresses['Kubernetes//Pod/shop/web-1'].workload.addresses).toEqual(['127.0.1.10']);
    expect(Object.keys(dump.authorizations).sort()).toEqual(['shop/db-allow', 'shop/web-allow']);
    const errors = JSON.parse((await get(c.monitoringPort, '/debug/config-errors')).body);
    expect(errors).toEqual([
      expect.objectContaining({ code: 'pod-without-ip', file: 'bad.yaml', object: 'Pod shop/ghost' }),
    ]);
    expect((await get(c.monitoringPort, '/nope')).status).toBe(404);
    await c.close();
    cp = undefined;
  });

  it('logs each configuration problem once, and once more when it is resolved', async () => {
    writeFileSync(
      join(dir, 'config', 'bad.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: ghost, namespace: shop}\n',
    );
    const lines: Array<{ level: string; msg: string }> = [];
    const log = (level: string) => (msg: string) => lines.push({ level, msg });
    cp = await ControlPlane.start({
      configDir: join(dir, 'config'),
      stateDir: join(dir, 'state'),
      listen: '127.0.0.1:0',
      monitoringListen: '127.0.0.1:0',
      scheduler,
      logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    });
    const ghost = () => lines.filter((l) => l.msg.includes('Pod shop/ghost'));
    expect(ghost()).toEqual([
      {
        level: 'error',
        msg: expect.stringContaining('config error: bad.yaml:1: Pod shop/ghost: status.podIP is missing'),
      },
    ]);
    // An unrelated change: the standing problem is not logged again.
    writeFileSync(join(dir, 'config', 'mesh.yaml'), mesh.replace('127.0.1.10', '127.0.1.11'));
    await scheduler.nextTask();
    scheduler.runAll();
    await (cp.source as import('../src/directory-source.js').DirectorySource).settled();
    await cp.settled();
    expect(cp.translator.addresses().has('Kubernetes//Pod/shop/web-1')).toBe(true);
    expect(ghost()).toHaveLength(1);
    // Fixing it logs the resolution.
    writeFileSync(
      join(dir, 'config', 'bad.yaml'),
      'apiVersion: v1\nkind: Pod\nmetadata: {name: ghost, namespace: shop}\nstatus: {podIP: 127.0.1.12}\n',
    );
    await scheduler.nextTask();
    scheduler.runAll();
    await (cp.source as import('../src/directory-source.js').DirectorySource).settled();
    await cp.settled();
    expect(ghost()).toEqual([
      expect.objectContaining({ level: 'error' }),
      { level: 'info', msg: expect.stringContaining('config problem resolved: bad.yaml:1: Pod shop/ghost') },
    ]);
    expect(cp.problems()).toEqual([]);
  });

  it('restart with the same state dir keeps the CA; proxies reconnect on their own', async () => {
    const first = await start();
    const bundle = readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8');
    const port = first.grpcPort;
    const z1 = xdsClient(first, ZTUNNEL_1);
    await z1.ready();
    const disconnected = new Promise((resolve) => z1.once('disconnected', resolve));
    await first.close();
    cp = undefined;
    await disconnected;
    cp = await ControlPlane.start({
      configDir: join(dir, 'config'),
      stateDir: join(dir, 'state'),
      tokens: join(dir, 'tokens.yaml'),
      listen: `127.0.0.1:${port}`,
      monitoringListen: '127.0.0.1:0',
      scheduler,
    });
    expect(readFileSync(join(dir, 'state', 'root-cert.pem'), 'utf8')).toBe(bundle);
    await new Promise<void>((resolve) => z1.once('connected', () => resolve()));
    const cert = await caClient(cp, ZTUNNEL_1).fetchCertificate('spiffe://cluster.local/ns/shop/sa/web');
    expect(cert.trustBundle).toBe(bundle);
    expect(z1.resources(ADDRESS_TYPE_URL).size).toBe(3);
  });

  it('rejects bad settings with clear errors', async () => {
    await expect(ControlPlane.start({ configDir: join(dir, 'config'), listen: 'nonsense' })).rejects.toMatchObject({
      code: 'ERR_CP_BAD_SETTING',
    });
    await expect(
      ControlPlane.start({ configDir: join(dir, 'missing'), listen: '127.0.0.1:0', monitoringListen: '127.0.0.1:0' }),
    ).rejects.toMatchObject({
      code: 'ERR_CP_CONFIG_DIR',
    });
    writeFileSync(join(dir, 'bad-tokens.yaml'), 'tokens: [{token: short, identity: x, kind: ztunnel}]');
    await expect(
      ControlPlane.start({ configDir: join(dir, 'config'), tokens: join(dir, 'bad-tokens.yaml') }),
    ).rejects.toMatchObject({ code: 'ERR_CP_TOKENS' });
  });
});
