import { IdentityError, SpiffeId, sameTrustDomain, spiffeId, validateTrustDomain } from '../src/index.js';

describe('SpiffeId.parse', () => {
  it('parses the Istio form and formats it back', () => {
    const id = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/sleep');
    expect(id.trustDomain).toBe('cluster.local');
    expect(id.namespace).toBe('default');
    expect(id.serviceAccount).toBe('sleep');
    expect(id.toString()).toBe('spiffe://cluster.local/ns/default/sa/sleep');
    expect(id.principal).toBe('cluster.local/ns/default/sa/sleep');
    expect(id.namespacedServiceAccount).toBe('default/sleep');
    expect(JSON.stringify({ id })).toBe('{"id":"spiffe://cluster.local/ns/default/sa/sleep"}');
  });

  it.each([
    ['', 'must start with'],
    ['http://cluster.local/ns/a/sa/b', 'must start with'],
    ['spiffe://', 'no trust domain'],
    ['spiffe:///ns/a/sa/b', 'no trust domain'],
    ['spiffe://cluster.local', 'no trust domain'],
    ['spiffe://cluster.local/ns/a', 'exactly /ns/'],
    ['spiffe://cluster.local/ns/a/sa/b/extra', 'exactly /ns/'],
    ['spiffe://cluster.local/namespace/a/sa/b', 'exactly /ns/'],
    ['spiffe://cluster.local/ns//sa/b', 'namespace is empty'],
    ['spiffe://cluster.local/ns/a/sa/', 'service account is empty'],
    ['spiffe://Cluster.Local/ns/a/sa/b', 'trust domain'],
    ['spiffe://cluster.local/ns/a b/sa/b', 'namespace'],
    ['spiffe://cluster.local/ns/../sa/b', 'namespace'],
    ['spiffe://cluster.local/ns/a/sa/b?x=1', 'service account'],
    ['spiffe://cluster.local/ns/a/sa/b#frag', 'service account'],
  ])('rejects %j with a clear reason', (input, reason) => {
    let caught: unknown;
    try {
      SpiffeId.parse(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IdentityError);
    expect((caught as IdentityError).code).toBe('ERR_IDENTITY_INVALID');
    expect((caught as IdentityError).message).toContain(reason);
  });

  it('rejects non-strings', () => {
    expect(() => SpiffeId.parse(42 as unknown as string)).toThrow(/must be a string/);
  });

  it('tryParse returns undefined instead of throwing', () => {
    expect(SpiffeId.tryParse('nope')).toBeUndefined();
    expect(SpiffeId.tryParse('spiffe://td/ns/a/sa/b')?.serviceAccount).toBe('b');
  });

  it('truncates very long input in the message', () => {
    const long = `spiffe://cluster.local/ns/${'a'.repeat(5000)}/x`;
    expect(() => SpiffeId.parse(long)).toThrow(/…/);
  });
});

describe('principals and comparison', () => {
  it('parses the principal form, with or without the scheme', () => {
    expect(SpiffeId.fromPrincipal('cluster.local/ns/foo/sa/bar').toString()).toBe(
      'spiffe://cluster.local/ns/foo/sa/bar',
    );
    expect(SpiffeId.fromPrincipal('spiffe://td/ns/foo/sa/bar').principal).toBe('td/ns/foo/sa/bar');
    expect(() => SpiffeId.fromPrincipal('cluster.local/foo')).toThrow(IdentityError);
  });

  it('equals compares the whole identity', () => {
    const a = spiffeId('cluster.local', 'a', 'b');
    expect(a.equals('spiffe://cluster.local/ns/a/sa/b')).toBe(true);
    expect(a.equals(spiffeId('cluster.local', 'a', 'b'))).toBe(true);
    expect(a.equals(spiffeId('other.td', 'a', 'b'))).toBe(false);
    expect(a.equals(undefined)).toBe(false);
    expect(a.inTrustDomain('cluster.local')).toBe(true);
    expect(a.inTrustDomain('other.td')).toBe(false);
  });

  it('is immutable', () => {
    const a = spiffeId('cluster.local', 'a', 'b');
    expect(() => {
      (a as unknown as { namespace: string }).namespace = 'x';
    }).toThrow(TypeError);
  });
});

describe('trust domains', () => {
  it('validates names', () => {
    expect(validateTrustDomain('cluster.local')).toBe('cluster.local');
    expect(() => validateTrustDomain('')).toThrow(/empty/);
    expect(() => validateTrustDomain('UPPER')).toThrow(/lowercase/);
    expect(() => validateTrustDomain('a'.repeat(256))).toThrow(/at most 255/);
    try {
      validateTrustDomain('bad/td');
    } catch (err) {
      expect((err as IdentityError).code).toBe('ERR_TRUST_DOMAIN_INVALID');
    }
    expect(sameTrustDomain('a.b', 'a.b')).toBe(true);
    expect(sameTrustDomain('a.b', 'a.c')).toBe(false);
  });
});
