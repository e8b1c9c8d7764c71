"""A small real HTTP/2 server (TLS, ALPN "h2") on loopback for the gateway's HTTP/2 test,
written on the h2 protocol library (which httpx's HTTP/2 support uses) because no HTTP/2
server package is installed. It answers every request with a JSON echo."""

from __future__ import annotations

import asyncio
import json
import ssl

import h2.config
import h2.connection
import h2.events
import h2.exceptions


class H2Echo(asyncio.Protocol):
    connections = 0
    requests: list[dict[str, str]] = []

    def __init__(self) -> None:
        self._conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self._streams: dict[int, dict[str, str]] = {}
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        H2Echo.connections += 1
        self._conn.initiate_connection()
        transport.write(self._conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._transport.write(self._conn.data_to_send())
            self._transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self._streams[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self._conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._respond(event.stream_id)
        self._transport.write(self._conn.data_to_send())

    def _respond(self, stream_id: int) -> None:
        headers = self._streams.pop(stream_id)
        H2Echo.requests.append(headers)
        body = json.dumps({"http_version": "2", "path": headers[":path"],
                           "idempotency_key": headers.get("idempotency-key", "")}).encode()
        self._conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/json"),
                                            ("content-length", str(len(body)))])
        self._conn.send_data(stream_id, body, end_stream=True)


async def start_h2_server(certfile: str) -> tuple[asyncio.Server, int]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile)
    context.set_alpn_protocols(["h2"])
    H2Echo.connections = 0
    H2Echo.requests = []
    server = await asyncio.get_running_loop().create_server(H2Echo, "127.0.0.1", 0, ssl=context)
    return server, server.sockets[0].getsockname()[1]
