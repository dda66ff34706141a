"""A loopback push service: what Mozilla's autopush or FCM's Web Push endpoint does for us.

It checks the VAPID Authorization header (RFC 8292: an ES256 JWT for this origin, signed by the
key it carries, and that key must be the one the subscription was made with), decrypts the
aes128gcm body (RFC 8291) with the subscription's private key and auth secret, and records the
JSON the service worker would see. Each subscription path answers with a status of choice.

    with WebPushReceiver(vapid_public_key=key) as receiver:
        subscription = receiver.subscribe(status=410)   # {"endpoint", "p256dh", "auth"}
"""

import base64
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from notifications.webpush_crypto import webpush_decrypt, webpush_subscription_keys

MAX_BODY_BYTES = 4096  # RFC 8030 7.2: the least a service must accept; real ones refuse more
MAX_VAPID_LIFETIME_SECONDS = 24 * 3600  # RFC 8292 section 2


class WebPushReceiver:
    def __init__(self, vapid_public_key: str, port: int = 0):
        self.vapid_public_key = vapid_public_key.rstrip("=")
        self._lock = threading.Lock()
        self._names = itertools.count(1)
        self._subscriptions: dict[str, dict] = {}  # path -> keys and scripted answer
        # {"path", "payload", "body_bytes", "headers"} per accepted push
        self.received: list[dict] = []
        self.attempts: list[str] = []  # every path pushed to, accepted or not
        self._server = _Server(("127.0.0.1", port), _handler(self))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "WebPushReceiver":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def subscribe(self, status: int = 201, retry_after: str | None = None) -> dict:
        """A real browser-style subscription on this service that answers ``status``."""
        private_key, p256dh, auth = webpush_subscription_keys()
        path = f"/push/{next(self._names)}"
        with self._lock:
            self._subscriptions[path] = {"private_key": private_key, "auth": auth,
                                         "status": status, "retry_after": retry_after}
        return {"endpoint": self.url + path, "p256dh": p256dh, "auth": auth}

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.attempts.clear()

    # --- protocol -------------------------------------------------------------------------
    def push(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        with self._lock:
            self.attempts.append(path)
            subscription = self._subscriptions.get(path)
        if subscription is None:
            return 404, {}
        refusal = self._check_vapid(headers.get("Authorization", ""))
        if refusal:
            return refusal, {}
        if headers.get("Content-Encoding") != "aes128gcm" or headers.get("TTL") is None:
            return 400, {}
        if len(body) > MAX_BODY_BYTES:
            return 413, {}
        if subscription["status"] >= 300:
            retry_after = subscription["retry_after"]
            return subscription["status"], {"Retry-After": retry_after} if retry_after else {}
        plain = webpush_decrypt(body, subscription["private_key"], subscription["auth"])
        with self._lock:
            self.received.append({"path": path, "payload": json.loads(plain),
                                  "body_bytes": len(body),
                                  "headers": {name: headers.get(name)
                                              for name in ("TTL", "Urgency", "Topic")}})
            number = len(self.received)
        return subscription["status"], {"Location": f"{self.url}/message/{number}"}

    def _check_vapid(self, authorization: str) -> int:
        """0 when the VAPID header is sound, else the status a push service answers."""
        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
            return 401
        if fields["k"].rstrip("=") != self.vapid_public_key:
            return 403  # the subscription was made with another application server key
        raw = base64.urlsafe_b64decode(fields["k"] + "=" * (-len(fields["k"]) % 4))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        try:
            claims = jwt.decode(fields["t"], key, algorithms=["ES256"], audience=self.url)
        except jwt.PyJWTError:
            return 403
        if claims.get("exp", 0) > time.time() + MAX_VAPID_LIFETIME_SECONDS:
            return 403
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            return 403
        return 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a batch opens up to 100 connections at once; the default is 5


def _handler(receiver: WebPushReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers = receiver.push(self.path, self.headers, body)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler
