"""A loopback FCM: Google's OAuth2 token endpoint and the FCM HTTP v1 send endpoint.

What each send returns is chosen by the registration token's prefix (see ANSWERS); any other
token is delivered. Accepted messages are recorded; ``GET /_received`` reports them as JSON so
a test in another process can count deliveries per ``data["delivery_id"]``.

In-process::

    with FakeFcm() as fcm:
        fcm.write_service_account(path)   # its token_uri points at this server
        ...

Standalone (prints the port on its first line)::

    python -m tests.fakes.fcm_server --port 0 --credentials /tmp/sa.json [--latency 0.05] \
        [--count-only]
"""

import argparse
import asyncio
import itertools
import json
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections import Counter
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SLOW_SECONDS = 1.0  # how long a "slow-" token waits before it is answered (and delivered)

# prefix -> (HTTP status, error.status, FcmError errorCode or None, message, extra details)
ANSWERS = {
    "unregistered-": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", []),
    "mismatch-": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch", []),
    "quota-": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED",
               "Quota exceeded for quota metric 'Messages per minute'.", []),
    "unavailable-": (503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.",
                     []),
    "internal-": (500, "INTERNAL", "INTERNAL", "Internal error encountered.", []),
    "invalid-": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                 "Invalid value at 'message.android.ttl' (type.googleapis.com/"
                 "google.protobuf.Duration), Field 'ttl', Illegal duration format",
                 [{"@type": BAD_REQUEST, "fieldViolations": [{
                     "field": "message.android.ttl",
                     "description": "Invalid value at 'message.android.ttl'"}]}]),
    "badtoken-": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                  "The registration token is not a valid FCM registration token", []),
}
RETRY_AFTER = {"quota-": "1"}
UNAUTHENTICATED = (401, "UNAUTHENTICATED", None,
                   "Request had invalid authentication credentials. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential.", [])


