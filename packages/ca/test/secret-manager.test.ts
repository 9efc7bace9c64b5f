import { once } from 'node:events';
import { createServer, type PeerCertificate, type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  CaError,
  CertificateAuthority,
  createCsr,
  generateKey,
  ManualClock,
  SecretManager,
  type SecretManagerEvents,
  type WorkloadCertificate,
} from '../src/index.js';
import { HOUR, HTTPBIN, SLEEP } from './helpers.js';

const code = (c: string) => expect.objectContaining({ code: c });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await CertificateAuthority.create();
});
afterAll(() => ca.close());

/** A fetcher backed by the in-process CA, with a switchable outage and a call log. */
function fetcher(clock: ManualClock, ttl = 24 * HOUR) {
  const state = {
    calls: [] as string[],
    down: false,
    inFlight: 0,
    maxInFlight: 0,
    gate: undefined as Promise<void> | undefined,
    async fetch(identity: string): Promise<WorkloadCertificate> {
      state.calls.push(identity);
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      try {
        if (state.gate) await state.gate;
        if (state.down) throw new CaError('ERR_CA_UNAVAILABLE', 'CA is down (test)');
        const key = await generateKey();
        const issued = await ca.sign(createCsr(key, identity), { identity, ttl });
        const life = issued.notAfter.getTime() - issued.notBefore.getTime();
        // Re-base validity on the injected clock so the manager's timeline is deterministic.
        const notBefore = new Date(clock.now());
        return {
          identity,
          key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
          certChain: issued.chain.join(''),
          trustBundle: issued.trustBundle,
          serial: issued.serial,
          notBefore,
          notAfter: new Date(notBefore.getTime() + life),
        };
      } finally {
        state.inFlight--;
      }
    },
  };
  return state;
}

function manager(
  clock: ManualClock,
  f: ReturnType<typeof fetcher>,
  extra: Partial<ConstructorParameters<typeof SecretManager>[0]> = {},
) {
  const sm = new SecretManager({ fetcher: (id) => f.fetch(id), clock, random: () => 0, ...extra });
  cleanups.push(() => sm.close());
  return sm;
}

function next<K extends keyof SecretManagerEvents>(sm: SecretManager, event: K): Promise<SecretManagerEvents[K]> {
  return once(sm, event) as unknown as Promise<SecretManagerEvents[K]>;
}

