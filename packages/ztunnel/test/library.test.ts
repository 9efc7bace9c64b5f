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
    const config = mesh.ztunnelConfig('node-1', NODE);
    const lines: string[] = [];
    const z = await Ztunnel.start({ config, logger: new Logger({ write: (l) => lines.push(l) }) });
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
