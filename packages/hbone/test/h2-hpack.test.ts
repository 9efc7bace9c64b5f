/** HPACK (RFC 7541) against the RFC's own examples (Appendix C) and against malformed input. */
import { HboneError } from '../src/errors.js';
import { HpackDecoder } from '../src/h2/hpack-decoder.js';
import { HpackEncoder } from '../src/h2/hpack-encoder.js';
import { HUFFMAN_CODES, huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../src/h2/huffman.js';
import { HUFFMAN_CODE_LENGTHS } from '../src/h2/huffman-code-lengths.js';
import { H2_ERROR, type H2HeaderList } from '../src/h2/index.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const REQ1: H2HeaderList = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQ2: H2HeaderList = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: H2HeaderList = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];
const RESP1: H2HeaderList = [
  [':status', '302'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'],
  ['location', 'https://www.example.com'],
];
const RESP2: H2HeaderList = [[':status', '307'], ...RESP1.slice(1)];
const RESP3: H2HeaderList = [
  [':status', '200'],
  ['cache-control', 'private'],
  ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'],
  ['location', 'https://www.example.com'],
  ['content-encoding', 'gzip'],
  ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'],
];

/** RFC 7541 Appendix C: each group shares one decoder; [block, headers, table size after it]. */
const SEQUENCES: Array<{ name: string; tableSize: number; steps: Array<[string, H2HeaderList, number]> }> = [
  {
    name: 'C.2.1 literal with indexing',
    tableSize: 4096,
    steps: [['400a637573746f6d2d6b65790d637573746f6d2d686561646572', [['custom-key', 'custom-header']], 55]],
  },
  {
    name: 'C.2.2 literal without indexing',
    tableSize: 4096,
    steps: [['040c2f73616d706c652f70617468', [[':path', '/sample/path']], 0]],
  },
  {
    name: 'C.2.3 literal never indexed',
    tableSize: 4096,
    steps: [['100870617373776f726406736563726574', [['password', 'secret']], 0]],
  },
  { name: 'C.2.4 indexed', tableSize: 4096, steps: [['82', [[':method', 'GET']], 0]] },
  {
    name: 'C.3 requests without Huffman',
    tableSize: 4096,
    steps: [
      ['828684410f7777772e6578616d706c652e636f6d', REQ1, 57],
      ['828684be58086e6f2d6361636865', REQ2, 110],
      ['828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565', REQ3, 164],
    ],
  },
  {
    name: 'C.4 requests with Huffman',
    tableSize: 4096,
    steps: [
      ['828684418cf1e3c2e5f23a6ba0ab90f4ff', REQ1, 57],
      ['828684be5886a8eb10649cbf', REQ2, 110],
      ['828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf', REQ3, 164],
    ],
  },
  {
    name: 'C.5 responses without Huffman (table 256, evictions)',
    tableSize: 256,
    steps: [
      [
        '4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d',
        RESP1,
        222,
      ],
      ['4803333037c1c0bf', RESP2, 222],
      [
        '88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31',
        RESP3,
        215,
      ],
    ],
  },
  {
    name: 'C.6 responses with Huffman (table 256, evictions)',
    tableSize: 256,
    steps: [
      [
        '488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3',
        RESP1,
        222,
      ],
      ['4883640effc1c0bf', RESP2, 222],
      [
        '88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007',
        RESP3,
        215,
      ],
    ],
  },
];

describe('HPACK Huffman code (RFC 7541 Appendix B)', () => {
  it('rebuilds the RFC code table from the code lengths', () => {
    // Spot checks across every length band of Appendix B: [symbol, code, bits].
    const rfc: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [101, 0x5, 5],
      [122, 0x7b, 7],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [200, 0x3ffffe2, 26],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, bits] of rfc) {
      expect([sym, HUFFMAN_CODES[sym], HUFFMAN_CODE_LENGTHS[sym]]).toEqual([sym, code, bits]);
    }
    // A prefix code: Kraft's sum is exactly 1 for a complete code.
    expect(HUFFMAN_CODE_LENGTHS.reduce((sum, len) => sum + 2 ** -len, 0)).toBe(1);
  });

  it('round-trips every octet value and long strings', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
    for (const s of ['', 'a', 'www.example.com', all, all.repeat(20), 'no-cache']) {
      const out = Buffer.alloc(huffmanEncodedLength(s));
      expect(huffmanEncode(s, out, 0)).toBe(out.length);
      expect(huffmanDecode(out, 0, out.length)).toBe(s);
    }
    const out = Buffer.alloc(huffmanEncodedLength('www.example.com'));
    huffmanEncode('www.example.com', out, 0);
    expect(out.toString('hex')).toBe('f1e3c2e5f23a6ba0ab90f4ff');
  });

  it('refuses EOS inside the data, padding longer than 7 bits, and padding that is not all ones', () => {
    expect(() => huffmanDecode(hex('ffffffff'), 0, 4)).toThrow(/EOS|padding/); // EOS (30 ones) then 2 more
    expect(() => huffmanDecode(hex('1fff'), 0, 2)).toThrow(/padding/); // 'a' (00011) + 11 one-bits of padding
    expect(() => huffmanDecode(hex('18'), 0, 1)).toThrow(/padding/); // 'a' (00011) + 000 padding
    expect(huffmanDecode(hex('1f'), 0, 1)).toBe('a'); // 'a' + 111 padding is fine
  });
});