describe('SecretManager', () => {
  it('fetches once for concurrent requests and serves the cached certificate', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    const sm = manager(clock, f);
    const [a, b, c] = await Promise.all([sm.getCertificate(SLEEP), sm.getCertificate(SLEEP), sm.getCertificate(SLEEP)]);
    expect(f.calls).toEqual([SLEEP]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(await sm.getCertificate(SLEEP)).toBe(a);
    expect(sm.identities()).toEqual([SLEEP]);
    // The shape hbone takes.
    const provider = sm.credentialProvider();
    const creds = await provider(SLEEP);
    expect(Object.keys(creds)).toEqual(expect.arrayContaining(['key', 'certChain', 'trustBundle']));
  });

  it('renews at half the lifetime, minus the jitter, and emits rotated', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    const sm = manager(clock, f, { random: () => 1, jitter: 0.05 });
    const first = await sm.getCertificate(SLEEP);
    const life = first.notAfter.getTime() - first.notBefore.getTime();
    expect(clock.nextTimerAt()).toBe(first.notBefore.getTime() + life * 0.45);
    const rotated = next(sm, 'rotated');
    clock.advance(life * 0.45 - 1);
    expect(f.calls).toHaveLength(1);
    clock.advance(1);
    const [event] = await rotated;
    expect(event.previous).toBe(first);
    expect(event.certificate.serial).not.toBe(first.serial);
    expect(await sm.getCertificate(SLEEP)).toBe(event.certificate);
  });

  it('backs off 500 ms ×2 up to 150 s while serving the still-valid certificate', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    const sm = manager(clock, f);
    const first = await sm.getCertificate(SLEEP);
    f.down = true;
    const delays: number[] = [];
    for (let i = 0; i < 11; i++) {
      const failed = next(sm, 'renewal-failed');
      clock.runNext();
      const [e] = await failed;
      delays.push(e.retryInMs);
      expect(e.stillValid).toBe(true);
      expect(e.attempt).toBe(i + 1);
      // Still served during the outage.
      expect(await sm.getCertificate(SLEEP)).toBe(first);
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000]);
    // Recovery: the next attempt succeeds and the schedule returns to half-life renewal.
    f.down = false;
    const rotated = next(sm, 'rotated');
    clock.runNext();
    const [{ certificate }] = await rotated;
    expect(certificate.serial).not.toBe(first.serial);
    expect(clock.nextTimerAt()).toBe(
      certificate.notBefore.getTime() + (certificate.notAfter.getTime() - certificate.notBefore.getTime()) / 2,
    );
  });

  it('fails getCertificate when there is no valid certificate and the CA is down, and retries on schedule', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock, HOUR);
    const sm = manager(clock, f);
    f.down = true;
    await expect(sm.getCertificate(SLEEP)).rejects.toThrow(code('ERR_CA_UNAVAILABLE'));
    expect(clock.nextTimerAt()).toBe(clock.now() + 500);
    // A caller during the backoff waits for the next attempt rather than hammering the CA.
    const waiting = sm.getCertificate(SLEEP);
    expect(f.calls).toHaveLength(1);
    f.down = false;
    clock.advance(500);
    await expect(waiting).resolves.toMatchObject({ identity: SLEEP });
    expect(f.calls).toHaveLength(2);
  });

  it('limits concurrent fetches across identities', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    let open!: () => void;
    f.gate = new Promise<void>((r) => {
      open = r;
    });
    const sm = manager(clock, f, { concurrency: 2 });
    const ids = Array.from({ length: 6 }, (_, i) => `spiffe://cluster.local/ns/default/sa/w${i}`);
    const all = Promise.all(ids.map((id) => sm.getCertificate(id)));
    await new Promise((r) => setImmediate(r));
    expect(f.inFlight).toBe(2);
    open();
    const certs = await all;
    expect(certs.map((c) => c.identity)).toEqual(ids);
    expect(f.maxInFlight).toBe(2);
  });

  it('forgets identities: no more renewals, waiters are told, and the identity limit applies', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    const sm = manager(clock, f, { maxIdentities: 1 });
    await sm.getCertificate(SLEEP);
    expect(clock.pendingTimers).toBe(1);
    await expect(sm.getCertificate(HTTPBIN)).rejects.toThrow(code('ERR_TOO_MANY_IDENTITIES'));
    sm.forget(SLEEP);
    expect(clock.pendingTimers).toBe(0);
    expect(sm.identities()).toEqual([]);
    let open!: () => void;
    f.gate = new Promise<void>((r) => {
      open = r;
    });
    const pending = sm.getCertificate(HTTPBIN);
    sm.forget(HTTPBIN);
    await expect(pending).rejects.toThrow(code('ERR_ABORTED'));
    open();
    await expect(sm.getCertificate('not-an-id')).rejects.toThrow(code('ERR_IDENTITY_INVALID'));
    const ac = new AbortController();
    f.gate = new Promise<void>(() => {});
    const aborted = sm.getCertificate(SLEEP, { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toThrow(code('ERR_ABORTED'));
    await sm.close();
    await expect(sm.getCertificate(SLEEP)).rejects.toThrow(code('ERR_CLOSED'));
  });

  it('hands out a TLS 1.3 SecureContext that follows rotation: new connections get the new certificate', async () => {
    const clock = new ManualClock();
    const f = fetcher(clock);
    const server = manager(clock, f);
    const client = manager(clock, f);
    const serverCtx = await server.secureContext(HTTPBIN);
    // Cached per certificate: the same object until a rotation.
    expect(await server.secureContext(HTTPBIN)).toBe(serverCtx);
    const tlsServer = createServer(
      {
        ...optionsOf(await server.getCertificate(HTTPBIN)),
        minVersion: 'TLSv1.3',
        requestCert: true,
        rejectUnauthorized: true,
      },
      (s) => s.end('hi'),
    );
    server.on('rotated', async ({ identity }) =>
      tlsServer.setSecureContext(optionsOf(await server.getCertificate(identity))),
    );
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    cleanups.push(() => new Promise((r) => tlsServer.close(r)));
    const port = (tlsServer.address() as { port: number }).port;

    const dial = async (): Promise<{ peerSerial: string; ownSerial: string }> => {
      const s: TLSSocket = tlsConnect({
        port,
        host: '127.0.0.1',
        secureContext: await client.secureContext(SLEEP),
        checkServerIdentity: () => undefined,
      });
      await once(s, 'secureConnect');
      expect(s.getProtocol()).toBe('TLSv1.3');
      const r = {
        peerSerial: s.getPeerCertificate().serialNumber.toLowerCase(),
        ownSerial: (s.getCertificate() as PeerCertificate | null)?.serialNumber?.toLowerCase() ?? '',
      };
      s.destroy();
      return r;
    };
    const before = await dial();
    expect(before.peerSerial.replace(/^0+/, '')).toBe((await server.getCertificate(HTTPBIN)).serial);
    const rotated = Promise.all([next(server, 'rotated'), next(client, 'rotated')]);
    clock.advance(13 * HOUR);
    await rotated;
    const after = await dial();
    expect(after.peerSerial).not.toBe(before.peerSerial);
    expect(after.ownSerial).not.toBe(before.ownSerial);
    expect(after.ownSerial.replace(/^0+/, '')).toBe((await client.getCertificate(SLEEP)).serial);
    expect(await server.secureContext(HTTPBIN)).not.toBe(serverCtx);
  });
});

