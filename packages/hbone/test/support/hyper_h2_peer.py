#!/usr/bin/env python3
"""
An HTTP/2 peer that shares no code with ours or with nghttp2: hyper-h2 (pure-Python HTTP/2 framing, flow
control and HPACK, Debian package python3-h2) over Python's ssl module, with mutual TLS 1.3 and ALPN h2.
Used by test/interop-hyper-h2.test.ts, which drives it with one JSON argument:

  server <json>  CONNECT echo server. Prints {"port": N} once listening, then one JSON line per event
                 ({"event": "connection"}, {"event": "request", "headers": [...]}). A CONNECT stream gets 200
                 and its bytes echoed back; END_STREAM is answered once everything was echoed. Anything else
                 gets 400. With "goaway_after": N, the connection sends GOAWAY once N streams ended.
  client <json>  Opens the given streams one after another, then PINGs, and prints one JSON result.

hyper-h2 4.1 insists on :scheme and :path in every request, CONNECT included, where RFC 9113 §8.5 forbids
them; so its header validation is off exactly where a plain CONNECT passes (the client's outbound headers, the
server's inbound ones). Framing, HPACK and flow control stay hyper-h2's own.

Every DATA byte is acknowledged (WINDOW_UPDATE) only after it was processed, and every send obeys the peer's
windows and maximum frame size, so a peer that gets flow control wrong stalls or is reset here.
"""
import asyncio
import hashlib
import json
import ssl
import sys

import h2.config
import h2.connection
import h2.events

LONG_VALUE = "hyper-h2 says hello; " * 12  # long enough to be Huffman-coded and kept in the dynamic table


def tls_context(server_side, cfg):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    ctx.load_verify_locations(cfg["ca"])
    if not server_side:
        # Workload certificates carry a SPIFFE URI SAN and no DNS name; the chain is still verified.
        ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    return ctx


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text_headers(headers):
    return [[k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v] for k, v in headers]


class Outbox:
    """Bytes waiting per stream for the peer's flow-control windows."""

    def __init__(self, conn):
        self.conn = conn
        self.pending = {}
        self.ending = set()
        self.closed = 0

    def queue(self, stream_id, data, end=False):
        self.pending.setdefault(stream_id, bytearray()).extend(data)
        if end:
            self.ending.add(stream_id)
        self.pump()

    def pump(self):
        for stream_id in list(self.pending):
            buf = self.pending[stream_id]
            while buf:
                room = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size, len(buf))
                if room <= 0:
                    break
                self.conn.send_data(stream_id, bytes(buf[:room]))
                del buf[:room]
            if not buf and stream_id in self.ending:
                self.conn.end_stream(stream_id)
                self.closed += 1
                self.ending.discard(stream_id)
                del self.pending[stream_id]

    def drop(self, stream_id):
        self.pending.pop(stream_id, None)
        self.ending.discard(stream_id)


async def serve(cfg):
    async def on_connection(reader, writer):
        emit({"event": "connection"})
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=False))
        conn.initiate_connection()
        out = Outbox(conn)
        writer.write(conn.data_to_send())
        while True:
            data = await reader.read(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    headers = dict(ev.headers)
                    emit({"event": "request", "headers": text_headers(ev.headers)})
                    if headers.get(b":method") != b"CONNECT":
                        conn.send_headers(ev.stream_id, [(":status", "400")], end_stream=True)
                    else:
                        conn.send_headers(ev.stream_id, [(":status", "200"), ("x-served-by", LONG_VALUE)])
                        out.queue(ev.stream_id, b"")
                elif isinstance(ev, h2.events.DataReceived):
                    out.queue(ev.stream_id, ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    out.queue(ev.stream_id, b"", end=True)
                elif isinstance(ev, h2.events.StreamReset):
                    out.drop(ev.stream_id)
                elif isinstance(ev, h2.events.WindowUpdated) or isinstance(ev, h2.events.RemoteSettingsChanged):
                    out.pump()
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    emit({"event": "goaway", "error_code": int(ev.error_code)})
            if out.closed == cfg.get("goaway_after"):
                # GOAWAY once that many streams are closed both ways, then stop: hyper-h2 takes no frames after it.
                conn.close_connection()
                emit({"event": "sent-goaway"})
                writer.write(conn.data_to_send())
                await writer.drain()
                break
            writer.write(conn.data_to_send())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=tls_context(True, cfg))
    emit({"port": server.sockets[0].getsockname()[1]})
    async with server:
        await server.serve_forever()


def pattern(size, seed):
    out = bytearray()
    block = 0
    while len(out) < size:
        out.extend(hashlib.sha256(f"{seed}:{block}".encode()).digest())
        block += 1
    return bytes(out[:size])


async def run_client(cfg):
    reader, writer = await asyncio.open_connection(cfg["host"], cfg["port"], ssl=tls_context(False, cfg))
    alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False))
    conn.initiate_connection()
    out = Outbox(conn)
    events = asyncio.Queue()

    async def pump_socket():
        writer.write(conn.data_to_send())
        await writer.drain()
        while True:
            data = await reader.read(65536)
            if not data:
                await events.put(None)
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                    out.pump()
                if isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                await events.put(ev)
            writer.write(conn.data_to_send())
            await writer.drain()

    async def flush():
        writer.write(conn.data_to_send())
        await writer.drain()

    reading = asyncio.ensure_future(pump_socket())
    results = []
    for i, spec in enumerate(cfg["streams"]):
        stream_id = conn.get_next_available_stream_id()
        method = spec.get("method", "CONNECT")
        headers = [(":method", method), (":authority", spec["authority"])]
        if method != "CONNECT":
            headers += [(":scheme", "https"), (":path", "/")]
        headers += [tuple(h) for h in spec.get("headers", [])]
        conn.send_headers(stream_id, headers)
        payload = pattern(spec.get("send", 0), i)
        result = {"status": None, "received": 0, "sent_sha256": hashlib.sha256(payload).hexdigest()}
        digest = hashlib.sha256()
        if spec.get("end_first"):
            # Half-close before any data flows: the other direction must keep working.
            conn.end_stream(stream_id)
        await flush()
        while True:
            ev = await events.get()
            if ev is None:
                result["closed"] = True
                break
            if getattr(ev, "stream_id", stream_id) != stream_id:
                continue
            if isinstance(ev, h2.events.ResponseReceived):
                result["status"] = int(dict(ev.headers)[b":status"])
                result["headers"] = text_headers(ev.headers)
                if result["status"] == 200 and not spec.get("end_first"):
                    out.queue(stream_id, payload, end=True)
                    await flush()
            elif isinstance(ev, h2.events.DataReceived):
                result["received"] += len(ev.data)
                digest.update(ev.data)
            elif isinstance(ev, h2.events.StreamEnded):
                break
            elif isinstance(ev, h2.events.StreamReset):
                result["reset"] = int(ev.error_code)
                break
            elif isinstance(ev, h2.events.ConnectionTerminated):
                result["goaway"] = int(ev.error_code)
                break
        result["received_sha256"] = digest.hexdigest()
        results.append(result)
    ping = None
    if cfg.get("ping"):
        conn.ping(b"interop!")
        await flush()
        while True:
            ev = await events.get()
            if ev is None:
                break
            if isinstance(ev, h2.events.PingAckReceived):
                ping = ev.ping_data.decode()
                break
    conn.close_connection()
    await flush()
    reading.cancel()
    writer.close()
    emit({"alpn": alpn, "streams": results, "ping": ping})


def main():
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    asyncio.run(serve(cfg) if mode == "server" else run_client(cfg))


if __name__ == "__main__":
    main()
