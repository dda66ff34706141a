"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291) via pywebpush.

The service worker receives the JSON {"title", "body", "image", "url", "tag", "data"} (with the
template's buttons and badge when it has them; {"kind": "silent", "tag", "data"} for a silent
push) and shows it with that tag (static/notifications/service-worker.js), so a second copy
replaces the first."""

import base64
import ipaddress
import json
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid, VapidException
from pywebpush import WebPusher, WebPushException

from .base import Outcome, ProviderAuthError, ProviderConfigError, PushMessage, PushResult
from .common import retry_after_seconds, web_push_topic

# Pushes in flight per batch, each a thread blocked on one push service round trip; also the
# pooled connections kept per push service host.
WEBPUSH_CONCURRENCY = 32
# (connect, read) per push; a stalled push service holds a batch about this long.
WEBPUSH_TIMEOUT_SECONDS = (5, 10)
# Wait after 429/5xx when the push service names no Retry-After.
WEBPUSH_RETRY_AFTER_SECONDS = 30
# VAPID tokens may live up to 24 h; one signature per push service origin for half a day.
VAPID_TOKEN_SECONDS = 12 * 3600
VAPID_RESIGN_MARGIN_SECONDS = 3600

SENT_STATUSES = {200, 201, 202}
DEAD_STATUSES = {404, 410}
AUTH_STATUSES = {401, 403}
BAD_URL_ERRORS = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                  requests.exceptions.InvalidSchema)


class WebPushProvider:
    def __init__(self, application_id: str, config: dict):
        self._vapid = _vapid(application_id, config)
        self._subject = config["vapid_subject"]
        self._tokens: dict[str, tuple[float, dict]] = {}  # origin -> (expires_at, headers)
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=WEBPUSH_CONCURRENCY, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        answered = [pair for part in self._send_indexed(messages) for pair in part]
        return [result for _, result in sorted(answered, key=lambda pair: pair[0])]

    def send_stream(self, messages: list[PushMessage]) -> Iterator[list[PushResult]]:
        for part in self._send_indexed(messages):
            yield [result for _, result in part]

    def _send_indexed(self, messages: list[PushMessage]) -> Iterator[list[tuple[int, PushResult]]]:
        authorizations = {origin: self._authorization(origin)
                          for origin in {_origin(m.token) for m in messages}}
        with ThreadPoolExecutor(WEBPUSH_CONCURRENCY, thread_name_prefix="webpush") as pool:
            pending = {pool.submit(self._send_one, m, authorizations[_origin(m.token)]): index
                       for index, m in enumerate(messages)}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    part = [(pending.pop(future), future.result()) for future in done]
                    refused = [r for _, r in part if isinstance(r, ProviderAuthError)]
                    if refused:
                        raise refused[0]
                    yield part
            finally:
                for future in pending:  # stopped early: what has not started never will
                    future.cancel()

    def _authorization(self, origin: str) -> dict:
        """The VAPID Authorization header for one push service, re-signed before it expires."""
        expires_at, headers = self._tokens.get(origin, (0.0, {}))
        if expires_at - VAPID_RESIGN_MARGIN_SECONDS < time.time():
            expires_at = int(time.time()) + VAPID_TOKEN_SECONDS
            headers = self._vapid.sign({"sub": self._subject, "aud": origin, "exp": expires_at})
            self._tokens[origin] = (expires_at, headers)
        return headers

    def _send_one(self, message: PushMessage,
                  authorization: dict) -> PushResult | ProviderAuthError:
        if not _endpoint_allowed(message.token):
            return PushResult(message.delivery_id, Outcome.FAILED, error_code="endpoint",
                              error="Web Push endpoints must be https (http only on loopback).")
        subscription = {"endpoint": message.token,
                        "keys": {"p256dh": message.p256dh, "auth": message.auth}}
        try:
            pusher = WebPusher(subscription, requests_session=self._session)
            response = pusher.send(
                payload(message), headers={**authorization, **_headers(message)},
                ttl=message.ttl_seconds, content_encoding="aes128gcm",
                timeout=WEBPUSH_TIMEOUT_SECONDS,
            )
        except BAD_URL_ERRORS as error:
            return PushResult(message.delivery_id, Outcome.DEAD_TOKEN, error_code="endpoint",
                              error=str(error))
        except requests.RequestException as error:  # timeouts, refused or reset connections
            return PushResult(message.delivery_id, Outcome.RETRY, error_code=type(error).__name__,
                              error=str(error), retry_after=WEBPUSH_RETRY_AFTER_SECONDS)
        except (WebPushException, ValueError, TypeError) as error:
            # The subscription's keys are malformed: no push to it can ever be encrypted.
            return PushResult(message.delivery_id, Outcome.DEAD_TOKEN, error_code="keys",
                              error=str(error))
        return _result(message, response)


def payload(message: PushMessage) -> bytes:
    """What the service worker's push event reads with ``event.data.json()``."""
    look = message.presentation
    if look.silent:
        shown = {"kind": "silent", "tag": message.collapse_key, "data": message.data}
    else:
        shown = {"title": message.title, "body": message.body, "image": message.image_url,
                 "url": message.url, "tag": message.collapse_key, "data": message.data,
                 **look.webpush_extras}
    return json.dumps(shown, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(message: PushMessage) -> dict:
    headers = {"Urgency": "high" if message.priority == "high" else "normal"}
    if message.collapse_key:
        headers["Topic"] = web_push_topic(message.collapse_key)
    return headers


def _result(message: PushMessage, response: requests.Response) -> PushResult | ProviderAuthError:
    status = response.status_code
    failure = {"error_code": str(status), "error": f"{status} {response.text[:200]}".strip()}
    if status in SENT_STATUSES:
        return PushResult(message.delivery_id, Outcome.SENT,
                          provider_message_id=response.headers.get("Location", ""))
    if status in DEAD_STATUSES:
        return PushResult(message.delivery_id, Outcome.DEAD_TOKEN, **failure)
    if status in AUTH_STATUSES:
        return ProviderAuthError(f"The push service refused our VAPID key: {failure['error']}")
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"),
                                          WEBPUSH_RETRY_AFTER_SECONDS)
        return PushResult(message.delivery_id, Outcome.RETRY, retry_after=retry_after, **failure)
    return PushResult(message.delivery_id, Outcome.FAILED, **failure)  # 400, 413 and the rest


def _vapid(application_id: str, config: dict) -> Vapid:
    where = f"webpush application id {application_id!r}"
    private_key, subject = config.get("vapid_private_key"), config.get("vapid_subject", "")
    if not private_key:
        raise ProviderConfigError(f"{where} has no vapid_private_key.")
    if not subject.startswith(("mailto:", "https://")):
        raise ProviderConfigError(f"{where}: vapid_subject must be a mailto: or https:// URL.")
    try:
        if "-----BEGIN" in private_key:
            vapid = Vapid.from_pem(private_key.encode())
        else:
            vapid = Vapid.from_string(private_key)
    except (VapidException, ValueError, TypeError) as error:
        raise ProviderConfigError(f"{where}: unreadable vapid_private_key: {error}") from error
    public = config.get("vapid_public_key")
    if public and public.rstrip("=") != vapid_public_key(vapid):
        raise ProviderConfigError(f"{where}: vapid_public_key does not match the private key.")
    return vapid


def vapid_public_key(vapid: Vapid) -> str:
    """The application server key browsers subscribe with (base64url, uncompressed point)."""
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _origin(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def _endpoint_allowed(endpoint: str) -> bool:
    """https anywhere; plain http only to this machine (local tools and tests), so a forged
    subscription cannot make us POST in clear text across the network."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
