"""FCM through firebase-admin against a loopback FCM that speaks HTTP v1 and OAuth2."""

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.providers import (
    MAX_BATCH_SIZE,
    Outcome,
    ProviderAuthError,
    PushMessage,
    get_backend,
)
from notifications.providers import fcm as fcm_provider
from tests.fakes.fcm_server import FakeFcm


@pytest.fixture(scope="module")
def fcm(tmp_path_factory):
    with FakeFcm() as server:
        server.credentials_file = server.write_service_account(
            tmp_path_factory.mktemp("fcm") / "service-account.json"
        )
        yield server


def fcm_apps(fcm, **more_apps) -> dict:
    app = {"credentials_file": str(fcm.credentials_file), "project_id": fcm.project_id,
           "endpoint": fcm.url}
    return {"fcm": {"default": app, **more_apps}, "apns": {}, "webpush": {}}


@pytest.fixture
def backend(fcm, settings):
    fcm.reset()
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = fcm_apps(fcm)
    return get_backend()


def push(token: str, delivery_id: int = 1, **fields) -> PushMessage:
    return PushMessage(delivery_id=delivery_id, kind="fcm", token=token, title="Hello",
                       body="Your cart misses you", **fields)


def test_a_sent_message_carries_notification_data_and_platform_options(backend, fcm):
    message = push("ok-1", delivery_id=7, image_url="https://cdn.example.test/cart.png",
                   url="https://shop.example.test/cart", data={"delivery_id": "7", "t": "sig"},
                   priority="high", ttl_seconds=3600, collapse_key="cart")

    [result] = backend.send_batch([message])

    assert result.outcome == Outcome.SENT and result.delivery_id == 7
    [received] = fcm.received
    assert result.provider_message_id.startswith(f"projects/{fcm.project_id}/messages/")
    sent = received["message"]
    assert sent["notification"] == {"title": "Hello", "body": "Your cart misses you",
                                    "image": "https://cdn.example.test/cart.png"}
    assert sent["data"] == {"delivery_id": "7", "t": "sig"}
    assert sent["android"] == {"priority": "high", "ttl": "3600s", "collapse_key": "cart",
                               "notification": {"tag": "cart"}}
    assert sent["apns"]["headers"]["apns-priority"] == "10"
    assert sent["apns"]["headers"]["apns-collapse-id"] == "cart"
    assert sent["webpush"]["headers"]["Topic"] == "cart"
    assert sent["webpush"]["notification"] == {"tag": "cart"}
    assert int(sent["apns"]["headers"]["apns-expiration"]) > 0
    assert sent["webpush"]["fcm_options"] == {"link": "https://shop.example.test/cart"}


def test_results_stream_in_as_fcm_answers_them(backend, fcm):
    """A slow answer does not hold back the others: they come first, in their own slice."""
    messages = [push("slow-1", delivery_id=1), *(push(f"ok-{i}", delivery_id=i)
                                                  for i in range(2, 6))]

    slices = [[r.delivery_id for r in part] for part in backend.send_stream(messages)]

    assert slices[-1] == [1]
    assert sorted(i for part in slices[:-1] for i in part) == [2, 3, 4, 5]


def test_a_deep_link_is_not_sent_as_a_web_link(backend, fcm):
    [result] = backend.send_batch([push("ok-1", url="shop://cart")])

    assert result.outcome == Outcome.SENT
    assert "fcm_options" not in fcm.received[0]["message"]["webpush"]


@pytest.mark.parametrize(("token", "error_code"), [
    ("unregistered-1", "UNREGISTERED"),
    ("mismatch-1", "SENDER_ID_MISMATCH"),
    ("badtoken-1", "INVALID_ARGUMENT"),
])
def test_tokens_fcm_will_never_accept_are_dead(backend, token, error_code):
    [result] = backend.send_batch([push(token)])

    assert (result.outcome, result.error_code) == (Outcome.DEAD_TOKEN, error_code)


def test_an_invalid_payload_fails_without_killing_the_token(backend):
    [result] = backend.send_batch([push("invalid-1")])

    assert (result.outcome, result.error_code) == (Outcome.FAILED, "INVALID_ARGUMENT")


def test_quota_exceeded_is_retried_after_fcm_s_retry_after(backend, fcm):
    [result] = backend.send_batch([push("quota-1")])

    assert (result.outcome, result.error_code) == (Outcome.RETRY, "QUOTA_EXCEEDED")
    assert result.retry_after == 1.0
    assert fcm.attempts["quota-1"] == 1


@pytest.mark.parametrize("token", ["unavailable-1", "internal-1"])
def test_server_errors_come_back_as_retries_without_hidden_retries(backend, fcm, token):
    [result] = backend.send_batch([push(token)])

    assert result.outcome == Outcome.RETRY
    assert result.retry_after == fcm_provider.FCM_UNAVAILABLE_RETRY_AFTER_SECONDS
    assert fcm.attempts[token] == 1  # firebase-admin's own 500/503 retries are off


