import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateAuthority, createCsr, generateKey, ManualClock, type RootInfo } from '../src/index.js';
import { DAY, HOUR, opensslVerify, SLEEP, tempDir, withOpenssl } from './helpers.js';

const dir = tempDir();
const YEAR = 365 * DAY;

function issuerOf(leafPem: string, roots: RootInfo[]): string | undefined {
  const leaf = new X509Certificate(leafPem);
  return roots.find(
    (r) =>
      leaf.checkIssued(new X509Certificate(r.certificate)) && leaf.verify(new X509Certificate(r.certificate).publicKey),
  )?.fingerprint;
}

describe('root rotation timeline (injected clock)', () => {
  withOpenssl(
    'introduces a new root at 20% remaining, signs under it after the delay, retires the old one after its last leaf',
    async () => {
      const start = Date.UTC(2030, 0, 1);
      const clock = new ManualClock(start);
      const state = join(dir, 'timeline');
      const events: string[] = [];
      let ca = await CertificateAuthority.create({ stateDir: state, clock, rootTtl: 10 * YEAR });
      const track = (c: CertificateAuthority) => {
        c.on('root-introduced', () => events.push('introduced'));
        c.on('root-activated', () => events.push('activated'));
        c.on('root-retired', () => events.push('retired'));
      };
      track(ca);
      const csr = createCsr(await generateKey(), SLEEP);
      const [r1] = ca.roots();
      const rotationAt =
        (r1 as RootInfo).notAfter.getTime() -
        0.2 * ((r1 as RootInfo).notAfter.getTime() - (r1 as RootInfo).notBefore.getTime());

      // Just before 80% of the root's life: nothing happens.
      clock.set(rotationAt - 1);
      await ca.maintain();
      expect(ca.roots()).toHaveLength(1);

      // At 80%: the CA's own timer introduces the new root into the bundle; leaves are still signed by the old.
      clock.set(rotationAt);
      await ca.maintain();
      expect(events).toEqual(['introduced']);
      const [old, next] = ca.roots();
      expect(old?.status).toBe('active');
      expect(next?.status).toBe('next');
      expect(next?.activateAt?.getTime()).toBe(rotationAt + DAY);
      expect(ca.trustBundle).toBe(`${old?.certificate}${next?.certificate}`);
      expect(readFileSync(join(state, 'root-cert.pem'), 'utf8')).toBe(ca.trustBundle);
      const beforeSwitch = await ca.sign(csr, { identity: SLEEP, ttl: 30 * DAY });
      expect(issuerOf(beforeSwitch.certificate, ca.roots())).toBe(old?.fingerprint);

      // A restart in the middle of the rotation keeps the timeline.
      await ca.close();
      ca = await CertificateAuthority.create({ stateDir: state, clock, rootTtl: 10 * YEAR });
      track(ca);
      expect(ca.roots().map((r) => r.status)).toEqual(['active', 'next']);

      // After the activation delay the new root signs; the old stays in the bundle for its live leaves.
      clock.set(rotationAt + DAY);
      await ca.maintain();
      expect(events).toEqual(['introduced', 'activated']);
      expect(ca.roots().map((r) => [r.fingerprint, r.status])).toEqual([
        [old?.fingerprint, 'retiring'],
        [next?.fingerprint, 'active'],
      ]);
      const afterSwitch = await ca.sign(csr, { identity: SLEEP });
      expect(issuerOf(afterSwitch.certificate, ca.roots())).toBe(next?.fingerprint);
      // The old root's key is gone: it signs nothing any more.
      expect(require('node:fs').readdirSync(join(state, 'keys'))).toHaveLength(1);

      // Both generations verify against the bundle (openssl at the simulated time).
      const at = (rotationAt + DAY + HOUR) / 1000;
      expect(opensslVerify(dir, ca.trustBundle, beforeSwitch.certificate, undefined, at).status).toBe(0);
      expect(opensslVerify(dir, ca.trustBundle, afterSwitch.certificate, undefined, at).status).toBe(0);

      // The old root leaves only once every leaf it signed can have expired: this process restarted at
      // rotationAt, so leaves of the earlier process end by rotationAt + maxTtl (90 d), later than the 30 d leaf.
      const retireAt = ca.roots()[0]?.retireAt?.getTime() as number;
      expect(retireAt).toBe(rotationAt + 90 * DAY);
      expect(retireAt).toBeGreaterThanOrEqual(beforeSwitch.notAfter.getTime());
      clock.set(retireAt - 1);
      await ca.maintain();
      expect(ca.roots()).toHaveLength(2);
      clock.set(retireAt);
      await ca.maintain();
      expect(events).toEqual(['introduced', 'activated', 'retired']);
      expect(ca.roots().map((r) => r.fingerprint)).toEqual([next?.fingerprint]);
      expect(readFileSync(join(state, 'root-cert.pem'), 'utf8')).toBe(next?.certificate);
      await ca.close();
    },
  );

  it('without a restart the old root retires right after the last leaf it signed expires', async () => {
    const clock = new ManualClock(Date.UTC(2031, 5, 1));
    const ca = await CertificateAuthority.create({ clock });
    const csr = createCsr(await generateKey(), SLEEP);
    const leaf = await ca.sign(csr, { identity: SLEEP, ttl: 10 * DAY });
    const bundles: string[] = [];
    ca.on('trust-bundle-changed', (b) => bundles.push(b));
    await ca.rotateRoot({ activateAfter: HOUR });
    expect(ca.roots().map((r) => r.status)).toEqual(['active', 'next']);
    clock.advance(HOUR);
    await ca.maintain();
    expect(ca.roots()[0]?.retireAt?.getTime()).toBe(leaf.notAfter.getTime());
    // The CA's own timer fires the retirement when the clock passes it.
    clock.set(leaf.notAfter.getTime());
    await ca.maintain();
    expect(ca.roots()).toHaveLength(1);
    expect(bundles).toHaveLength(2);
    await expect(ca.rotateRoot()).resolves.toMatchObject({ status: 'next' });
    await expect(ca.rotateRoot()).rejects.toThrow(/already in progress/);
    await ca.close();
  });

  it('drives the timeline from its own timer when the clock advances', async () => {
    const clock = new ManualClock(Date.UTC(2032, 0, 1));
    const ca = await CertificateAuthority.create({ clock, rootTtl: 100 * DAY, defaultTtl: HOUR });
    const introduced = new Promise<RootInfo>((resolve) => ca.once('root-introduced', resolve));
    const activated = new Promise<RootInfo>((resolve) => ca.once('root-activated', resolve));
    clock.advance(80 * DAY);
    const r = await introduced;
    await ca.maintain(); // let the timer-driven step finish scheduling the activation
    expect(r.activateAt?.getTime()).toBe(clock.now() + HOUR);
    clock.advance(HOUR);
    await expect(activated).resolves.toMatchObject({ fingerprint: r.fingerprint, status: 'active' });
    await ca.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
