import { formatCidr, formatIp, parseCidr, parseIp, XdsError } from '../src/index.js';

describe('IP helpers', () => {
  it.each([
    ['10.1.2.3', '0a010203'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00::1', 'fd000000000000000000000000000001'],
    ['2001:db8:0:1:0:0:0:1', '20010db8000000010000000000000001'],
    ['::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['::', '00000000000000000000000000000000'],
  ])('parses %s', (text, hex) => {
    expect(parseIp(text).toString('hex')).toBe(hex);
  });

  it.each([
    ['0a010203', '10.1.2.3'],
    ['20010db8000000010000000000000001', '2001:db8:0:1::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'],
    ['fd000000000000000000000000000000', 'fd00::'],
    ['00010002000300040005000600070008', '1:2:3:4:5:6:7:8'],
  ])('formats %s canonically', (hex, text) => {
    expect(formatIp(Buffer.from(hex, 'hex'))).toBe(text);
  });

  it('rejects bad input with ERR_XDS_INVALID_IP', () => {
    for (const bad of ['10.0.0', '1.2.3.256', 'fd00:::1', 'x', '']) {
      expect(() => parseIp(bad)).toThrow(expect.objectContaining({ code: 'ERR_XDS_INVALID_IP' }));
    }
    expect(() => formatIp(Buffer.alloc(5))).toThrow(XdsError);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/prefix length must be 0..32/);
  });

  it('CIDR round trip', () => {
    expect(formatCidr(parseCidr('10.0.0.0/8'))).toBe('10.0.0.0/8');
    expect(parseCidr('fd00::1').length).toBe(128);
  });
});
