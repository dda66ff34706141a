"""Apple Push Notification service through aioapns (token-based auth, HTTP/2).

One aioapns client per (application id, environment) per process, living on the process event
loop (see aioloop), so its HTTP/2 connections and signed JWT are reused across batches."""

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator

import aioapns
from aioapns.common import PRIORITY_HIGH, PRIORITY_NORMAL, NotificationResult, PushType
from aioapns.exceptions import ConnectionClosed, ConnectionError, MaxAttemptsExceeded

from . import aioloop
from .base import Outcome, ProviderAuthError, ProviderConfigError, PushMessage, PushResult

# Requests in flight per batch. aioapns multiplexes them over HTTP/2 streams on a few
# connections; more only queue inside aioapns while holding memory for their payloads.
APNS_CONCURRENCY = 100
# Per notification, including aioapns' own reconnect attempts; a stalled gateway holds a batch
# this long.
APNS_TIMEOUT_SECONDS = 10
# APNs sends no Retry-After; wait this long after 429/5xx or a lost connection.
APNS_RETRY_AFTER_SECONDS = 30

REQUIRED_KEYS = ("key_file", "key_id", "team_id", "topic")
DEAD_TOKEN_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic", "ExpiredToken"}
TEMPORARY_STATUSES = {"429", "500", "503"}
TEMPORARY_ERRORS = (TimeoutError, ConnectionError, ConnectionClosed, MaxAttemptsExceeded, OSError)

ClientFactory = Callable[..., aioapns.APNs]


class ApnsProvider:
    """``client_factory`` is called as aioapns.APNs is (key, key_id, team_id, topic,
    use_sandbox, err_func) and must return an object with ``async send_notification``."""

    def __init__(self, application_id: str, config: dict,
                 client_factory: ClientFactory | None = None):
        missing = [key for key in REQUIRED_KEYS if not config.get(key)]
        if missing:
            raise ProviderConfigError(
                f"apns application id {application_id!r} lacks {', '.join(missing)}."
            )
        self._application_id = application_id
        self._config = config
        self._client_factory = client_factory or aioapns.APNs  # looked up when built
        self._clients: dict[str, aioapns.APNs] = {}  # environment -> client, used on the loop

    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        answered = [pair for part in self._send_indexed(messages) for pair in part]
        return [result for _, result in sorted(answered, key=lambda pair: pair[0])]

    def send_stream(self, messages: list[PushMessage]) -> Iterator[list[PushResult]]:
        for part in self._send_indexed(messages):
            yield [result for _, result in part]

    def _send_indexed(self, messages: list[PushMessage]) -> Iterator[list[tuple[int, PushResult]]]:
        for part in aioloop.stream(lambda put: self._send_all(messages, put), len(messages)):
            refused = [result for _, result in part if isinstance(result, ProviderAuthError)]
            if refused:
                raise refused[0]
            yield part

    async def _send_all(self, messages: list[PushMessage], put) -> None:
        slots = asyncio.Semaphore(APNS_CONCURRENCY)

        async def send(index: int, message: PushMessage) -> None:
            async with slots:
                put((index, await self._send_one(self._client(message.environment), message)))

        await asyncio.gather(*(send(index, message) for index, message in enumerate(messages)))

    def _client(self, environment: str) -> aioapns.APNs:
        # Created on the loop thread: aioapns binds its connection pool to the running loop.
        sandbox = (environment or "") == "sandbox" or (
            not environment and bool(self._config.get("use_sandbox"))
        )
        key = "sandbox" if sandbox else "production"
        if key not in self._clients:
            try:
                self._clients[key] = self._client_factory(
                    key=self._config["key_file"], key_id=self._config["key_id"],
                    team_id=self._config["team_id"], topic=self._config["topic"],
                    use_sandbox=sandbox, err_func=_ignore_error,
                )
            except (OSError, ValueError) as error:
                raise ProviderConfigError(
                    f"apns application id {self._application_id!r}: {error}"
                ) from error
        return self._clients[key]

    async def _send_one(self, client, message: PushMessage) -> PushResult | ProviderAuthError:
        request = notification_request(message)
        try:
            answer = await asyncio.wait_for(client.send_notification(request),
                                            APNS_TIMEOUT_SECONDS)
        except TEMPORARY_ERRORS as error:
            return PushResult(message.delivery_id, Outcome.RETRY, error_code=type(error).__name__,
                              error=str(error), retry_after=APNS_RETRY_AFTER_SECONDS)
        return _result(message, answer)


def notification_request(message: PushMessage) -> aioapns.NotificationRequest:
    silent = message.presentation.silent
    # Apple asks background pushes to go at priority 5: at 10 they are refused or throttled.
    high = message.priority == "high" and not silent
    return aioapns.NotificationRequest(
        device_token=message.token,
        message=apns_payload(message),
        notification_id=str(uuid.uuid4()),
        time_to_live=message.ttl_seconds,
        priority=int(PRIORITY_HIGH if high else PRIORITY_NORMAL),
        collapse_key=message.collapse_key or None,
        push_type=PushType.BACKGROUND if silent else PushType.ALERT,
    )


def apns_payload(message: PushMessage) -> dict:
    """The JSON object APNs receives: the message's data, ``aps``, and our keys for the app."""
    look = message.presentation
    payload: dict = {**message.data}
    if look.silent:
        payload["aps"] = {"content-available": 1}
        return payload
    aps: dict = {"alert": {"title": message.title, "body": message.body}}
    if message.image_url or look.badge_increment:
        aps["mutable-content"] = 1  # the app's notification service extension does the rest
    if look.badge is not None and not look.badge_increment:
        aps["badge"] = look.badge
    aps.update(look.apns_aps)
    payload["aps"] = aps
    if message.url:
        payload["url"] = message.url
    if message.image_url:
        payload["image_url"] = message.image_url
    payload.update(look.apns_custom)
    return payload


def apns_body(payload: dict) -> bytes:
    """The bytes aioapns sends for ``payload`` (its own serialisation), which APNs measures."""
    return json.dumps(payload, ensure_ascii=False).encode()


def _result(message: PushMessage,
            answer: NotificationResult) -> PushResult | ProviderAuthError:
    status, reason = str(answer.status), answer.description or ""
    failure = {"error_code": reason or status, "error": f"APNs {status} {reason}".strip()}
    if answer.is_successful:
        return PushResult(message.delivery_id, Outcome.SENT,
                          provider_message_id=answer.notification_id)
    if status == "410" or reason in DEAD_TOKEN_REASONS:
        return PushResult(message.delivery_id, Outcome.DEAD_TOKEN, **failure)
    if status == "403":  # InvalidProviderToken, ExpiredProviderToken, BadCertificate...
        return ProviderAuthError(f"APNs refused our provider token: {reason or status}")
    if status in TEMPORARY_STATUSES:
        return PushResult(message.delivery_id, Outcome.RETRY,
                          retry_after=APNS_RETRY_AFTER_SECONDS, **failure)
    return PushResult(message.delivery_id, Outcome.FAILED, **failure)


async def _ignore_error(request, result) -> None:
    # aioapns logs every refusal at ERROR by default; each one is a result the pipeline records.
    return None
