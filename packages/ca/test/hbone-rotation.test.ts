/**
 * The whole chain in one place: a CA served over gRPC, two proxies each with a SecretManager fetching
 * through CaClient, and HBONE (mutual TLS 1.3 + HTTP/2 CONNECT) between them, across a certificate
 * rotation and a root rotation. Open tunnels must keep working; new tunnels must use the new certificates.
 */

import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { HboneClient, HboneServer } from '@ambient-ts/hbone';
import {
  CaClient,
  CaServer,
  CertificateAuthority,
  ManualClock,
  SecretManager,
  TokenAuthenticator,
  type WorkloadCertificate,
} from '../src/index.js';
import { HTTPBIN, SLEEP } from './helpers.js';

const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** Writes `msg` and resolves with what the echo sends back (same length). */
function roundTrip(s: Duplex, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString();
      if (got.length >= msg.length) {
        s.off('data', onData);
        s.off('error', reject);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write(msg);
  });
}

function issuer(cert: WorkloadCertificate, roots: string[]): number {
  const leaf = new X509Certificate(cert.certChain);
  return roots.findIndex((r) => leaf.verify(new X509Certificate(r).publicKey));
}

it('mTLS between two HBONE endpoints with SecretManager certificates, across a certificate rotation and a root rotation', async () => {
  // The CA's clock only moves for the root activation (1 s), so every certificate is valid in real time,
  // which is what OpenSSL checks during the handshakes.
  const caClock = new ManualClock();
  const ca = await CertificateAuthority.create({ clock: caClock });
  cleanups.push(() => ca.close());
  const caServer = new CaServer({
    ca,
    authenticators: [
      new TokenAuthenticator([
        { token: 'sleep-token', identity: SLEEP },
        { token: 'httpbin-token', identity: HTTPBIN },
      ]),
    ],
  });
  const caPort = await caServer.listen(0, '127.0.0.1');
  cleanups.push(() => caServer.close());

  // Each proxy has its own clock (renewals are triggered by moving it) and its own CA client.
  const proxy = (token: string) => {
    const clock = new ManualClock();
    const client = new CaClient({
      address: `127.0.0.1:${caPort}`,
      serverName: 'localhost',
      trustBundle: () => ca.trustBundle,
      token,
    });
    const sm = new SecretManager({ fetcher: client, clock, random: () => 0 });
    cleanups.push(
      () => sm.close(),
      () => client.close(),
    );
    const served: string[] = [];
    const provider = async (id: string) => {
      const c = await sm.getCertificate(id);
      served.push(c.serial);
      return c;
    };
    const renew = async () => {
      const rotated = once(sm, 'rotated');
      clock.runNext();
      return ((await rotated)[0] as { certificate: WorkloadCertificate }).certificate;
    };
    return { sm, provider, renew, served };
  };
  const a = proxy('sleep-token');
  const b = proxy('httpbin-token');

  const echo: Server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {}); // tunnels are reset at cleanup
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  cleanups.push(() => new Promise((r) => echo.close(r)));
  const echoPort = (echo.address() as { port: number }).port;

  const hbone = new HboneServer({
    credentials: () => b.provider(HTTPBIN),
    handler: (req) =>
      new Promise<Duplex>((resolve, reject) => {
        const up = netConnect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true }, () => {
          up.off('error', reject);
          up.on('error', () => {}); // reset at cleanup; the tunnel reports it
          resolve(up);
        });
        up.once('error', reject);
      }),
  });
  const { port: hbonePort } = await hbone.listen(0, '127.0.0.1');
  cleanups.push(() => hbone.destroy());
  const peers: string[] = [];
  hbone.on('connection', (info) => peers.push(info.peerIdentity.toString()));

  /** A tunnel over a fresh HBONE connection (a new client has an empty pool, so it handshakes now). */
  const tunnel = async (): Promise<Duplex> => {
    const client = new HboneClient({ credentials: (src) => a.provider(src ?? SLEEP) });
    cleanups.push(() => client.destroy());
    const t = await client.connect(
      { address: '127.0.0.1', port: echoPort },
      { expectedIdentities: [HTTPBIN], server: { address: '127.0.0.1', port: hbonePort }, sourceIdentity: SLEEP },
    );
    cleanups.push(() => t.destroy());
    return t;
  };

  // 1. First certificates, first tunnel.
  const t1 = await tunnel();
  expect(await roundTrip(t1, 'one')).toBe('one');
  expect(peers).toEqual([SLEEP]);
  const [a1, b1] = [a.served.at(-1), b.served.at(-1)];

  // 2. Certificate rotation at half life: new tunnels use the new certificates, the open one keeps going.
  const [a2, b2] = await Promise.all([a.renew(), b.renew()]);
  expect([a2.serial, b2.serial]).not.toEqual([a1, b1]);
  const t2 = await tunnel();
  expect(await roundTrip(t2, 'two')).toBe('two');
  expect([a.served.at(-1), b.served.at(-1)]).toEqual([a2.serial, b2.serial]);
  expect(await roundTrip(t1, 'still one')).toBe('still one');

  // 3. Root rotation: the new root enters the bundle first; proxies pick the bundle up at renewal.
  const r1 = ca.trustBundle;
  await ca.rotateRoot({ activateAfter: 1000 });
  const roots = ca.roots().map((r) => r.certificate);
  expect(roots).toHaveLength(2);
  const [a3, b3] = await Promise.all([a.renew(), b.renew()]);
  expect(a3.trustBundle).toBe(roots.join(''));
  expect([issuer(a3, roots), issuer(b3, roots)]).toEqual([0, 0]);
  const t3 = await tunnel();
  expect(await roundTrip(t3, 'three')).toBe('three');

  // 4. The new root starts signing. Only the client side renews: a new-root leaf meets an old-root leaf.
  caClock.advance(1000);
  await ca.maintain();
  expect(ca.roots().map((r) => r.status)).toEqual(['retiring', 'active']);
  const a4 = await a.renew();
  expect(issuer(a4, roots)).toBe(1);
  const t4 = await tunnel();
  expect(await roundTrip(t4, 'four')).toBe('four');
  expect(b.served.at(-1)).toBe(b3.serial);

  // 5. Both sides on the new root; the tunnel opened with first-generation, old-root leaves still works.
  const b5 = await b.renew();
  expect(issuer(b5, roots)).toBe(1);
  const t5 = await tunnel();
  expect(await roundTrip(t5, 'five')).toBe('five');
  expect(await roundTrip(t1, 'one, across everything')).toBe('one, across everything');
  expect(await roundTrip(t3, 'three again')).toBe('three again');
  // The old root stays in the bundle while leaves it signed are alive.
  expect(ca.trustBundle.startsWith(r1)).toBe(true);
  expect(peers).toEqual([SLEEP, SLEEP, SLEEP, SLEEP, SLEEP]);
});
