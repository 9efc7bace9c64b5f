import { closeSync, openSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { OriginalDstError, originalDestination, originalDstSupport } from '../src/index.js';
import { netnsUnavailableReason, TestNetns } from './netns.js';

const support = originalDstSupport();
const addonIt = support.available ? it : it.skip;
if (!support.available) console.warn(`original-dst: addon tests skipped: ${support.reason}`);
const netnsReason = support.available ? netnsUnavailableReason() : 'the addon is not available';
const netnsIt = netnsReason === undefined ? it : it.skip;
if (netnsReason) console.warn(`original-dst: REDIRECT tests skipped: ${netnsReason}`);

function acceptOne(server: Server): Promise<Socket> {
  return new Promise((resolve) => server.once('connection', resolve));
}

function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.once('end', () => {
      socket.end();
      resolve(text);
    });
    socket.once('error', reject);
  });
}

describe('originalDstSupport', () => {
  it('reports availability, with a reason when unavailable', () => {
    if (support.available) expect(support).toEqual({ available: true });
    else expect(support.reason).toMatch(/\S/);
    expect(process.platform === 'linux' || !support.available).toBe(true);
  });
});

describe('originalDestination: bad descriptors', () => {
  addonIt('rejects a destroyed socket with ERR_ORIGINAL_DST_NO_FD', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    try {
      await new Promise((r) => client.once('connect', r));
      client.destroy();
      expect(() => originalDestination(client)).toThrow(
        expect.objectContaining({ code: 'ERR_ORIGINAL_DST_NO_FD' }) as Error,
      );
    } finally {
      server.close();
    }
  });

  addonIt('rejects a descriptor that is not a socket', () => {
    const fd = openSync(__filename, 'r');
    try {
      expect(() => originalDestination(fd)).toThrow(
        expect.objectContaining({ code: 'ERR_ORIGINAL_DST_NO_FD' }) as Error,
      );
    } finally {
      closeSync(fd);
    }
  });

  addonIt('rejects negative and non-integer descriptors', () => {
    for (const fd of [-1, 1.5, Number.NaN]) {
      let caught: unknown;
      try {
        originalDestination(fd);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(OriginalDstError);
      expect((caught as OriginalDstError).code).toBe('ERR_ORIGINAL_DST_NO_FD');
    }
  });
});

describe('originalDestination behind iptables REDIRECT (network namespace)', () => {
  let ns: TestNetns | undefined;
  afterEach(() => {
    ns?.destroy();
    ns = undefined;
  });

  netnsIt('recovers an IPv4 destination redirected to a local listener', async () => {
    ns = new TestNetns('v4');
    ns.exec('ip', 'addr', 'add', '10.248.250.1/24', 'dev', 'd0');
    const server = await ns.listen('127.0.0.1', 15001);
    try {
      ns.exec(
        'iptables',
        '-t',
        'nat',
        '-A',
        'OUTPUT',
        '-p',
        'tcp',
        '-d',
        '10.248.250.77',
        '--dport',
        '8080',
        '-j',
        'REDIRECT',
        '--to-ports',
        '15001',
      );
      const accepted = acceptOne(server);
      const client = ns.connect('10.248.250.77', 8080, 'hello v4');
      const socket = await accepted;
      expect(originalDestination(socket)).toEqual({ address: '10.248.250.77', port: 8080, family: 4 });
      expect(socket.localPort).toBe(15001);
      expect(await readAll(socket)).toBe('hello v4');
      await client;
    } finally {
      server.close();
    }
  });

  netnsIt(
    'recovers an IPv6 destination redirected by ip6tables (skips inside if ip6tables nat is missing)',
    async () => {
      ns = new TestNetns('v6');
      if (!ns.tryExec('ip6tables', '-t', 'nat', '-L', '-n')) {
        console.warn('original-dst: IPv6 REDIRECT test skipped: ip6tables nat table unavailable');
        return;
      }
      ns.exec('ip', '-6', 'addr', 'add', 'fd00:248:250::1/64', 'dev', 'd0', 'nodad');
      const server = await ns.listen('::1', 15001);
      try {
        ns.exec(
          'ip6tables',
          '-t',
          'nat',
          '-A',
          'OUTPUT',
          '-p',
          'tcp',
          '-d',
          'fd00:248:250::77',
          '--dport',
          '9090',
          '-j',
          'REDIRECT',
          '--to-ports',
          '15001',
        );
        const accepted = acceptOne(server);
        const client = ns.connect('fd00:248:250::77', 9090, 'hello v6');
        const socket = await accepted;
        expect(originalDestination(socket)).toEqual({ address: 'fd00:248:250::77', port: 9090, family: 6 });
        expect(await readAll(socket)).toBe('hello v6');
        await client;
      } finally {
        server.close();
      }
    },
  );
});
