import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TokenTable } from '../src/tokens.js';
import { tempDir } from './helpers.js';

const ZT = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';

describe('TokenTable', () => {
  it('looks tokens up by value or by their SHA-256', () => {
    const secret = 'waypoint-secret-0123456789';
    const t = new TokenTable([
      { token: 'node-1-secret-0123456789', identity: ZT, kind: 'ztunnel', node: 'node-1' },
      {
        sha256: createHash('sha256').update(secret).digest('hex'),
        identity: 'spiffe://cluster.local/ns/a/sa/wp',
        kind: 'waypoint',
      },
    ]);
    expect(t.lookup('node-1-secret-0123456789')).toMatchObject({ kind: 'ztunnel', node: 'node-1' });
    expect(t.lookup('node-1-secret-0123456789')?.identity.toString()).toBe(ZT);
    expect(t.lookup(secret)).toMatchObject({ kind: 'waypoint' });
    expect(t.lookup('nope')).toBeUndefined();
    expect(t.size).toBe(2);
  });

  it.each([
    [{ token: 'short', identity: ZT, kind: 'ztunnel', node: 'n' }, /at least 16 characters/],
    [{ identity: ZT, kind: 'ztunnel', node: 'n' }, /needs "token".*or "sha256"/],
    [{ token: 'x'.repeat(20), identity: 'not-a-spiffe-id', kind: 'waypoint' }, /entry 1: identity: /],
    [{ token: 'x'.repeat(20), identity: ZT, kind: 'sidecar' }, /kind must be "ztunnel" or "waypoint"/],
    [{ token: 'x'.repeat(20), identity: ZT, kind: 'ztunnel' }, /a ztunnel token needs "node"/],
  ])('rejects %j', (entry, message) => {
    expect(() => new TokenTable([entry as never])).toThrow(message);
  });

  it('rejects the same token twice', () => {
    const e = { token: 'y'.repeat(20), identity: ZT, kind: 'waypoint' as const };
    expect(() => new TokenTable([e, e])).toThrow(/entry 2: the same token is listed twice/);
  });

  it('reads YAML and JSON files, with clear errors', async () => {
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(
        join(dir, 't.json'),
        JSON.stringify({ tokens: [{ token: 'z'.repeat(20), identity: ZT, kind: 'ztunnel', node: 'n1' }] }),
      );
      expect((await TokenTable.fromFile(join(dir, 't.json'))).size).toBe(1);
      writeFileSync(join(dir, 'bad.yaml'), 'tokens: {oops: 1}\n');
      await expect(TokenTable.fromFile(join(dir, 'bad.yaml'))).rejects.toMatchObject({
        code: 'ERR_CP_TOKENS',
        message: expect.stringContaining('must contain "tokens:'),
      });
      await expect(TokenTable.fromFile(join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'ERR_CP_TOKENS' });
    } finally {
      cleanup();
    }
  });
});
