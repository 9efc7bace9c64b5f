import { addressResourceType, authorizationResourceType, encodeAny } from '../src/index.js';
import { parseIp } from '../src/ip.js';

/** Hex without the spaces used below to group fields. */
const hex = (s: string): string => s.replace(/\s+/g, '');

describe('golden encodings (hand-checked protobuf bytes)', () => {
  it('istio.workload.Address with a Workload', () => {
    const bytes = addressResourceType().encode({
      workload: { uid: 'u1', name: 'p', namespace: 'ns', addresses: [parseIp('10.0.0.1')], tunnelProtocol: 'HBONE' },
    });
    // Workload fields in field-number order:
    //   name=1 LEN:            0a 01 70                (tag (1<<3)|2, length 1, "p")
    //   namespace=2 LEN:       12 02 6e73              ("ns")
    //   addresses=3 bytes:     1a 04 0a000001          (10.0.0.1 as 4 network-order bytes)
    //   tunnel_protocol=5 varint: 28 01                (HBONE = 1)
    //   uid=20 LEN:            a201 02 7531            (tag 20<<3|2 = 162 = varint a2 01; "u1")
    // Workload = 3+4+6+2+5 = 20 bytes; Address.workload=1 LEN: 0a 14 + workload.
    expect(Buffer.from(bytes).toString('hex')).toBe(hex('0a14 0a0170 12026e73 1a040a000001 2801 a201027531'));
  });

  it('istio.workload.Address with a Service (IPv6 address, ports)', () => {
    const bytes = addressResourceType().encode({
      service: {
        name: 's',
        namespace: 'ns',
        hostname: 'h',
        addresses: [{ network: '', address: parseIp('fd00::1') }],
        ports: [{ servicePort: 80, targetPort: 8080 }],
      },
    });
    // Service:
    //   name=1 "s":               0a 01 73
    //   namespace=2 "ns":         12 02 6e73
    //   hostname=3 "h":           1a 01 68
    //   addresses=4 NetworkAddress (network "" omitted; address=2, 16 bytes):
    //                             22 12 | 12 10 fd00 0000 0000 0000 0000 0000 0000 0001
    //   ports=5 Port { service_port=1: 08 50 (80); target_port=2: 10 903f (8080 = varint 90 3f) }:
    //                             2a 05 | 0850 10903f
    // Service = 3+4+3+20+7 = 37 = 0x25 bytes; Address.service=2 LEN: 12 25 + service.
    expect(Buffer.from(bytes).toString('hex')).toBe(
      hex(`1225 0a0173 12026e73 1a0168
           2212 1210 fd000000000000000000000000000001
           2a05 0850 10903f`),
    );
  });

  it('Port.app_protocol (field 3) and NetworkAddress.length (field 3)', () => {
    const bytes = addressResourceType().encode({
      service: {
        name: 's',
        addresses: [{ network: '', address: parseIp('10.0.0.0'), length: 8 }],
        ports: [{ servicePort: 80, targetPort: 80, appProtocol: 'HTTP2' }],
      },
    });
    // Service:
    //   name=1 "s":                0a 01 73
    //   addresses=4 NetworkAddress { address=2: 12 04 0a000000; length=3 varint: 18 08 }:
    //                              22 08 | 12040a000000 1808
    //   ports=5 Port { 08 50; 10 50; app_protocol=3 varint HTTP2=2: 18 02 }:
    //                              2a 06 | 0850 1050 1802
    // Service = 3+10+8 = 21 = 0x15 bytes; Address.service=2 LEN: 12 15 + service.
    expect(Buffer.from(bytes).toString('hex')).toBe(hex('1215 0a0173 2208 12040a000000 1808 2a06 0850 1050 1802'));
  });

  it('istio.security.Authorization', () => {
    const bytes = authorizationResourceType().encode({
      name: 'a',
      namespace: 'ns',
      scope: 'NAMESPACE',
      action: 'DENY',
      dryRun: true,
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  principals: [{ exact: 'x' }],
                  sourceIps: [{ address: parseIp('10.0.0.0'), length: 8 }],
                  destinationPorts: [80, 443],
                },
              ],
            },
          ],
        },
      ],
    });
    // Authorization:
    //   name=1 "a": 0a 01 61 | namespace=2 "ns": 12 02 6e73 | scope=3 NAMESPACE(1): 18 01 | action=4 DENY(1): 20 01
    //   rules=5 Rule { clauses=1 Clause { matches=2 Match {
    //       principals=3 StringMatch { exact=1 "x": 0a 01 78 }      -> 1a 03 0a0178
    //       source_ips=5 Address { address=1: 0a 04 0a000000; length=2: 10 08 } -> 2a 08 0a040a000000 1008
    //       destination_ports=9 packed (proto3 default): 80 -> 50, 443 -> bb 03 -> 4a 03 50bb03
    //   } } }  Match = 5+10+5 = 20 (0x14); Clause = 2+20 = 22 (0x16); Rule = 2+22 = 24 (0x18)
    //   -> 2a 18 | 0a 16 | 12 14 | match
    //   dry_run=6 true: 30 01
    expect(Buffer.from(bytes).toString('hex')).toBe(
      hex(`0a0161 12026e73 1801 2001
           2a18 0a16 1214 1a030a0178 2a080a040a0000001008 4a0350bb03
           3001`),
    );
  });

  it('google.protobuf.Any wrapping (what goes inside a discovery response)', () => {
    const any = encodeAny('type.googleapis.com/x.Y', Buffer.from([0x08, 0x01]));
    // type_url=1 LEN 23: 0a 17 "type.googleapis.com/x.Y"; value=2 LEN 2: 12 02 0801
    expect(any.toString('hex')).toBe(`0a17${Buffer.from('type.googleapis.com/x.Y').toString('hex')}12020801`);
  });

  it('decodes the golden bytes back to the same plain objects', () => {
    const t = addressResourceType();
    const a = t.decode(Buffer.from(hex('0a14 0a0170 12026e73 1a040a000001 2801 a201027531'), 'hex'));
    expect(a.type).toBe('workload');
    if (a.type !== 'workload') return;
    expect(a.workload.uid).toBe('u1');
    expect(a.workload.tunnelProtocol).toBe('HBONE');
    expect(Buffer.from(a.workload.addresses[0] as Uint8Array).toString('hex')).toBe('0a000001');
    expect(a.workload.services).toEqual({});
    expect(a.workload.waypoint).toBeNull();
  });
});
