"""APNs at the aioapns client boundary: its HTTP/2 gateway cannot be redirected to loopback,
so a fake client answers with real aioapns NotificationResult objects."""

import asyncio
import json

import pytest
from aioapns import NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.exceptions import MaxAttemptsExceeded

from notifications.providers import (
    Outcome,
    ProviderAuthError,
    ProviderConfigError,
    PushMessage,
    get_backend,
)
from notifications.providers import apns as apns_provider
from notifications.providers.apns import ApnsProvider

CONFIG = {"key_file": "/keys/AuthKey_ABC123.p8", "key_id": "ABC123", "team_id": "TEAM42",
          "topic": "com.example.shop", "use_sandbox": False}

APNS_MAX_BYTES = 4096  # the body as aioapns serialises it; APNs answers 413 over it
# token prefix -> (status, reason) the gateway answers
ANSWERS = {
    "gone": ("410", "Unregistered"),
    "baddevice": ("400", "BadDeviceToken"),
    "wrongtopic": ("400", "DeviceTokenNotForTopic"),
    "busy": ("429", "TooManyRequests"),
    "down": ("503", "ServiceUnavailable"),
    "oops": ("500", "InternalServerError"),
    "badjwt": ("403", "InvalidProviderToken"),
    "oldjwt": ("403", "ExpiredProviderToken"),
    "huge": ("413", "PayloadTooLarge"),
    "badcollapse": ("400", "BadCollapseId"),
}


class FakeApnsClient:
    """Stands where aioapns.APNs stands: answers per device token prefix."""

    def __init__(self, **options):
        self.options = options
        self.requests: list[NotificationRequest] = []
        self.in_flight = self.max_in_flight = 0

    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: NotificationRequest) -> NotificationResult:
        token = request.device_token
        if len(json.dumps(request.message, ensure_ascii=False).encode()) > APNS_MAX_BYTES:
            return NotificationResult(request.notification_id, "413",
                                      description="PayloadTooLarge")
        if token.startswith("stall"):
            await asyncio.sleep(60)
        if token.startswith("lost"):
            raise MaxAttemptsExceeded
        await asyncio.sleep(0.001)  # a round trip, so concurrent sends overlap
        for prefix, (status, reason) in ANSWERS.items():
            if token.startswith(prefix):
                return NotificationResult(request.notification_id, status, description=reason,
                                          timestamp=1700000000000 if status == "410" else None)
        return NotificationResult(request.notification_id, "200")


@pytest.fixture
def clients():
    return []


@pytest.fixture
def provider(clients):
    def factory(**options):
        clients.append(FakeApnsClient(**options))
        return clients[-1]

    return ApnsProvider("default", CONFIG, client_factory=factory)


def push(token: str, delivery_id: int = 1, **fields) -> PushMessage:
    return PushMessage(delivery_id=delivery_id, kind="apns", token=token, title="Hello",
                       body="Your cart misses you", **fields)


def test_a_notification_request_carries_what_apns_needs(provider, clients):
    message = push("a1b2", delivery_id=9, priority="high", ttl_seconds=3600, collapse_key="cart",
                   image_url="https://cdn.example.test/cart.png",
                   url="shop://cart", data={"delivery_id": "9", "t": "sig"})

    [result] = provider.send_batch([message])

    [request] = clients[0].requests
    assert (request.device_token, request.priority, request.time_to_live) == ("a1b2", 10, 3600)
    assert (request.collapse_key, request.push_type) == ("cart", PushType.ALERT)
    assert request.message == {
        "aps": {"alert": {"title": "Hello", "body": "Your cart misses you"},
                "mutable-content": 1},
        "delivery_id": "9", "t": "sig", "url": "shop://cart",
        "image_url": "https://cdn.example.test/cart.png",
    }
    assert result.outcome == Outcome.SENT
    assert result.provider_message_id == request.notification_id


def test_a_normal_message_asks_for_normal_priority_and_no_collapse(provider, clients):
    provider.send_batch([push("a1b2")])

    [request] = clients[0].requests
    assert (request.priority, request.collapse_key) == (5, None)
    assert request.message == {"aps": {"alert": {"title": "Hello",
                                                 "body": "Your cart misses you"}}}