def test_a_stalled_fcm_times_out_into_a_retry(fcm, settings, monkeypatch):
    fcm.reset()
    monkeypatch.setattr(fcm_provider, "FCM_TIMEOUT_SECONDS", 0.3)
    settings.PUSH_APPS = fcm_apps(fcm)  # a fresh backend picks the timeout up

    [result] = get_backend().send_batch([push("slow-1")])

    assert (result.outcome, result.error_code) == (Outcome.RETRY, "DEADLINE_EXCEEDED")
    # FCM may still deliver what we gave up on: a retry after a timeout can duplicate.
    assert _eventually(lambda: [m["token"] for m in fcm.received] == ["slow-1"])


def test_refused_access_tokens_raise_provider_auth_error(backend, fcm):
    fcm.auth_failing = True

    with pytest.raises(ProviderAuthError):
        backend.send_batch([push("ok-1")])
    assert fcm.received == []


def test_a_service_account_google_does_not_know_raises_provider_auth_error(fcm, settings,
                                                                           tmp_path):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    apps = fcm_apps(fcm)
    apps["fcm"]["default"]["credentials_file"] = str(
        fcm.write_service_account(tmp_path / "stranger.json", private_key=stranger)
    )
    settings.PUSH_APPS = apps

    with pytest.raises(ProviderAuthError):
        get_backend().send_batch([push("ok-1")])


def test_a_batch_of_500_mixed_answers_keeps_its_order(backend, fcm):
    prefixes = ["ok-", "unregistered-", "ok-", "quota-", "invalid-", "unavailable-", "badtoken-"]
    expected = {"ok-": Outcome.SENT, "unregistered-": Outcome.DEAD_TOKEN,
                "quota-": Outcome.RETRY, "invalid-": Outcome.FAILED,
                "unavailable-": Outcome.RETRY, "badtoken-": Outcome.DEAD_TOKEN}
    messages = [push(f"{prefixes[i % len(prefixes)]}{i}", delivery_id=i,
                     data={"delivery_id": str(i)}) for i in range(MAX_BATCH_SIZE)]

    results = backend.send_batch(messages)

    assert [r.delivery_id for r in results] == list(range(MAX_BATCH_SIZE))
    assert [r.outcome for r in results] == [expected[prefixes[i % len(prefixes)]]
                                            for i in range(MAX_BATCH_SIZE)]
    sent = {r.delivery_id for r in results if r.outcome == Outcome.SENT}
    assert {int(m["data"]["delivery_id"]) for m in fcm.received} == sent


def test_more_than_500_messages_are_refused_before_sending(backend, fcm):
    messages = [push(f"ok-{i}", delivery_id=i) for i in range(MAX_BATCH_SIZE + 1)]

    with pytest.raises(ValueError, match="at most 500"):
        backend.send_batch(messages)
    assert fcm.attempts == {}


def test_each_application_id_has_its_own_app_and_token_reused_across_batches(fcm, settings):
    settings.PUSH_APPS = fcm_apps(fcm, brand_b={
        "credentials_file": str(fcm.credentials_file), "project_id": fcm.project_id,
        "endpoint": fcm.url})
    fcm.reset()
    backend = get_backend()

    for _ in range(2):
        [result] = backend.send_batch([push("ok-b", application_id="brand_b")])
        assert result.outcome == Outcome.SENT
    apps = {name for name in _firebase_app_names() if name.startswith("journeyhub-fcm-brand_b-")}

    assert len(apps) == 1
    assert fcm.token_requests == 1


def test_the_standalone_fake_serves_a_worker_in_another_process(settings, tmp_path):
    credentials = tmp_path / "sa.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fcm_server", "--port", "0",
         "--credentials", str(credentials)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        url = f"http://127.0.0.1:{int(process.stdout.readline())}"
        settings.PUSH_APPS = {"fcm": {"default": {
            "credentials_file": str(credentials), "project_id": "journeyhub-test",
            "endpoint": url}}}
        messages = [push("ok-1", delivery_id=1, data={"delivery_id": "1"}),
                    push("ok-2", delivery_id=2, data={"delivery_id": "2"})]
        get_backend().send_batch(messages)
        get_backend().send_batch(messages[:1])

        with urllib.request.urlopen(f"{url}/_received") as response:
            received = json.load(response)
    finally:
        process.terminate()
        process.wait(timeout=5)

    assert received["total"] == 3
    assert received["by_delivery_id"] == {"1": 2, "2": 1}


def _eventually(condition, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _firebase_app_names() -> list[str]:
    import firebase_admin

    return list(firebase_admin._apps)
