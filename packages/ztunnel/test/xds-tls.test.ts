import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CertificateAuthority, TlsChannelCredentials } from '@ambient-ts/ca';
import { ADDRESS_TYPE_URL, XdsClient, type XdsError } from '@ambient-ts/xds';
import { Mesh, pod } from './helpers/mesh.js';

const run = promisify(execFile);

describe('xDS channel to the control plane', () => {
  const mesh = new Mesh('xds-tls');
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    mesh.write('pod.yaml', pod('web-1', { node: 'node-1', ip: '127.0.1.10' }));
    await mesh.startControlPlane(['node-1']);
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  afterAll(() => mesh.close());

  it('refuses a control plane whose serving certificate is from another CA', async () => {
    const stranger = await CertificateAuthority.create();
    cleanups.push(() => stranger.close());
    const client = new XdsClient({
      target: `127.0.0.1:${mesh.cpPort}`,
      credentials: new TlsChannelCredentials({ serverName: '127.0.0.1', trustBundle: stranger.trustBundle }),
      token: () => mesh.token('node-1'),
      node: { id: 'ztunnel~127.0.1.1~ztunnel-1.istio-system~istio-system.svc.cluster.local' },
    });
    cleanups.push(() => client.close());
    const disconnected = once(client, 'disconnected');
    client.subscribe(ADDRESS_TYPE_URL).start();
    const [err] = (await disconnected) as [XdsError];
    expect(err.code).toBe('ERR_XDS_STREAM');
    expect(err.message).toMatch(/self[- ]signed certificate|unable to (get|verify)/i);
    expect(client.resources(ADDRESS_TYPE_URL).size).toBe(0);
  });

  it('emits no DEP0123 warning for an IP control-plane address with TlsChannelCredentials (createSsl would)', async () => {
    const args = [
      '--no-warnings',
      '--conditions=@ambient-ts/source',
      '--import',
      'tsx',
      join(__dirname, 'fixtures', 'xds-tls-warnings.ts'),
      `127.0.0.1:${mesh.cpPort}`,
      join(mesh.stateDir, 'root-cert.pem'),
      join(mesh.dir, 'token-node-1'),
    ];
    // Asynchronous: the control plane runs in this process and must keep serving.
    const r = await run(process.execPath, args, { encoding: 'utf8', timeout: 25_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as {
      resources: { ours: number; control: number };
      warnings: { phase: string; code?: string }[];
    };
    // Both channels really synced: the pod's workload arrived over each.
    expect(out.resources).toEqual({ ours: 1, control: 1 });
    const dep0123 = out.warnings.filter((w) => w.code === 'DEP0123').map((w) => w.phase);
    // The control proves the listener would have seen the warning.
    expect(dep0123).toEqual(['create-ssl']);
  });
});
