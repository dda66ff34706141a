"""Firebase Cloud Messaging (HTTP v1) through firebase-admin's messaging service: its request
and its mapping of errors, one message a request (what ``send_each_async`` does for each
message, without the task and BatchResponse it wraps around each), with the message JSON built
by fcm_json.

One firebase_admin App per application id and configuration, created once per process. Two
things are adjusted on its messaging service, because firebase-admin offers no option for them:
the FCM URL (``endpoint`` in PUSH_APPS, for emulators and the loopback fake) and its async HTTP
client, replaced by ``fcm_transport.FcmHttpClient``: a quarter of the CPU per request, and none
of the built-in retries of 500/503 that would hide temporary errors from our own retry policy.
firebase-admin still reads every answer and error."""

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Iterator

import firebase_admin
import httpx
import requests
from firebase_admin import _http_client, credentials, exceptions, messaging
from google.auth import exceptions as auth_exceptions
from google.auth.transport import requests as google_auth_requests

from . import aioloop
from .base import Outcome, ProviderAuthError, ProviderConfigError, PushMessage, PushResult
from .common import retry_after_seconds
from .fcm_json import fcm_v1_message
from .fcm_transport import FcmHttpClient

FCM_ENDPOINT = "https://fcm.googleapis.com"
# Requests in flight per batch, and keep-alive connections per worker process (HTTP/1.1: one
# request per connection at a time). At FCM's ~50 ms round trip that is ~2,000 messages/s.
FCM_CONCURRENCY = 100
# Per request (connect, read, wait for a pooled connection): a stalled FCM holds a batch this long.
FCM_TIMEOUT_SECONDS = 10
# FCM asks senders to wait at least a minute after QUOTA_EXCEEDED when it names no Retry-After.
FCM_QUOTA_RETRY_AFTER_SECONDS = 60
# 5xx and timeouts are usually brief; the delivery pipeline backs off further on repeats.
FCM_UNAVAILABLE_RETRY_AFTER_SECONDS = 10

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
DEAD_TOKEN_CODES = {"UNREGISTERED", "SENDER_ID_MISMATCH"}
AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED", "THIRD_PARTY_AUTH_ERROR"}
QUOTA_CODES = {"QUOTA_EXCEEDED", "RESOURCE_EXHAUSTED"}
TEMPORARY_CODES = {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "UNKNOWN"}

_apps_lock = threading.Lock()


class FcmProvider:
    def __init__(self, application_id: str, config: dict):
        self._app = _firebase_app(application_id, config)
        self._credential = self._app.credential.get_credential()
        self._service = _point_messaging_at(self._app, config.get("endpoint") or FCM_ENDPOINT,
                                            self._credential)

    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        answered = [pair for part in self._send_indexed(messages) for pair in part]
        return [result for _, result in sorted(answered, key=lambda pair: pair[0])]

    def send_stream(self, messages: list[PushMessage]) -> Iterator[list[PushResult]]:
        for part in self._send_indexed(messages):
            yield [result for _, result in part]

    def _send_indexed(self, messages: list[PushMessage]) -> Iterator[list[tuple[int, PushResult]]]:
        try:
            self._refresh_access_token()
        except auth_exceptions.GoogleAuthError as error:
            yield [(i, _unsent(m, error)) for i, m in enumerate(messages)]
            return
        for part in aioloop.stream(lambda put: self._send_all(messages, put), len(messages)):
            # Read here, not on the loop: a refused credential raises in the caller's thread.
            yield [(index, _result(messages[index], answer)) for index, answer in part]

    async def _send_all(self, messages: list[PushMessage], put) -> None:
        """Each answer handed to ``put`` as it comes, from FCM_CONCURRENCY senders that take
        the next message as they finish one (a task per message cost more to schedule than
        its request): a single call of 500 would queue them all in the HTTP pool at once, and
        a message firebase-admin refuses to encode would fail the whole call."""
        waiting = iter(enumerate(messages))

        async def sender() -> None:
            for index, message in waiting:
                put((index, await self._send_one(message)))

        await asyncio.gather(*(sender() for _ in range(min(FCM_CONCURRENCY, len(messages)))))

    async def _send_one(self, message: PushMessage) -> messaging.SendResponse | Exception:
        """What ``messaging.send_each_async([message])`` answers, without the task and the
        BatchResponse it builds around each request: the same JSON (fcm_json), and
        firebase-admin's own request, mapping of errors, and UnknownError for anything else."""
        service = self._service
        try:
            data = {"message": fcm_v1_message(message, int(time.time()))}
        except ValueError as error:
            return error
        try:
            response = await service._async_client.request(
                "post", url=service._fcm_url, headers=service._fcm_headers, json=data)
        except httpx.HTTPError as error:
            return messaging.SendResponse(None, service._handle_fcm_httpx_error(error))
        except requests.exceptions.RequestException as error:
            return messaging.SendResponse(None, service._handle_fcm_error(error))
        except Exception as error:  # noqa: BLE001 - reported per message, as send_each_async does
            return exceptions.UnknownError(
                message=f"Unknown error while making remote service calls: {error}", cause=error)
        return messaging.SendResponse(response.json(), None)

    def _refresh_access_token(self) -> None:
        # Fetch the OAuth2 token here, once, where a refusal is one clear error, rather than in
        # the middle of 500 concurrent requests.
        if not self._credential.valid:
            self._credential.refresh(google_auth_requests.Request())