describe('HPACK decoder: RFC 7541 Appendix C', () => {
  for (const seq of SEQUENCES) {
    it(seq.name, () => {
      const decoder = new HpackDecoder(seq.tableSize);
      for (const [block, headers, size] of seq.steps) {
        const out = decoder.decode(hex(block));
        expect(out).toEqual({ headers, oversized: false });
        expect(decoder.table.size).toBe(size);
      }
    });
  }

  it('C.5.3 leaves exactly the RFC dynamic table', () => {
    const decoder = new HpackDecoder(256);
    for (const [block] of SEQUENCES.find((s) => s.name.startsWith('C.5'))!.steps) decoder.decode(hex(block));
    expect(decoder.table.names).toEqual(['set-cookie', 'content-encoding', 'date']);
    expect(decoder.table.values).toEqual([
      'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1',
      'gzip',
      'Mon, 21 Oct 2013 20:13:22 GMT',
    ]);
  });
});

describe('HPACK encoder', () => {
  it('produces the RFC bytes of C.4 (requests, Huffman, dynamic table)', () => {
    const encoder = new HpackEncoder();
    expect(encoder.encode(REQ1).toString('hex')).toBe('828684418cf1e3c2e5f23a6ba0ab90f4ff');
    expect(encoder.encode(REQ2).toString('hex')).toBe('828684be5886a8eb10649cbf');
    expect(encoder.encode(REQ3).toString('hex')).toBe('828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf');
  });

  it('produces the RFC bytes of C.6 (responses, table of 256 with evictions)', () => {
    const encoder = new HpackEncoder(256);
    for (const [block, headers] of SEQUENCES.find((s) => s.name.startsWith('C.6'))!.steps) {
      expect(encoder.encode(headers).toString('hex')).toBe(block);
    }
  });

  it('stays in sync with a decoder across table size changes, secrets and oversized values', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder(4096);
    const lists: H2HeaderList[] = [];
    for (let i = 0; i < 200; i++) {
      lists.push([
        [':method', 'CONNECT'],
        [':authority', `10.0.${i % 7}.1:${8000 + (i % 13)}`],
        ['authorization', `Bearer token-${i}`],
        ['x-request', `r-${i}-${'q'.repeat(i % 50)}`],
        ['x-huge', 'h'.repeat(i % 3 === 0 ? 5000 : 10)],
        ['x-latin1', `caf\u00e9-${i}`],
      ]);
    }
    lists.forEach((list, i) => {
      if (i === 50) encoder.setPeerTableSize(0);
      if (i === 60) encoder.setPeerTableSize(100);
      if (i === 70) encoder.setPeerTableSize(4096);
      const block = encoder.encode(list);
      expect(decoder.decode(block).headers).toEqual(list);
      if (i > 0 && i < 50 && i % 3 !== 0) expect(block.length).toBeLessThan(120);
    });
    // authorization is never indexed: no table entry ever holds a token.
    expect(decoder.table.names).not.toContain('authorization');
  });
});

describe('HPACK decoder: malformed blocks are COMPRESSION_ERROR, never a crash', () => {
  const bad: Array<[string, string]> = [
    ['indexed field 0', '80'],
    ['index beyond the dynamic table', 'be'],
    ['truncated integer', 'ff'],
    ['integer overflow', 'ffffffffffffff0f'],
    ['string longer than the block', '400a6162'],
    ['name literal missing', '40'],
    ['Huffman EOS', '4082ffff0161'],
    ['table size update above the limit', '3fe21f'],
    ['table size update after a field', '8220'],
  ];
  for (const [what, block] of bad) {
    it(what, () => {
      const decoder = new HpackDecoder(4096);
      let err: unknown;
      try {
        decoder.decode(hex(block));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HboneError);
      expect(err).toMatchObject({ code: 'ERR_H2_PROTOCOL', h2Code: H2_ERROR.COMPRESSION_ERROR });
    });
  }

  it('survives random garbage (only HboneError COMPRESSION_ERROR or a result)', () => {
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let n = 0; n < 3000; n++) {
      const block = Buffer.from(Array.from({ length: 1 + (n % 40) }, rand));
      const decoder = new HpackDecoder(4096, 8192);
      try {
        decoder.decode(block);
      } catch (e) {
        expect(e).toMatchObject({ code: 'ERR_H2_PROTOCOL', h2Code: H2_ERROR.COMPRESSION_ERROR });
      }
    }
  });

  it('flags a header list above maxHeaderListSize but keeps the table in sync', () => {
    const encoder = new HpackEncoder();
    const decoder = new HpackDecoder(4096, 200);
    const big: H2HeaderList = [
      ['x-a', 'a'.repeat(100)],
      ['x-b', 'b'.repeat(100)],
    ];
    const out = decoder.decode(encoder.encode(big));
    expect(out.oversized).toBe(true);
    // The next block references the entries added above: decoding still works.
    expect(decoder.decode(encoder.encode([['x-a', 'a'.repeat(100)]]))).toEqual({
      headers: [['x-a', 'a'.repeat(100)]],
      oversized: false,
    });
  });
});