class FakeFcm:
    def __init__(self, port: int = 0, project_id: str = "journeyhub-test", latency: float = 0.0,
                 keep_messages: bool = True):
        self.project_id = project_id
        # Off for benchmarks: a million accepted messages are counted, not kept.
        self.keep_messages = keep_messages
        self.latency = latency  # seconds added to every send
        self.auth_failing = False  # every send answers 401 UNAUTHENTICATED
        self._outage: list[tuple[float, str]] = []  # (monotonic end, ANSWERS prefix) phases
        self.client_email = f"push-sender@{project_id}.iam.gserviceaccount.com"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._access_tokens: set[str] = set()
        self.reset()
        self._socket = socket.create_server(("127.0.0.1", port), backlog=1024)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_HttpConnection] = set()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.received: list[dict] = []  # accepted messages: {"token", "data", "message"}
            self.accepted = 0
            self.first_at = self.last_at = None  # time.monotonic() of the first, last accepted
            self.attempts: Counter[str] = Counter()  # send requests per registration token
            self.token_requests = 0
        self.auth_failing = False

    def outage(self, *phases: tuple[float, str]) -> None:
        """From now on, answer every send as a token of that ANSWERS prefix would be answered,
        phase after phase: ``outage((5, "unavailable-"), (5, "quota-"))`` is five seconds of
        503 and then five of 429 with Retry-After. ``outage()`` ends it."""
        end, plan = time.monotonic(), []
        for seconds, prefix in phases:
            end += seconds
            plan.append((end, prefix))
        with self._lock:
            self._outage = plan

    def _outage_prefix(self) -> str | None:
        now = time.monotonic()
        with self._lock:
            return next((prefix for end, prefix in self._outage if now < end), None)

    def start(self) -> "FakeFcm":
        """Serve on a thread of its own (in-process use from tests)."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join()
        self.close()

    def serve_forever(self, ready: threading.Event | None = None) -> None:
        """Serve on the calling thread until stop() (or the process ends)."""
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(self._loop.create_server(
            lambda: _HttpConnection(self), sock=self._socket,
        ))
        if ready is not None:
            ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for connection in list(self._connections):  # open keep-alive connections
                connection.transport.abort()
            self._loop.run_until_complete(asyncio.sleep(0))  # let them see connection_lost
            self._loop.close()

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "FakeFcm":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def service_account(self, private_key: rsa.RSAPrivateKey | None = None) -> dict:
        """A service account JSON whose token_uri is this server (signed with our key unless
        another is given, which the token endpoint will then refuse)."""
        pem = (private_key or self._key).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account", "project_id": self.project_id,
            "private_key_id": "fake-key-1", "private_key": pem,
            "client_email": self.client_email, "client_id": "1",
            "token_uri": f"{self.url}/token",
        }

    def write_service_account(self, path, private_key: rsa.RSAPrivateKey | None = None) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.service_account(private_key)))
        return path

    def summary(self) -> dict:
        with self._lock:
            by_delivery = Counter(m["data"].get("delivery_id") for m in self.received
                                  if "delivery_id" in m["data"])
            return {"total": self.accepted, "by_delivery_id": dict(by_delivery),
                    "by_token": dict(Counter(m["token"] for m in self.received)),
                    "attempts": sum(self.attempts.values()),
                    "first_at": self.first_at, "last_at": self.last_at}

    # --- protocol -------------------------------------------------------------------------
    def issue_token(self, form: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            self.token_requests += 1
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form.get("assertion", ""), self._key.public_key(),
                                algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        if claims.get("iss") != self.client_email:
            return 400, {"error": "invalid_grant", "error_description": "Invalid issuer."}
        token = f"ya29.fake-{secrets.token_urlsafe(16)}"
        with self._lock:
            self._access_tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def delay_for(self, body: dict) -> float:
        """How long the server waits before answering this send (latency, "slow-" tokens)."""
        message = body.get("message") if isinstance(body, dict) else None
        token = message.get("token") if isinstance(message, dict) else None
        slow = isinstance(token, str) and token.startswith("slow-")
        return self.latency + (SLOW_SECONDS if slow else 0.0)

    def send(self, project: str, authorization: str, body: dict) -> tuple[int, dict, dict]:
        bearer = authorization.removeprefix("Bearer ")
        if self.auth_failing or bearer not in self._access_tokens:
            return _error(*UNAUTHENTICATED)
        if project != self.project_id:
            return _error(404, "NOT_FOUND", None, "Requested entity was not found.", [])
        message = body.get("message") if isinstance(body, dict) else None
        problem = _invalid_message(message)
        if problem:
            return _error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", problem, [])
        token = message["token"]
        with self._lock:
            if self.keep_messages:
                self.attempts[token] += 1
            else:
                self.attempts["*"] += 1
        down = self._outage_prefix()
        for prefix, answer in ANSWERS.items():
            if token.startswith(prefix) or prefix == down:
                status, payload, headers = _error(*answer)
                if prefix in RETRY_AFTER:
                    headers["Retry-After"] = RETRY_AFTER[prefix]
                return status, payload, headers
        with self._lock:
            self.accepted += 1
            self.last_at = time.monotonic()
            self.first_at = self.first_at or self.last_at
            if self.keep_messages:
                self.received.append({"token": token, "data": message.get("data", {}),
                                      "message": message, "at": self.last_at})
            name = f"projects/{project}/messages/0:{next(self._ids)}%fake"
        return 200, {"name": name}, {}


def _invalid_message(message) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("token"), str):
        return "Recipient of the message is not set."
    data = message.get("data", {})
    if not all(isinstance(value, str) for value in data.values()):
        return "Invalid value at 'message.data': values must be strings."
    return ""


def _error(status: int, code: str, fcm_code: str | None, message: str,
           details: list) -> tuple[int, dict, dict]:
    all_details = [{"@type": FCM_ERROR, "errorCode": fcm_code}] if fcm_code else []
    error = {"code": status, "message": message, "status": code,
             "details": all_details + details}
    return status, {"error": error}, {}


SEND_PATH = re.compile(r"^/v1/projects/([^/]+)/messages:send$")


class _HttpConnection(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, as Google's front ends, parsed straight from the socket's
    bytes: the fake answers both sides of the send benchmark on the same two cores, so what it
    spends per request is taken from the senders it measures."""

    def __init__(self, fake: "FakeFcm"):
        self.fake = fake
        self.buffer = bytearray()
        self.waiting = False  # a delayed answer is pending: later requests wait their turn
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.fake._connections.add(self)

    def connection_lost(self, exc) -> None:
        self.fake._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self._answer_complete_requests()
        except (ValueError, UnicodeDecodeError):
            self.transport.abort()

    def _answer_complete_requests(self) -> None:
        while not self.waiting and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            size = end + 4 + int(headers.get("content-length") or 0)
            if len(self.buffer) < size:
                return
            body = bytes(self.buffer[end + 4:size])
            del self.buffer[:size]
            delay, answer = _route(self.fake, method, path, headers, body)
            close = headers.get("connection", "").lower() == "close"
            if delay:
                self.waiting = True
                asyncio.get_running_loop().call_later(delay, self._answer_late, answer, close)
                return
            self._reply(answer(), close)

    def _answer_late(self, answer, close: bool) -> None:
        self.waiting = False
        result = answer()  # delivered even if the sender gave up waiting, as FCM would
        if not self.transport.is_closing():
            self._reply(result, close)
            self._answer_complete_requests()

    def _reply(self, result: tuple[int, dict, dict], close: bool) -> None:
        self.transport.write(_response(*result))
        if close:
            self.transport.close()


def _route(fake: "FakeFcm", method: str, path: str, headers: dict, raw: bytes):
    """(seconds to wait, a function computing the answer when they are over)."""
    if method == "GET":
        return 0, lambda: (200, fake.summary(), {}) if path == "/_received" else (404, {}, {})
    if path == "/token":
        form = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
        return 0, lambda: (*fake.issue_token(form), {})
    if path == "/_reset":
        return 0, lambda: (fake.reset(), (200, {}, {}))[1]
    match = SEND_PATH.match(path)
    if not match:
        return 0, lambda: (404, {"error": {"code": 404, "status": "NOT_FOUND",
                                           "message": "Not found"}}, {})
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return 0, lambda: _error(400, "INVALID_ARGUMENT", None, "Invalid JSON.", [])
    return fake.delay_for(body), lambda: fake.send(match[1], headers.get("authorization", ""),
                                                   body)


def _response(status: int, payload: dict, headers: dict) -> bytes:
    data = json.dumps(payload).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
             "Content-Type: application/json; charset=UTF-8", f"Content-Length: {len(data)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="journeyhub-test")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each send")
    parser.add_argument("--credentials", help="write a service account JSON for this server here")
    parser.add_argument("--count-only", action="store_true",
                        help="count accepted messages instead of keeping them (benchmarks)")
    args = parser.parse_args()
    fake = FakeFcm(port=args.port, project_id=args.project, latency=args.latency,
                   keep_messages=not args.count_only)
    if args.credentials:
        fake.write_service_account(args.credentials)
    # Leave serve_forever through an exception: shutdown() from its own thread would deadlock.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(fake.port, flush=True)
    try:
        fake.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.close()


if __name__ == "__main__":
    main()
