import {
  buildBaggage,
  buildForwarded,
  buildTraceparent,
  formatAuthority,
  HboneError,
  newTraceparent,
  parseAuthority,
  parseBaggage,
  parseForwarded,
  parseTraceparent,
} from '../src/index.js';

function expectBadHeader(fn: () => unknown, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(HboneError);
  expect((caught as HboneError).code).toBe('ERR_HBONE_BAD_HEADER');
  if (message) expect((caught as HboneError).message).toMatch(message);
}

describe(':authority', () => {
  it.each([
    ['10.0.0.1:8080', { host: '10.0.0.1', port: 8080, family: 4 }],
    ['[::1]:80', { host: '::1', port: 80, family: 6 }],
    ['[fd00:10::5]:15008', { host: 'fd00:10::5', port: 15008, family: 6 }],
    ['reviews.default.svc.cluster.local:9080', { host: 'reviews.default.svc.cluster.local', port: 9080, family: 0 }],
    ['localhost:1', { host: 'localhost', port: 1, family: 0 }],
  ])('parses %s', (text, expected) => {
    expect(parseAuthority(text)).toEqual(expected);
  });

  it('formats IPv4, IPv6 (bracketed) and host names, and round-trips', () => {
    expect(formatAuthority('10.0.0.1', 8080)).toBe('10.0.0.1:8080');
    expect(formatAuthority('::1', 80)).toBe('[::1]:80');
    expect(formatAuthority('svc.ns', 80)).toBe('svc.ns:80');
    for (const [h, p] of [
      ['127.0.3.10', 65535],
      ['2001:db8::1', 443],
    ] as const) {
      expect(parseAuthority(formatAuthority(h, p))).toMatchObject({ host: h, port: p });
    }
  });

  it.each([
    ['', /empty/],
    ['10.0.0.1', /no port/],
    ['10.0.0.1:', /no valid port/],
    ['10.0.0.1:0', /out of range/],
    ['10.0.0.1:65536', /out of range/],
    ['10.0.0.1:80a', /no valid port/],
    ['10.0.0.1:-1', /no valid port/],
    ['::1:80', /brackets/],
    ['[::1]', /\[<ipv6>\]:<port>/],
    ['[::1]80', /\[<ipv6>\]:<port>/],
    ['[10.0.0.1]:80', /not an IPv6/],
    ['[fe80::1%eth0]:80', /not an IPv6/],
    ['300.1.1.1:80', /neither/],
    ['01.2.3.4:80', /neither/],
    ['user@host:80', /neither/],
    ['a b:80', /neither/],
    ['-bad.example:80', /neither/],
    [`${'a'.repeat(64)}.example:80`, /neither/],
    ['x'.repeat(400), /characters long/],
  ])('rejects %j', (text, message) => {
    expectBadHeader(() => parseAuthority(text), message);
  });

  it('refuses to format garbage', () => {
    expectBadHeader(() => formatAuthority('not an ip', 80));
    expectBadHeader(() => formatAuthority('10.0.0.1', 0));
    expectBadHeader(() => formatAuthority('10.0.0.1', 1.5));
  });
});

describe('baggage', () => {
  it('builds ztunnel’s form and parses it back', () => {
    const b = {
      clusterName: 'Kubernetes',
      namespaceName: 'default',
      workloadKind: 'deployment',
      workloadName: 'sleep',
      serviceName: 'sleep',
      serviceVersion: 'v1',
    };
    const text = buildBaggage(b);
    expect(text).toBe(
      'k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=sleep,service.name=sleep,service.version=v1',
    );
    expect(parseBaggage(text)).toEqual(b);
  });

  it('handles other workload kinds, escapes, whitespace, properties and unknown members', () => {
    expect(parseBaggage('k8s.statefulset.name=db-0 , service.name=a%2Cb;prop=1, other=x,k8s.node.name=n1')).toEqual({
      workloadKind: 'statefulset',
      workloadName: 'db-0',
      serviceName: 'a,b',
    });
    const odd = { serviceName: 'name with spaces, commas; and "quotes" é', serviceVersion: '100%' };
    expect(parseBaggage(buildBaggage(odd))).toEqual(odd);
    expect(buildBaggage({})).toBe('');
    expect(parseBaggage('')).toEqual({});
    expect(buildBaggage({ workloadName: 'p', workloadKind: 'pod' })).toBe('k8s.pod.name=p');
  });

  it.each([
    ['novalue', /no "="/],
    ['bad key=1', /not a valid token/],
    ['k=%zz', /percent-escape/],
    ['k=a b', /percent-encoded/],
    ['k="quoted"', /percent-encoded/],
    [`k=${'x'.repeat(9000)}`, /8192/],
    [Array.from({ length: 181 }, (_, i) => `k${i}=v`).join(','), /at most 180/],
  ])('rejects %j', (text, message) => {
    expectBadHeader(() => parseBaggage(text), message);
  });

  it('refuses a bad workload kind', () => {
    expectBadHeader(() => buildBaggage({ workloadName: 'x', workloadKind: 'Deployment' }), /workload kind/);
    expectBadHeader(() => buildBaggage({ workloadName: 'x', workloadKind: 'namespace' }), /workload kind/);
  });
});

