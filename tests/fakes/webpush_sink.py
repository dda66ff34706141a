"""A lean loopback push service for benchmarks: what webpush_receiver.py checks of a push
except the decryption, on an asyncio HTTP/1.1 server that counts instead of keeping.

Every ``POST /push/<anything>`` needs a VAPID Authorization (an ES256 JWT for this origin
signed by the key it carries, checked once per distinct header: a sender re-signs per origin,
the naive path per push), ``Content-Encoding: aes128gcm``, a TTL and at most 4 KB; it is
answered 201 with a Location. Push services speak https only, and so does this one when given
``--cert-file`` (a self-signed certificate for 127.0.0.1, written there for the senders to
trust, e.g. through REQUESTS_CA_BUNDLE). Standalone (prints the port on its first line; each
line read on stdin is answered with the summary as JSON)::

    python -m tests.fakes.webpush_sink --port 0 [--cert-file /tmp/sink.pem]
"""

import argparse
import asyncio
import base64
import datetime
import ipaddress
import itertools
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.apns_server import answer_summaries_on_stdin

MAX_BODY_BYTES = 4096


class WebPushSink:
    def __init__(self, port: int = 0, cert_file: Path | None = None):
        self._socket = socket.create_server(("127.0.0.1", port), backlog=1024)
        self._tls = _tls_context(Path(cert_file)) if cert_file else None
        self._verified: set[str] = set()
        self._names = itertools.count(1)
        self.accepted = self.refused = 0
        self.first_at = self.last_at = None

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def summary(self) -> dict:
        return {"total": self.accepted, "refused": self.refused,
                "first_at": self.first_at, "last_at": self.last_at}

    def push(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """(status, extra header lines) for one push."""
        if not path.startswith("/push/"):
            return 404, ""
        if not self._vapid_sound(headers.get("authorization", "")):
            return 403, ""
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return 400, ""
        if len(body) > MAX_BODY_BYTES:
            return 413, ""
        self.accepted += 1
        self.last_at = time.monotonic()
        self.first_at = self.first_at or self.last_at
        return 201, f"Location: {self.url}/message/{next(self._names)}\r\n"

    def _vapid_sound(self, authorization: str) -> bool:
        if authorization in self._verified:
            return True
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
            return False
        raw = base64.urlsafe_b64decode(fields["k"] + "=" * (-len(fields["k"]) % 4))
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            jwt.decode(fields["t"], key, algorithms=["ES256"], audience=self.url)
        except (ValueError, jwt.PyJWTError):
            return False
        self._verified.add(authorization)
        return True

    def serve_forever(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(loop.create_server(lambda: _Http(self), sock=self._socket,
                                                   ssl=self._tls))
        loop.run_forever()


def _tls_context(cert_file: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1, written as PEM to
    ``cert_file`` (and its key beside it, ``.key``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = cert_file.with_suffix(".key")
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class _Http(asyncio.Protocol):
    """HTTP/1.1 keep-alive parsed straight from the socket's bytes (as the fake FCM does)."""

    def __init__(self, sink: WebPushSink):
        self.sink = sink
        self.buffer = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            size = end + 4 + int(headers.get("content-length") or 0)
            if len(self.buffer) < size:
                return
            body = bytes(self.buffer[end + 4:size])
            del self.buffer[:size]
            status, extra = self.sink.push(lines[0].split(" ")[1], headers, body)
            self.transport.write(f"HTTP/1.1 {status} -\r\n{extra}Content-Length: 0\r\n\r\n"
                                 .encode("latin-1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert-file", help="serve https with a certificate written here")
    args = parser.parse_args()
    sink = WebPushSink(port=args.port, cert_file=args.cert_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(sink.port, flush=True)
    answer_summaries_on_stdin(sink.summary)
    try:
        sink.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