function optionsOf(c: WorkloadCertificate) {
  return { key: c.key, cert: c.certChain, ca: c.trustBundle };
}

describe('SecretManager renewal timing against a CA that backdates notBefore by 60 s', () => {
  /** A SecretManager fed by a real CA on the same manual clock, so validity is exactly what the CA issues. */
  async function backdatingSetup(ttl: number, extra: Partial<ConstructorParameters<typeof SecretManager>[0]> = {}) {
    // A whole second: X.509 validity has second precision, so the arithmetic below stays exact.
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 3, 0, 0));
    const issuer = await CertificateAuthority.create({ clock });
    cleanups.push(() => issuer.close());
    const fetchedAt: number[] = [];
    const sm = new SecretManager({
      clock,
      random: () => 0,
      ...extra,
      fetcher: async (identity) => {
        fetchedAt.push(clock.now());
        const key = await generateKey();
        const issued = await issuer.sign(createCsr(key, identity), { identity, ttl });
        return {
          identity,
          key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
          certChain: issued.chain.join(''),
          trustBundle: issued.trustBundle,
          serial: issued.serial,
          notBefore: issued.notBefore,
          notAfter: issued.notAfter,
        };
      },
    });
    cleanups.push(() => sm.close());
    return { clock, sm, fetchedAt };
  }

  it('renews a 10 s certificate about 5 s after it was obtained, and keeps that pace (no renewal loop)', async () => {
    const { clock, sm, fetchedAt } = await backdatingSetup(10_000);
    const t0 = clock.now();
    const first = await sm.getCertificate(SLEEP);
    expect(first.notBefore.getTime()).toBe(t0 - 60_000);
    expect(first.notAfter.getTime()).toBe(t0 + 10_000);
    expect(clock.nextTimerAt()).toBe(t0 + 5_000);
    for (let i = 1; i <= 5; i++) {
      const rotated = next(sm, 'rotated');
      clock.runNext();
      await rotated;
      expect(clock.nextTimerAt()).toBe(t0 + (i + 1) * 5_000);
    }
    expect(fetchedAt).toEqual([0, 5_000, 10_000, 15_000, 20_000, 25_000].map((d) => t0 + d));
  });

  it('takes the jitter off the remaining lifetime, not the backdated one', async () => {
    const { clock, sm } = await backdatingSetup(10_000, { random: () => 1, jitter: 0.05 });
    const t0 = clock.now();
    await sm.getCertificate(SLEEP);
    expect(clock.nextTimerAt()).toBe(t0 + 5_000 - 500);
  });

  it('renews a certificate with almost no lifetime left after a growing minimum delay, not in a tight loop', async () => {
    const { clock, sm, fetchedAt } = await backdatingSetup(200, {
      backoff: { initial: 1_000, multiplier: 2, max: 4_000 },
    });
    const t0 = clock.now();
    await sm.getCertificate(SLEEP);
    expect(clock.nextTimerAt()).toBe(t0 + 1_000);
    for (const step of [2_000, 4_000, 4_000]) {
      const rotated = next(sm, 'rotated');
      clock.runNext();
      await rotated;
      expect(clock.nextTimerAt()).toBe(clock.now() + step);
    }
    expect(fetchedAt).toEqual([0, 1_000, 3_000, 7_000].map((d) => t0 + d));
  });
});
