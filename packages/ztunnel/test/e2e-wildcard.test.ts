import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { CaClient } from '@ambient-ts/ca';
import { HboneClient } from '@ambient-ts/hbone';
import { docs, Mesh, pod, svc, type ZtunnelProcess } from './helpers/mesh.js';
import { echoServer } from './helpers/net.js';

// Workloads at 127.0.92.x on node 2, whose ztunnel takes inbound on one wildcard listener (0.0.0.0). A
// wildcard bind covers every loopback address, so no other ztunnel can share its port on this machine: the
// peer is a plain HboneClient with a mesh certificate, and this file uses HBONE port 15108.
const N2 = '127.0.92.1';
const ECHO = '127.0.92.10';
const OTHER = '127.0.92.11';
const PEER_TOKEN = 'peer-bootstrap-token-0123456789';
const PEER_ID = 'spiffe://cluster.local/ns/default/sa/peer';

jest.setTimeout(60_000);

describe('ztunnel end to end: one wildcard inbound listener for all local workloads', () => {
  const mesh = new Mesh('wildcard');
  let z2: ZtunnelProcess;
  let echo: { server: Server; port: number };
  let other: { server: Server; port: number };
  let client: HboneClient;

  beforeAll(async () => {
    echo = await echoServer(ECHO);
    other = await echoServer(OTHER);
    mesh.write(
      'mesh.yaml',
      docs(
        pod('echo', { node: 'node-2', ip: ECHO }),
        pod('other', { node: 'node-2', ip: OTHER }),
        pod('remote', { node: 'node-1', ip: '127.0.91.50' }),
        svc('echo', { vip: '10.96.92.1', ports: [{ port: 80, targetPort: echo.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-2'], 0, [`- {token: ${PEER_TOKEN}, identity: "${PEER_ID}", kind: waypoint}`]);
    z2 = await mesh.startZtunnel('node-2', N2, [
      '--hbone-port',
      '15108',
      '--plaintext-port',
      '15106',
      '--inbound-bind',
      '0.0.0.0',
    ]);
    await z2.waitFor((l) => l.msg === 'ready');
    const ca = new CaClient({
      address: `127.0.0.1:${mesh.cpPort}`,
      trustBundle: () => readFileSync(join(mesh.stateDir, 'root-cert.pem')),
      token: PEER_TOKEN,
    });
    const cert = await ca.fetchCertificate(PEER_ID);
    ca.close();
    client = new HboneClient({ credentials: cert });
  });
  afterAll(async () => {
    await client?.close();
    await mesh.close();
    echo.server.close();
    other.server.close();
  });

  it('serves every local workload, presenting the certificate of the workload the peer reached', async () => {
    expect((await z2.waitFor((l) => l.msg === 'listening' && l.scope === 'inbound')).workload_ip).toBe('*');
    for (const [ip, port, who] of [
      [ECHO, echo.port, 'echo'],
      [OTHER, other.port, 'other'],
    ] as const) {
      const inbound = z2.next((l) => l.scope === 'access' && l.direction === 'inbound');
      // The client refuses any server identity but the destination workload's.
      const s = await client.connect(
        { address: ip, port },
        { expectedIdentities: `spiffe://cluster.local/ns/default/sa/${who}`, server: { address: ip, port: 15108 } },
      );
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise((r) => s.once('end', r));
      s.end(`to ${who}`);
      await ended;
      expect(Buffer.concat(chunks).toString()).toBe(`to ${who}`);
      expect(await inbound).toMatchObject({
        'src.identity': PEER_ID,
        'dst.workload': who,
        'dst.hbone_addr': `${ip}:15108`,
      });
    }
  });

  it('answers 400 for an authority that is not a workload on this node, and 503 for an unknown one', async () => {
    const via = {
      expectedIdentities: 'spiffe://cluster.local/ns/default/sa/echo',
      server: { address: ECHO, port: 15108 },
    };
    await expect(client.connect({ address: '127.0.91.50', port: 1 }, via)).rejects.toMatchObject({
      code: 'ERR_HBONE_STATUS',
      status: 400,
    });
    await expect(client.connect({ address: '127.0.92.99', port: 1 }, via)).rejects.toMatchObject({
      code: 'ERR_HBONE_STATUS',
      status: 503,
    });
  });
});