describe('forwarded', () => {
  it('builds ztunnel’s form, IPv4 and IPv6, with and without host', () => {
    expect(buildForwarded({ for: { address: '10.0.0.5', port: 34567 } })).toBe('for="10.0.0.5:34567"');
    expect(buildForwarded({ for: { address: 'fd00::5', port: 80 } })).toBe('for="[fd00::5]:80"');
    expect(buildForwarded({ for: { address: '10.0.0.5', port: 1 }, host: 'reviews.default.svc.cluster.local' })).toBe(
      'for="10.0.0.5:1";host=reviews.default.svc.cluster.local',
    );
    expect(buildForwarded({ for: { address: '10.0.0.5' }, host: 'a:80', proto: 'https' })).toBe(
      'for="10.0.0.5";host="a:80";proto=https',
    );
  });

  it('parses what it builds and other RFC 7239 forms', () => {
    const cases = [
      { for: { address: '10.0.0.5', port: 34567 } },
      { for: { address: 'fd00::5', port: 80 }, host: 'svc.ns.svc.cluster.local' },
      { for: { address: '192.0.2.1' }, host: 'h"x\\y' },
    ];
    for (const c of cases) expect(parseForwarded(buildForwarded(c))).toEqual([c]);
    expect(parseForwarded('For="[2001:db8:cafe::17]:4711"')).toEqual([
      { for: { address: '2001:db8:cafe::17', port: 4711 } },
    ]);
    expect(parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43')).toEqual([
      { for: { address: '192.0.2.60' }, proto: 'http', by: { address: '203.0.113.43' } },
    ]);
    expect(parseForwarded('for=192.0.2.43, for=198.51.100.17')).toEqual([
      { for: { address: '192.0.2.43' } },
      { for: { address: '198.51.100.17' } },
    ]);
    expect(parseForwarded('for=unknown;x=1, for="_hidden:_port"')).toEqual([
      { for: { address: 'unknown' } },
      { for: { address: '_hidden' } },
    ]);
    // Lenient: unquoted ip:port (should be quoted) is accepted.
    expect(parseForwarded('for=10.0.0.1:80')).toEqual([{ for: { address: '10.0.0.1', port: 80 } }]);
  });

  it.each([
    ['for="10.0.0.1:80', /unterminated/],
    ['for', /without "="/],
    ['for=10.0.0.1;for=10.0.0.2', /repeated/],
    ['for="not-an-ip"', /not an IPv4/],
    ['for="[::1"', /unterminated IPv6/],
    ['for="[10.0.0.1]:80"', /not an IPv6/],
    ['for="10.0.0.1:99999"', /bad port/],
    ['for="[::1]x"', /junk/],
    ['for=_a b', /expected ";" or ","/],
    ['f@r=1', /bad parameter name/],
    ['for=1.2.3.4 "x"', /expected ";" or ","/],
  ])('rejects %j', (text, message) => {
    expectBadHeader(() => parseForwarded(text), message);
  });

  it('refuses to build garbage', () => {
    expectBadHeader(() => buildForwarded({ for: { address: 'evil"host' } }), /not an IP/);
    expectBadHeader(() => buildForwarded({ for: { address: '10.0.0.1', port: 70000 } }), /out of range/);
    expectBadHeader(() => buildForwarded({ for: { address: '10.0.0.1' }, host: 'a\r\nb' }), /control/);
  });
});

describe('traceparent', () => {
  it('makes a fresh valid random value each time', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = newTraceparent();
      expect(t).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      const p = parseTraceparent(t);
      expect(p.version).toBe(0);
      seen.add(p.traceId);
    }
    expect(seen.size).toBe(1000);
  });

  it('builds and parses', () => {
    const t = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', flags: 1 };
    const text = buildTraceparent(t);
    expect(text).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(parseTraceparent(text)).toEqual({ version: 0, ...t });
    // A future version may append fields.
    expect(parseTraceparent(`01-${t.traceId}-${t.parentId}-01-extra`).version).toBe(1);
  });

  it.each([
    ['', /invalid version/],
    ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', /invalid version/],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', /must be 00-/],
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', /lowercase hex/],
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', /all zeros/],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', /all zeros/],
    ['00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', /must be 00-/],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz', /invalid flags/],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x', /must be 00-/],
  ])('rejects %j', (text, message) => {
    expectBadHeader(() => parseTraceparent(text), message);
  });

  it('refuses to build invalid ids', () => {
    expectBadHeader(() => buildTraceparent({ traceId: '0'.repeat(32), parentId: '1'.repeat(16) }));
    expectBadHeader(() => buildTraceparent({ traceId: '1'.repeat(31), parentId: '1'.repeat(16) }));
    expectBadHeader(() => buildTraceparent({ traceId: '1'.repeat(32), parentId: '1'.repeat(16), flags: 256 }));
  });
});
