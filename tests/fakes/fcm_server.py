"""A loopback FCM: Google's OAuth2 token endpoint and the FCM HTTP v1 send endpoint.

What each send returns is chosen by the registration token's prefix (see ANSWERS); any other
token is delivered. Accepted messages are recorded; ``GET /_received`` reports them as JSON so
a test in another process can count deliveries per ``data["delivery_id"]``.

In-process::

    with FakeFcm() as fcm:
        fcm.write_service_account(path)   # its token_uri points at this server
        ...

Standalone (prints the port on its first line)::

    python -m tests.fakes.fcm_server --port 0 --credentials /tmp/sa.json [--latency 0.05]
"""

import argparse
import itertools
import json
import re
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    def __init__(self, port: int = 0, project_id: str = "journeyhub-test", latency: float = 0.0):
        self.project_id = project_id
        self.latency = latency  # seconds added to every send
        self.auth_failing = False  # every send answers 401 UNAUTHENTICATED
        self.client_email = f"push-sender@{project_id}.iam.gserviceaccount.com"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._access_tokens: set[str] = set()
        self.reset()
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.received: list[dict] = []  # accepted messages: {"token", "data", "message"}
            self.attempts: Counter[str] = Counter()  # send requests per registration token
            self.token_requests = 0
        self.auth_failing = False

    def start(self) -> "FakeFcm":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self.close()

    def serve_forever(self) -> None:
        """Serve on the calling thread (the standalone process)."""
        self._server.serve_forever()

    def close(self) -> None:
        self._server.server_close()

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
            return {"total": len(self.received), "by_delivery_id": dict(by_delivery),
                    "by_token": dict(Counter(m["token"] for m in self.received)),
                    "attempts": sum(self.attempts.values())}

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

    def send(self, project: str, authorization: str, body: dict) -> tuple[int, dict, dict]:
        if self.latency:
            time.sleep(self.latency)
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
            self.attempts[token] += 1
        if token.startswith("slow-"):
            time.sleep(SLOW_SECONDS)
        for prefix, answer in ANSWERS.items():
            if token.startswith(prefix):
                status, payload, headers = _error(*answer)
                if prefix in RETRY_AFTER:
                    headers["Retry-After"] = RETRY_AFTER[prefix]
                return status, payload, headers
        with self._lock:
            self.received.append({"token": token, "data": message.get("data", {}),
                                  "message": message})
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a batch opens up to 100 connections at once; the default is 5


def _handler(fake: FakeFcm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/token":
                form = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
                status, payload = fake.issue_token(form)
                return self._reply(status, payload)
            if self.path == "/_reset":
                fake.reset()
                return self._reply(200, {})
            match = SEND_PATH.match(self.path)
            if not match:
                return self._reply(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                   "message": "Not found"}})
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._reply(*_error(400, "INVALID_ARGUMENT", None, "Invalid JSON.", []))
            self._reply(*fake.send(match[1], self.headers.get("Authorization", ""), body))

        def do_GET(self):
            if self.path == "/_received":
                return self._reply(200, fake.summary())
            self._reply(404, {})

        def _reply(self, status: int, payload: dict, headers: dict | None = None):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="journeyhub-test")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each send")
    parser.add_argument("--credentials", help="write a service account JSON for this server here")
    args = parser.parse_args()
    fake = FakeFcm(port=args.port, project_id=args.project, latency=args.latency)
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