@pytest.mark.parametrize(("token", "outcome", "error_code"), [
    ("gone-1", Outcome.DEAD_TOKEN, "Unregistered"),
    ("baddevice-1", Outcome.DEAD_TOKEN, "BadDeviceToken"),
    ("wrongtopic-1", Outcome.DEAD_TOKEN, "DeviceTokenNotForTopic"),
    ("busy-1", Outcome.RETRY, "TooManyRequests"),
    ("down-1", Outcome.RETRY, "ServiceUnavailable"),
    ("oops-1", Outcome.RETRY, "InternalServerError"),
    ("huge-1", Outcome.FAILED, "PayloadTooLarge"),
    ("badcollapse-1", Outcome.FAILED, "BadCollapseId"),
])
def test_gateway_answers_map_to_outcomes(provider, token, outcome, error_code):
    [result] = provider.send_batch([push(token)])

    assert (result.outcome, result.error_code) == (outcome, error_code)
    if outcome == Outcome.RETRY:
        assert result.retry_after == apns_provider.APNS_RETRY_AFTER_SECONDS


@pytest.mark.parametrize("token", ["badjwt-1", "oldjwt-1"])
def test_a_refused_provider_token_raises_provider_auth_error(provider, token):
    with pytest.raises(ProviderAuthError, match="ProviderToken"):
        provider.send_batch([push("ok-1"), push(token, delivery_id=2)])


def test_results_come_back_per_token_in_order(provider):
    tokens = ["ok-0", "gone-1", "busy-2", "ok-3", "huge-4"] * 40

    results = provider.send_batch([push(t, delivery_id=i) for i, t in enumerate(tokens)])

    assert [r.delivery_id for r in results] == list(range(200))
    assert [r.outcome for r in results][:5] == [
        Outcome.SENT, Outcome.DEAD_TOKEN, Outcome.RETRY, Outcome.SENT, Outcome.FAILED]


def test_concurrency_is_bounded(provider, clients, monkeypatch):
    monkeypatch.setattr(apns_provider, "APNS_CONCURRENCY", 5)

    provider.send_batch([push(f"ok-{i}", delivery_id=i) for i in range(50)])

    assert clients[0].max_in_flight == 5


def test_one_client_per_environment_lives_across_batches(provider, clients):
    for _ in range(2):
        provider.send_batch([push("ok-1", environment="sandbox"), push("ok-2")])

    assert sorted(client.options["use_sandbox"] for client in clients) == [False, True]
    assert {client.options["topic"] for client in clients} == {"com.example.shop"}
    assert [len(client.requests) for client in clients] == [2, 2]


def test_a_stalled_gateway_times_out_into_a_retry(provider, monkeypatch):
    monkeypatch.setattr(apns_provider, "APNS_TIMEOUT_SECONDS", 0.1)

    [stalled, fine] = provider.send_batch([push("stall-1"), push("ok-2", delivery_id=2)])

    assert (stalled.outcome, stalled.error_code) == (Outcome.RETRY, "TimeoutError")
    assert fine.outcome == Outcome.SENT


def test_a_lost_connection_is_retried(provider):
    [result] = provider.send_batch([push("lost-1")])

    assert (result.outcome, result.error_code) == (Outcome.RETRY, "MaxAttemptsExceeded")


def test_missing_credentials_name_the_application_id():
    with pytest.raises(ProviderConfigError, match="'brand_b' lacks key_id, team_id"):
        ApnsProvider("brand_b", {"key_file": "/k.p8", "topic": "com.example"})


def test_an_unreadable_key_file_is_a_configuration_error(settings, tmp_path):
    settings.PUSH_APPS = {"apns": {"default": {**CONFIG, "key_file": str(tmp_path / "no.p8")}}}

    with pytest.raises(ProviderConfigError, match="apns application id 'default'"):
        get_backend().send_batch([push("ok-1")])
