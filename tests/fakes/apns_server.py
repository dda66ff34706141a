"""A loopback APNs gateway: HTTP/2 (h2c, prior knowledge) on ``POST /3/device/<token>``.

It checks what Apple checks first (an ES256 provider token from our key id and team, a topic,
a JSON body of at most 4 KB) and answers like the gateway: 200 with ``apns-id``, or a status
with ``{"reason": ...}`` chosen by the device token's prefix (see ANSWERS). It counts what it
accepts rather than keeping it: it serves benchmarks of up to a million notifications.

aioapns dials api.push.apple.com:443 over TLS; ``route_aioapns_to(port)`` makes every aioapns
client of this process (and of the processes it forks) dial this gateway instead, in clear.
Run standalone (prints the port on its first line; each line read on stdin is answered with
the summary as JSON)::

    python -m tests.fakes.apns_server --port 0 --key-file /tmp/AuthKey.p8 --key-id K --team-id T
"""

import argparse
import asyncio
import functools
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded

MAX_PAYLOAD_BYTES = 4096  # Apple refuses bigger alert payloads with 413 PayloadTooLarge
# token prefix -> (status, reason)
ANSWERS = {
    "unregistered-": (410, "Unregistered"),
    "baddevice-": (400, "BadDeviceToken"),
    "busy-": (429, "TooManyRequests"),
    "down-": (503, "ServiceUnavailable"),
}


class FakeApns:
    def __init__(self, key_id: str, team_id: str, port: int = 0):
        self.key_id, self.team_id = key_id, team_id
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._verified: set[bytes] = set()  # provider tokens already checked (one per hour)
        self.accepted = self.refused = 0
        self.first_at = self.last_at = None  # time.monotonic() of the first and last accepted
        self._socket = socket.create_server(("127.0.0.1", port), backlog=1024)

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def write_key(self, path) -> Path:
        """The .p8 signing key (PKCS#8 PEM) the provider signs its tokens with."""
        path = Path(path)
        path.write_bytes(self._key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        return path

    def summary(self) -> dict:
        return {"total": self.accepted, "refused": self.refused,
                "first_at": self.first_at, "last_at": self.last_at}

    def push(self, headers: dict[bytes, bytes], body: bytes) -> tuple[int, str]:
        """(status, reason) for one notification request."""
        path = headers.get(b":path", b"")
        if headers.get(b":method") != b"POST" or not path.startswith(b"/3/device/"):
            return 404, "BadPath"
        reason = self._refusal(headers, body)
        if reason:
            return 403 if "ProviderToken" in reason else 400, reason
        token = path[len(b"/3/device/"):].decode()
        for prefix, answer in ANSWERS.items():
            if token.startswith(prefix):
                return answer
        return 200, ""

    def _refusal(self, headers: dict[bytes, bytes], body: bytes) -> str:
        token = headers.get(b"authorization", b"").removeprefix(b"bearer ")
        if token not in self._verified:
            try:
                claims = jwt.decode(token, self._key.public_key(), algorithms=["ES256"])
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                return "InvalidProviderToken"
            if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
                return "InvalidProviderToken"
            self._verified.add(token)
        if not headers.get(b"apns-topic"):
            return "MissingTopic"
        if len(body) > MAX_PAYLOAD_BYTES:
            return "PayloadTooLarge"
        try:
            json.loads(body)
        except ValueError:
            return "BadPayload"
        return ""

    def serve_forever(self, ready: threading.Event | None = None) -> None:
        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            loop.create_server(lambda: _H2Gateway(self), sock=self._socket))
        if ready is not None:
            ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.close()

    def __enter__(self) -> "FakeApns":
        """Serve on a thread of its own (in-process use from tests)."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._socket.close()


class _H2Gateway(asyncio.Protocol):
    def __init__(self, fake: FakeApns):
        self.fake = fake
        # No header validation or normalisation: Apple's gateway checks what push() checks,
        # and h2's checks would cost the fake more CPU per request than they tell.
        self.conn = H2Connection(H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False,
            normalize_inbound_headers=False, validate_outbound_headers=False,
            normalize_outbound_headers=False))
        self.streams: dict[int, tuple[dict, bytearray]] = {}

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        for event in self.conn.receive_data(data):
            if isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (dict(event.headers), bytearray())
            elif isinstance(event, DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                self._answer(event.stream_id)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
                return
        self.transport.write(self.conn.data_to_send())

    def _answer(self, stream_id: int) -> None:
        headers, body = self.streams.pop(stream_id)
        status, reason = self.fake.push(headers, bytes(body))
        answer = [(b":status", str(status).encode()),
                  (b"apns-id", headers.get(b"apns-id", b""))]
        if status == 200:
            self.fake.accepted += 1
            self.fake.last_at = time.monotonic()
            self.fake.first_at = self.fake.first_at or self.fake.last_at
            self.conn.send_headers(stream_id, answer, end_stream=True)
            return
        self.fake.refused += 1
        self.conn.send_headers(stream_id, answer)
        self.conn.send_data(stream_id, json.dumps({"reason": reason}).encode(), end_stream=True)


def route_aioapns_to(port: int, host: str = "127.0.0.1") -> Callable[[], None]:
    """Every aioapns token-auth client dials ``host:port`` in clear (HTTP/2 with prior
    knowledge) instead of Apple's gateway over TLS; everything above the socket is unchanged.
    Returns what undoes it (for clients created afterwards)."""
    from aioapns.connection import APNsKeyConnectionPool

    original = APNsKeyConnectionPool._create_connection

    async def _create_connection(pool, protocol_factory):
        _, protocol = await pool.loop.create_connection(protocol_factory, host=host, port=port)
        return protocol

    APNsKeyConnectionPool._create_connection = _create_connection
    return lambda: setattr(APNsKeyConnectionPool, "_create_connection", original)


def answer_summaries_on_stdin(summary) -> None:
    """Each line on stdin gets the summary as one JSON line on stdout (from a thread)."""
    def answer():
        for _line in sys.stdin:
            print(json.dumps(summary()), flush=True)

    threading.Thread(target=answer, daemon=True).start()


def _decode_each_huffman_string_once() -> None:
    """Every request carries the same Huffman-coded provider token (h2 never indexes an
    authorization header), which pure-Python HPACK decodes each time: a fifth of this
    gateway's CPU. In its own process, where nothing else decodes HPACK, each distinct string
    is decoded once; the requests and answers are the same."""
    import hpack.hpack

    hpack.hpack.decode_huffman = functools.lru_cache(maxsize=4096)(hpack.hpack.decode_huffman)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key-file", required=True, help="write the .p8 signing key here")
    parser.add_argument("--key-id", default="FAKEKEY001")
    parser.add_argument("--team-id", default="FAKETEAM01")
    args = parser.parse_args()
    _decode_each_huffman_string_once()
    fake = FakeApns(args.key_id, args.team_id, port=args.port)
    fake.write_key(args.key_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(fake.port, flush=True)
    answer_summaries_on_stdin(fake.summary)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