def _firebase_app(application_id: str, config: dict) -> firebase_admin.App:
    if not config.get("credentials_file"):
        raise ProviderConfigError(f"fcm application id {application_id!r} has no credentials_file.")
    fingerprint = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    name = f"journeyhub-fcm-{application_id}-{fingerprint}"
    with _apps_lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            pass
        try:
            certificate = credentials.Certificate(config["credentials_file"])
        except (OSError, ValueError) as error:
            raise ProviderConfigError(
                f"fcm application id {application_id!r}: unusable credentials_file: {error}"
            ) from error
        options = {"projectId": config["project_id"]} if config.get("project_id") else {}
        return firebase_admin.initialize_app(certificate, options=options, name=name)


def _point_messaging_at(app: firebase_admin.App, endpoint: str, credential):
    """Send to ``endpoint`` with a fresh, non-retrying HTTP client (fresh also after a fork)."""
    try:
        service = messaging._get_messaging_service(app)
    except ValueError as error:  # no project id anywhere
        raise ProviderConfigError(f"fcm app {app.name!r}: {error}") from error
    needed = ("_async_client", "_fcm_headers", "_handle_fcm_httpx_error", "_handle_fcm_error")
    if not isinstance(getattr(service, "_fcm_url", None), str) or not all(
        hasattr(service, name) for name in needed
    ):
        raise ProviderConfigError(
            "firebase-admin's messaging internals changed; fcm.py is written for 7.7."
        )
    service._fcm_url = f"{endpoint.rstrip('/')}/v1/projects/{app.project_id}/messages:send"
    service._async_client = FcmHttpClient(credential=credential,
                                          headers=_http_client.METRICS_HEADERS,
                                          timeout=FCM_TIMEOUT_SECONDS, limit=FCM_CONCURRENCY)
    return service


def fcm_payload_bytes(message: PushMessage) -> int:
    """The size of what FCM delivers to an Android app: the v1 message as we send it, in
    UTF-8 JSON, without the device token and without the apns and webpush blocks (headers for
    the other platforms, which we reach directly)."""
    encoded = fcm_v1_message(message, int(time.time()))
    delivered = {key: value for key, value in encoded.items()
                 if key not in ("token", "apns", "webpush")}
    return len(json.dumps(delivered, separators=(",", ":"), ensure_ascii=False).encode())


def _result(message: PushMessage, answer: messaging.SendResponse | Exception) -> PushResult:
    if isinstance(answer, Exception):
        return _unsent(message, getattr(answer, "cause", None) or answer)
    if answer.success:
        return PushResult(message.delivery_id, Outcome.SENT, provider_message_id=answer.message_id)
    error = answer.exception
    body = _error_body(error)
    code = _fcm_error_code(body) or error.code
    failure = {"error_code": code, "error": str(error)}
    if code in DEAD_TOKEN_CODES or (code == "INVALID_ARGUMENT" and _names_the_token(body)):
        return PushResult(message.delivery_id, Outcome.DEAD_TOKEN, **failure)
    if code in AUTH_CODES:
        raise ProviderAuthError(f"FCM refused our credentials ({code}): {error}")
    if code in QUOTA_CODES or code in TEMPORARY_CODES:
        default = (FCM_QUOTA_RETRY_AFTER_SECONDS if code in QUOTA_CODES
                   else FCM_UNAVAILABLE_RETRY_AFTER_SECONDS)
        header = error.http_response.headers.get("Retry-After") if error.http_response else None
        return PushResult(message.delivery_id, Outcome.RETRY,
                          retry_after=retry_after_seconds(header, default), **failure)
    return PushResult(message.delivery_id, Outcome.FAILED, **failure)


def _unsent(message: PushMessage, error: Exception) -> PushResult:
    """The result when a message never reached FCM: refused credentials raise, a message
    firebase-admin will not encode fails, anything else (token endpoint down) is retried."""
    if isinstance(error, auth_exceptions.RefreshError) and not getattr(error, "retryable", False):
        raise ProviderAuthError(f"Google refused the FCM service account: {error}") from error
    if isinstance(error, ValueError) and not isinstance(error, auth_exceptions.GoogleAuthError):
        return PushResult(message.delivery_id, Outcome.FAILED, error_code="ENCODING",
                          error=str(error))
    return PushResult(message.delivery_id, Outcome.RETRY, error_code="UNAVAILABLE",
                      error=str(error), retry_after=FCM_UNAVAILABLE_RETRY_AFTER_SECONDS)


def _error_body(error: exceptions.FirebaseError) -> dict:
    """The ``error`` object of FCM's JSON answer, or {} when there was no answer."""
    if error.http_response is None:
        return {}
    try:
        body = error.http_response.json()
    except ValueError:
        return {}
    return body["error"] if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}


def _fcm_error_code(body: dict) -> str:
    for detail in body.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            return detail.get("errorCode", "")
    return ""


def _names_the_token(body: dict) -> bool:
    """Whether an INVALID_ARGUMENT blames the registration token rather than the payload."""
    for detail in body.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST_TYPE:
            fields = {violation.get("field") for violation in detail.get("fieldViolations", [])}
            if "message.token" in fields:
                return True
    return "not a valid fcm registration token" in str(body.get("message", "")).lower()
