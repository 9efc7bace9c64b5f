import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IdentityError, identitiesFromCertificate, identityFromCertificate, uriSans } from '../src/index.js';

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', name), 'utf8');

describe('identity from certificates', () => {
  it('reads the first URI SAN as the identity from PEM, DER, X509Certificate and a PeerCertificate', () => {
    const pem = fixture('workload.pem');
    const x509 = new X509Certificate(pem);
    for (const input of [pem, x509, x509.raw, { raw: x509.raw } as never]) {
      expect(identityFromCertificate(input).toString()).toBe('spiffe://cluster.local/ns/default/sa/sleep');
    }
    expect(uriSans(pem)).toEqual(['spiffe://cluster.local/ns/default/sa/sleep']);
  });

  it('uses the first URI SAN when there are several', () => {
    const pem = fixture('two-uris.pem');
    expect(identityFromCertificate(pem).toString()).toBe('spiffe://example.org/ns/a/sa/b');
    expect(identitiesFromCertificate(pem).map(String)).toEqual([
      'spiffe://example.org/ns/a/sa/b',
      'spiffe://cluster.local/ns/c/sa/d',
    ]);
  });

  it('decodes quoted SAN entries instead of splitting on their commas', () => {
    const pem = fixture('comma.pem');
    expect(uriSans(pem)).toEqual(['spiffe://cluster.local/ns/x/sa/y']);
  });

  it('accepts a PeerCertificate-style object with subjectaltname', () => {
    const peer = { subjectaltname: 'DNS:x, URI:spiffe://td/ns/n/sa/s' } as never;
    expect(identityFromCertificate(peer).principal).toBe('td/ns/n/sa/s');
  });

  it('refuses a certificate without a URI SAN', () => {
    expect(() => identityFromCertificate(fixture('no-uri.pem'))).toThrow(
      expect.objectContaining({ code: 'ERR_NO_IDENTITY_IN_CERTIFICATE' }),
    );
    // An empty peer certificate (what Node returns when the peer sent none).
    expect(() => identityFromCertificate({} as never)).toThrow(IdentityError);
  });

  it('refuses a certificate whose first URI SAN is not a SPIFFE ID', () => {
    expect(() => identityFromCertificate(fixture('bad-uri.pem'))).toThrow(
      expect.objectContaining({ code: 'ERR_IDENTITY_INVALID' }),
    );
    expect(identitiesFromCertificate(fixture('bad-uri.pem'))).toEqual([]);
  });

  it('refuses input that is not a certificate with an IdentityError, not an OpenSSL error', () => {
    const garbage = ['not a certificate', Buffer.from('not DER'), { raw: Buffer.from([0x30, 0x03, 0x02]) } as never];
    for (const input of garbage) {
      for (const read of [identityFromCertificate, identitiesFromCertificate, uriSans]) {
        let caught: unknown;
        try {
          read(input);
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(IdentityError);
        expect(caught).toMatchObject({ code: 'ERR_CERTIFICATE_INVALID', message: expect.stringContaining('PEM') });
      }
    }
  });
});
