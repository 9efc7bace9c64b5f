import type { Server } from 'node:net';
import { docs, Mesh, pod, splitHostPort, svc, type ZtunnelProcess } from './helpers/mesh.js';
import { dial, echoServer, readAll, readBytes, socksConnect } from './helpers/net.js';

// Node 1 = 127.0.31.x (two clients in two namespaces), node 2 = 127.0.32.x (the echo workload).
const N1 = '127.0.31.1';
const N2 = '127.0.32.1';
const CLIENT = '127.0.31.10';
const OTHER = '127.0.31.11';
const ECHO = '127.0.32.10';

jest.setTimeout(90_000);

describe('ztunnel end to end: L4 authorization through the real path', () => {
  const mesh = new Mesh('policy');
  let z1: ZtunnelProcess;
  let z2: ZtunnelProcess;
  let echo: { server: Server; port: number };

  beforeAll(async () => {
    echo = await echoServer(ECHO);
    mesh.write(
      'mesh.yaml',
      docs(
        'apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n',
        pod('client', { node: 'node-1', ip: CLIENT }),
        pod('other', { ns: 'other', node: 'node-1', ip: OTHER }),
        pod('echo', { node: 'node-2', ip: ECHO }),
        svc('echo', { vip: '10.96.31.1', ports: [{ port: 80, targetPort: echo.port }] }),
      ),
    );
    await mesh.startControlPlane(['node-1', 'node-2']);
    [z1, z2] = await Promise.all([mesh.startZtunnel('node-1', N1), mesh.startZtunnel('node-2', N2)]);
    await Promise.all([z1.waitFor((l) => l.msg === 'ready'), z2.waitFor((l) => l.msg === 'ready')]);
  });
  afterAll(async () => {
    await mesh.close();
    echo.server.close();
  });

  /** Try one round trip from `from` to the echo service; true when it went through. */
  async function allowed(from: string): Promise<boolean> {
    const [h, p] = splitHostPort(z1.socks5);
    const s = await dial(h, p, from);
    const reply = await socksConnect(s, 'echo.default.svc.cluster.local', 80);
    if (reply !== 0) {
      s.destroy();
      return false;
    }
    s.end('x');
    const back = await readAll(s).catch(() => Buffer.alloc(0));
    return back.toString() === 'x';
  }

  /**
   * Write a policy file and wait until node 2 applied the change (also the workload update when the change
   * reaches the workload through its policy list, as PeerAuthentication does).
   */
  async function applyPolicy(name: string, yaml: string | undefined, alsoWorkload = false): Promise<void> {
    const applied = [z2.next((l) => l.msg === 'configuration updated' && l.type === 'Authorization')];
    if (alsoWorkload)
      applied.push(
        z2.next(
          (l) => l.msg === 'configuration updated' && l.type === 'Address' && String(l.updated ?? '').includes('echo'),
        ),
      );
    if (yaml === undefined) mesh.remove(`${name}.yaml`);
    else mesh.write(`${name}.yaml`, yaml);
    await Promise.all(applied);
  }

  function policy(name: string, spec: string): string {
    return `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: default}\nspec:\n${spec}`;
  }

  const cases: Array<[string, string, { client: boolean; other: boolean }]> = [
    [
      'principals',
      '  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]\n',
      { client: true, other: false },
    ],
    [
      'notPrincipals',
      '  rules: [{from: [{source: {notPrincipals: ["cluster.local/ns/default/sa/client"]}}]}]\n',
      { client: false, other: true },
    ],
    ['namespaces', '  rules: [{from: [{source: {namespaces: ["other"]}}]}]\n', { client: false, other: true }],
    ['notNamespaces', '  rules: [{from: [{source: {notNamespaces: ["other"]}}]}]\n', { client: true, other: false }],
    [
      'ipBlocks (the real source address crosses the tunnel)',
      `  rules: [{from: [{source: {ipBlocks: ["${CLIENT}/32"]}}]}]\n`,
      { client: true, other: false },
    ],
    ['notIpBlocks', `  rules: [{from: [{source: {notIpBlocks: ["${CLIENT}/32"]}}]}]\n`, { client: false, other: true }],
    [
      'serviceAccounts',
      '  rules: [{from: [{source: {serviceAccounts: ["other/other"]}}]}]\n',
      { client: false, other: true },
    ],
    [
      'notServiceAccounts',
      '  rules: [{from: [{source: {notServiceAccounts: ["other/other"]}}]}]\n',
      { client: true, other: false },
    ],
    ['ports', '  rules: [{to: [{operation: {ports: ["1"]}}]}]\n', { client: false, other: false }],
    ['notPorts', `  rules: [{to: [{operation: {notPorts: ["1"]}}]}]\n`, { client: true, other: true }],
    [
      'when destination.ip',
      `  rules: [{when: [{key: destination.ip, values: ["${ECHO}"]}]}]\n`,
      { client: true, other: true },
    ],
    [
      'when destination.ip notValues',
      `  rules: [{when: [{key: destination.ip, notValues: ["${ECHO}"]}]}]\n`,
      { client: false, other: false },
    ],
    [
      'DENY with principals',
      '  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/other/sa/other"]}}]}]\n',
      { client: true, other: false },
    ],
    [
      'DENY with ports',
      '  action: DENY\n  rules: [{to: [{operation: {ports: ["ECHO_PORT"]}}]}]\n',
      { client: false, other: false },
    ],
    ['empty ALLOW denies everything', '  {}\n', { client: false, other: false }],
  ];

  it.each(cases)('ALLOW/DENY on %s', async (_name, spec, expected) => {
    const realSpec = spec.replace('ECHO_PORT', String(echo.port));
    await applyPolicy('p', policy('p', realSpec));
    expect({ client: await allowed(CLIENT), other: await allowed(OTHER) }).toEqual(expected);
    await applyPolicy('p', undefined);
    expect(await allowed(OTHER)).toBe(true);
  });

  it('answers 401 on the tunnel and logs why', async () => {
    await applyPolicy('deny-all', policy('deny-all', '  {}\n'));
    try {
      const inbound = z2.next((l) => l.scope === 'access' && String(l.error ?? '').includes('denied by policy'));
      const outbound = z1.next((l) => l.scope === 'access' && String(l.error ?? '').includes('401'));
      expect(await allowed(CLIENT)).toBe(false);
      expect((await inbound)['src.identity']).toBe('spiffe://cluster.local/ns/default/sa/client');
      expect((await outbound).direction).toBe('outbound');
    } finally {
      await applyPolicy('deny-all', undefined);
    }
  });

  it('closes a live connection that a new policy denies, and keeps the allowed one', async () => {
    const [h, p] = splitHostPort(z1.socks5);
    const open = async (from: string) => {
      const s = await dial(h, p, from);
      expect(await socksConnect(s, 'echo.default.svc.cluster.local', 80)).toBe(0);
      s.write('hello');
      expect((await readBytes(s, 5)).toString()).toBe('hello');
      return s;
    };
    let applied = false;
    try {
      const victim = await open(CLIENT);
      const survivor = await open(OTHER);
      const closedLog = z2.next((l) => l.msg === 'closed a connection that policy now denies');
      // z1 cuts the client connection (FIN or RST, depending on how the tunnel was torn down).
      const closed = new Promise<void>((r) => {
        victim.once('end', r);
        victim.once('error', () => r());
        victim.once('close', () => r());
      });
      victim.resume();
      await applyPolicy(
        'deny-client',
        policy(
          'deny-client',
          '  action: DENY\n  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/client"]}}]}]\n',
        ),
      );
      applied = true;
      await closed;
      expect((await closedLog)['src.addr']).toMatch(/^127\.0\.31\.10:/);
      survivor.write('still here');
      expect((await readBytes(survivor, 10)).toString()).toBe('still here');
      survivor.destroy();
    } finally {
      if (applied) await applyPolicy('deny-client', undefined);
    }
  });

  it('plaintext inbound: allowed without identity under PERMISSIVE, refused under STRICT', async () => {
    const plain = async (): Promise<boolean> => {
      const s = await dial(ECHO, 15006, OTHER);
      s.end('plain');
      const back = await readAll(s).then(
        (b) => b.toString(),
        () => '',
      );
      return back === 'plain';
    };
    expect(await plain()).toBe(true);
    await applyPolicy(
      'strict',
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: default}\nspec: {mtls: {mode: STRICT}}\n',
      true,
    );
    expect(await plain()).toBe(false);
    // mTLS traffic is still fine under STRICT.
    expect(await allowed(CLIENT)).toBe(true);
    await applyPolicy('strict', undefined, true);
    expect(await plain()).toBe(true);
  });
});
