"""Web Push through pywebpush to a loopback push service that checks VAPID and decrypts."""

import base64

import pytest
from py_vapid import Vapid

from notifications.providers import (
    Outcome,
    ProviderAuthError,
    ProviderConfigError,
    PushMessage,
    get_backend,
)
from notifications.providers import webpush as webpush_provider
from notifications.providers.webpush import vapid_public_key
from tests.fakes.webpush_receiver import WebPushReceiver


def new_vapid_keys() -> tuple[str, str]:
    """(private, public) as the settings hold them: raw base64url, what web-push tools print."""
    vapid = Vapid()
    vapid.generate_keys()
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(private).decode().rstrip("="), vapid_public_key(vapid)


VAPID_PRIVATE, VAPID_PUBLIC = new_vapid_keys()


@pytest.fixture(scope="module")
def receiver():
    with WebPushReceiver(vapid_public_key=VAPID_PUBLIC) as service:
        yield service


def webpush_apps(private: str = VAPID_PRIVATE, public: str = VAPID_PUBLIC) -> dict:
    return {"webpush": {"default": {"vapid_private_key": private, "vapid_public_key": public,
                                    "vapid_subject": "mailto:push@example.test"}}}


@pytest.fixture
def backend(receiver, settings):
    receiver.reset()
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = webpush_apps()
    return get_backend()


def push(subscription: dict, delivery_id: int = 1, **fields) -> PushMessage:
    fields = {"title": "Hello", "body": "Your cart misses you", **fields}
    return PushMessage(delivery_id=delivery_id, kind="webpush", token=subscription["endpoint"],
                       p256dh=subscription["p256dh"], auth=subscription["auth"], **fields)


def test_the_service_worker_receives_the_decrypted_notification(backend, receiver):
    subscription = receiver.subscribe()
    message = push(subscription, image_url="https://cdn.example.test/cart.png",
                   url="https://shop.example.test/cart", data={"delivery_id": "1", "t": "sig"},
                   priority="high", ttl_seconds=600, collapse_key="cart")

    [result] = backend.send_batch([message])

    assert result.outcome == Outcome.SENT
    [received] = receiver.received
    assert received["payload"] == {
        "title": "Hello", "body": "Your cart misses you",
        "image": "https://cdn.example.test/cart.png", "url": "https://shop.example.test/cart",
        "tag": "cart", "data": {"delivery_id": "1", "t": "sig"},
    }
    assert received["headers"] == {"TTL": "600", "Urgency": "high", "Topic": "cart"}
    assert result.provider_message_id.startswith(f"{receiver.url}/message/")


def test_a_collapse_key_outside_the_topic_alphabet_still_collapses(backend, receiver):
    subscription = receiver.subscribe()

    backend.send_batch([push(subscription, collapse_key="spring sale: 20% off!")])
    backend.send_batch([push(subscription, collapse_key="spring sale: 20% off!")])

    topics = [r["headers"]["Topic"] for r in receiver.received]
    assert topics[0] == topics[1] and len(topics[0]) == 32


@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_subscription_is_dead(backend, receiver, status):
    [result] = backend.send_batch([push(receiver.subscribe(status=status))])

    assert (result.outcome, result.error_code) == (Outcome.DEAD_TOKEN, str(status))


def test_too_many_requests_is_retried_after_the_services_retry_after(backend, receiver):
    [result] = backend.send_batch([push(receiver.subscribe(status=429, retry_after="7"))])

    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 7.0)


def test_a_server_error_is_retried_after_the_default_wait(backend, receiver):
    [result] = backend.send_batch([push(receiver.subscribe(status=500))])

    assert result.outcome == Outcome.RETRY
    assert result.retry_after == webpush_provider.WEBPUSH_RETRY_AFTER_SECONDS


def test_a_vapid_key_the_push_service_does_not_know_raises_provider_auth_error(receiver,
                                                                             settings):
    settings.PUSH_APPS = webpush_apps(*new_vapid_keys())

    with pytest.raises(ProviderAuthError, match="403"):
        get_backend().send_batch([push(receiver.subscribe())])


def test_an_oversized_payload_fails_without_killing_the_subscription(backend, receiver):
    [result] = backend.send_batch([push(receiver.subscribe(), body="x" * 5000)])

    assert (result.outcome, result.error_code) == (Outcome.FAILED, "413")


def test_malformed_subscription_keys_are_dead(backend, receiver):
    subscription = {**receiver.subscribe(), "p256dh": "not-a-key"}

    [result] = backend.send_batch([push(subscription)])

    assert (result.outcome, result.error_code) == (Outcome.DEAD_TOKEN, "keys")
    assert receiver.attempts == []


def test_plain_http_is_refused_beyond_this_machine(backend, receiver):
    subscription = {**receiver.subscribe(), "endpoint": "http://push.example.test/push/1"}

    [result] = backend.send_batch([push(subscription)])

    assert (result.outcome, result.error_code) == (Outcome.FAILED, "endpoint")


def test_an_unreachable_push_service_is_retried(backend, receiver):
    subscription = {**receiver.subscribe(), "endpoint": "http://127.0.0.1:9/push/1"}

    [result] = backend.send_batch([push(subscription)])

    assert (result.outcome, result.error_code) == (Outcome.RETRY, "ConnectionError")


def test_a_mixed_batch_answers_per_subscription_in_order(backend, receiver):
    statuses = [201, 410, 201, 429, 413, 202, 500, 404] * 25
    messages = [push(receiver.subscribe(status=status), delivery_id=i)
                for i, status in enumerate(statuses)]

    results = backend.send_batch(messages)

    expected = {201: Outcome.SENT, 202: Outcome.SENT, 410: Outcome.DEAD_TOKEN,
                404: Outcome.DEAD_TOKEN, 429: Outcome.RETRY, 500: Outcome.RETRY,
                413: Outcome.FAILED}
    assert [r.delivery_id for r in results] == list(range(len(statuses)))
    assert [r.outcome for r in results] == [expected[status] for status in statuses]
    assert len(receiver.received) == statuses.count(201) + statuses.count(202)


@pytest.mark.parametrize(("config", "problem"), [
    ({"vapid_subject": "mailto:a@example.test"}, "no vapid_private_key"),
    ({"vapid_private_key": VAPID_PRIVATE, "vapid_subject": "push@example.test"}, "mailto:"),
    ({"vapid_private_key": "bm90IGEga2V5", "vapid_subject": "mailto:a@example.test"},
     "unreadable"),
    ({"vapid_private_key": VAPID_PRIVATE, "vapid_public_key": new_vapid_keys()[1],
      "vapid_subject": "mailto:a@example.test"}, "does not match"),
])
def test_unusable_vapid_settings_are_configuration_errors(settings, receiver, config, problem):
    settings.PUSH_APPS = {"webpush": {"default": config}}

    with pytest.raises(ProviderConfigError, match=problem):
        get_backend().send_batch([push(receiver.subscribe())])
