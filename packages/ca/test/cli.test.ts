import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, USAGE } from '../src/cli-main.js';
import { opensslVerify, SLEEP, tempDir, withOpenssl } from './helpers.js';

const dir = tempDir();

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (l) => (out += `${l}\n`), err: (l) => (err += `${l}\n`) });
  return { code, out, err };
}

describe('ambient-ca CLI', () => {
  it('prints help', async () => {
    expect(await cli('--help')).toEqual({ code: 0, out: `${USAGE}\n`, err: '' });
    expect((await cli()).code).toBe(2);
    expect(await cli('frobnicate')).toMatchObject({
      code: 2,
      err: expect.stringContaining('unknown command "frobnicate"'),
    });
  });

  withOpenssl(
    'init creates a CA; issue writes a key (0600) and a chain that verifies; inspect describes them',
    async () => {
      const ca = join(dir, 'ca');
      const init = await cli('init', ca, '--trust-domain', 'cluster.local');
      expect(init).toMatchObject({
        code: 0,
        out: expect.stringContaining('created CA for trust domain cluster.local'),
      });
      expect((await cli('init', ca)).err).toContain('already holds a CA');

      const out = join(dir, 'out');
      const issued = await cli('issue', '--ca', ca, '--identity', SLEEP, '--ttl', '1h', '--out', out);
      expect(issued).toMatchObject({ code: 0, out: expect.stringContaining(`issued ${SLEEP}`) });
      expect(statSync(join(out, 'key.pem')).mode & 0o777).toBe(0o600);
      const chain = readFileSync(join(out, 'cert-chain.pem'), 'utf8');
      expect(readFileSync(join(out, 'root-cert.pem'), 'utf8')).toBe(readFileSync(join(ca, 'root-cert.pem'), 'utf8'));
      expect(opensslVerify(dir, readFileSync(join(out, 'root-cert.pem'), 'utf8'), chain).status).toBe(0);

      const both = join(dir, 'both.pem');
      writeFileSync(both, chain + readFileSync(join(ca, 'root-cert.pem'), 'utf8'));
      const shown = await cli('inspect', both);
      expect(shown.code).toBe(0);
      expect(shown.out).toContain(`identity:    ${SLEEP}`);
      expect(shown.out).toMatch(/certificate 0 of 2: leaf/);
      expect(shown.out).toMatch(/expires in (59m\d+s|1h)/);
      expect(shown.out).toContain('signed by certificate 1: yes');
      expect(shown.out).toMatch(/certificate 1 of 2: CA, self-signed root/);
    },
  );

  it('reports bad input clearly', async () => {
    expect(await cli('issue', '--ca', join(dir, 'nowhere'), '--identity', SLEEP)).toMatchObject({
      code: 1,
      err: expect.stringContaining('run "ambient-ca init'),
    });
    const ca = join(dir, 'ca2');
    await cli('init', ca);
    expect(await cli('issue', '--ca', ca, '--identity', SLEEP, '--ttl', '100d')).toMatchObject({
      code: 1,
      err: expect.stringContaining('ERR_TTL_INVALID'),
    });
    expect(await cli('issue', '--ca', ca, '--identity', 'not-spiffe')).toMatchObject({
      code: 1,
      err: expect.stringContaining('ERR_IDENTITY_INVALID'),
    });
    expect(await cli('issue', '--ca', ca, '--identity', SLEEP, '--ttl', 'soon')).toMatchObject({
      code: 1,
      err: expect.stringContaining('not a duration'),
    });
    expect(await cli('issue', '--bogus')).toMatchObject({ code: 2 });
    writeFileSync(join(dir, 'junk.pem'), 'hello');
    expect(await cli('inspect', join(dir, 'junk.pem'))).toMatchObject({
      code: 1,
      err: expect.stringContaining('no PEM CERTIFICATE block'),
    });
    expect(await cli('inspect', join(dir, 'missing.pem'))).toMatchObject({
      code: 1,
      err: expect.stringContaining('cannot read'),
    });
  });
});
