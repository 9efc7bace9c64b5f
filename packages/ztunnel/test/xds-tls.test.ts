import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, TlsChannelCredentials } from '@ambient-ts/ca';
import { ControlPlane, silentLogger } from '@ambient-ts/control-plane';
import { ADDRESS_TYPE_URL, XdsClient, type XdsError } from '@ambient-ts/xds';

const TOKEN = 'bootstrap-token-for-node-1-0123456789';

describe('xDS channel to the control plane', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  it('refuses a control plane whose serving certificate is from another CA', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zt-xds-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'config'));
    writeFileSync(
      join(dir, 'tokens.yaml'),
      `tokens:\n- {token: ${TOKEN}, identity: "spiffe://cluster.local/ns/istio-system/sa/ztunnel", kind: ztunnel, node: node-1}\n`,
    );
    const cp = await ControlPlane.start({
      configDir: join(dir, 'config'),
      stateDir: join(dir, 'state'),
      tokens: join(dir, 'tokens.yaml'),
      listen: '127.0.0.1:0',
      monitoringListen: '127.0.0.1:0',
      logger: silentLogger,
    });
    cleanups.push(() => cp.close());
    const stranger = await CertificateAuthority.create();
    cleanups.push(() => stranger.close());

    const client = new XdsClient({
      target: `127.0.0.1:${cp.grpcPort}`,
      credentials: new TlsChannelCredentials({ serverName: '127.0.0.1', trustBundle: stranger.trustBundle }),
      token: () => TOKEN,
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

  it('emits no DEP0123 warning for an IP control-plane address with TlsChannelCredentials (createSsl would)', () => {
    const script = join(__dirname, 'fixtures', 'xds-tls-warnings.ts');
    const r = spawnSync(
      process.execPath,
      ['--no-warnings', '--conditions=@ambient-ts/source', '--import', 'tsx', script],
      { encoding: 'utf8', timeout: 25_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
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
