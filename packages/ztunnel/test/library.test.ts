import { join } from 'node:path';
import { parseConfig } from '../src/config.js';
import { Logger } from '../src/logger.js';
import { Ztunnel } from '../src/ztunnel.js';
import { docs, Mesh, pod } from './helpers/mesh.js';

const NODE = '127.0.101.1';

jest.setTimeout(30_000);

describe('Ztunnel as a library', () => {
  const mesh = new Mesh('library');
  afterAll(() => mesh.close());

  it('starts in process, becomes ready, reports its addresses and closes', async () => {
    mesh.write('mesh.yaml', docs(pod('app', { node: 'node-1', ip: '127.0.101.10' })));
    await mesh.startControlPlane(['node-1']);
    const parsed = parseConfig([
      '--control-plane',
      `127.0.0.1:${mesh.cpPort}`,
      '--trust-bundle',
      join(mesh.stateDir, 'root-cert.pem'),
      '--token-file',
      join(mesh.dir, 'token-node-1'),
      '--node',
      'node-1',
      '--node-ip',
      NODE,
      '--socks5-port',
      '0',
      '--admin-port',
      '0',
      '--metrics-port',
      '0',
      '--readiness-port',
      '0',
    ]);
    if (parsed.help) throw new Error('unexpected help');
    const lines: string[] = [];
    const z = await Ztunnel.start({ config: parsed.config, logger: new Logger({ write: (l) => lines.push(l) }) });
    try {
      await z.whenReady();
      expect(z.ready).toBe(true);
      const a = z.addresses();
      expect(a.socks5).toMatch(/^127\.0\.101\.1:\d+$/);
      expect(a.hbone).toEqual(['127.0.101.10:15008']);
      expect(z.state.localWorkloads('node-1').map((w) => w.name)).toEqual(['app']);
      expect(lines.join('')).toContain(' ready ');
    } finally {
      await z.close();
    }
    await expect(z.whenReady()).rejects.toMatchObject({ code: 'ERR_ZTUNNEL_CLOSED' });
    await z.close();
  });
});
