/**
 * embed-hbone: an app puts an HBONE tunnel inside its own TCP proxy.
 *
 *   your client ──TCP──► local listener ══ HBONE (mTLS 1.3, HTTP/2 CONNECT) ══► HboneServer ──TCP──► echo service
 *
 * Everything runs in this process on 127.0.0.1 with certificates made for the occasion. The run sends a
 * few messages through the tunnel, prints what happens, and exits 0. `--keep` keeps it running so you can
 * try it with `nc`.
 */
import { once } from 'node:events';
import * as net from 'node:net';
import { HboneClient, HboneServer, splice } from '@ambient-ts/hbone';
import { createExampleCa } from './certificates.js';

const keep = process.argv.includes('--keep');
const APP_ID = 'spiffe://cluster.local/ns/shop/sa/frontend';
const ECHO_ID = 'spiffe://cluster.local/ns/shop/sa/echo';

const say = (who: string, what: string): void => console.log(`${who.padEnd(14)} ${what}`);

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// 1. Certificates: one mesh CA, one identity per side.
const ca = await createExampleCa();
const appCreds = await ca.issue(APP_ID);
const echoCreds = await ca.issue(ECHO_ID);
say('[ca]', `issued ${APP_ID}`);
say('[ca]', `issued ${ECHO_ID}`);

// 2. The service being reached: a plain TCP echo.
const echo = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on('error', () => {});
  s.pipe(s);
});
const echoPort = await listen(echo);
say('[echo]', `TCP echo service on 127.0.0.1:${echoPort}`);

// 3. The receiving side: an HBONE server that checks the caller and connects to the echo service.
const hboneServer = new HboneServer({
  credentials: echoCreds,
  handler: (req) => {
    say('[hbone server]', `CONNECT ${req.authority.host}:${req.authority.port} from ${req.peerIdentity}`);
    if (req.authority.port !== echoPort) return req.reject(401, 'only the echo service may be reached');
    return new Promise((resolve, reject) => {
      const upstream = net.connect({ host: req.authority.host, port: req.authority.port, allowHalfOpen: true });
      upstream.once('connect', () => resolve(upstream));
      upstream.once('error', reject);
    });
  },
});
hboneServer.on('tunnelClose', (info, stats) =>
  say('[hbone server]', `tunnel from ${info.remoteAddress} closed: ${stats.bytesIn} B in, ${stats.bytesOut} B out`),
);
hboneServer.on('tlsError', (err) => say('[hbone server]', `refused a connection: ${err.code} ${err.message}`));
const { port: hbonePort } = await hboneServer.listen(0, '127.0.0.1');
say('[hbone server]', `mTLS HBONE listener on 127.0.0.1:${hbonePort} as ${ECHO_ID}`);

// 4. The sending side: the app's own proxy. Each local TCP connection becomes one HBONE tunnel.
const client = new HboneClient({ credentials: appCreds });
const proxy = net.createServer({ allowHalfOpen: true }, (local) => {
  local.on('error', () => {});
  client
    .connect(
      { address: '127.0.0.1', port: echoPort },
      {
        expectedIdentities: [ECHO_ID],
        server: { address: '127.0.0.1', port: hbonePort },
        forwarded: { for: { address: local.remoteAddress ?? '127.0.0.1', port: local.remotePort ?? 1 } },
        baggage: { namespaceName: 'shop', workloadName: 'frontend', serviceName: 'frontend', serviceVersion: 'v1' },
      },
    )
    .then(
      (tunnel) => {
        say('[app proxy]', `tunnel up for ${local.remoteAddress}:${local.remotePort}`);
        return splice(local, tunnel);
      },
      (err: Error & { code?: string }) => {
        say('[app proxy]', `could not open a tunnel: ${err.code} ${err.message}`);
        local.destroy();
      },
    );
});
const proxyPort = await listen(proxy);
say('[app proxy]', `local TCP listener on 127.0.0.1:${proxyPort}, tunnelling to the echo service`);

async function shutdown(): Promise<void> {
  await client.close();
  await hboneServer.close();
  proxy.close();
  echo.close();
}

if (keep) {
  console.log(`\nRunning. Try:  nc 127.0.0.1 ${proxyPort}   (type a line; it comes back through the tunnel)`);
  console.log('Ctrl-C to stop.');
  process.once('SIGINT', () => void shutdown().then(() => process.exit(0)));
} else {
  // 5. Use it like any TCP service: three connections, each sending a line and half-closing.
  for (const text of ['hello through HBONE', 'second connection, same pooled HTTP/2 connection', 'bye']) {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: proxyPort, allowHalfOpen: true });
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.once('end', () => resolve(Buffer.concat(chunks).toString()));
      s.once('error', reject);
      s.end(text);
    });
    say('[you]', `sent ${JSON.stringify(text)}, got back ${JSON.stringify(reply)}`);
    if (reply !== text) throw new Error('the echo did not match');
  }
  say('[app proxy]', `pool: ${JSON.stringify(client.stats())}`);
  await shutdown();
  say('[done]', 'all messages made the round trip; exiting 0');
}
