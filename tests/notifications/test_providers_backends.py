"""Choosing a backend, the development backends, and the batch contract every backend keeps."""

import email.utils
import time

import pytest

from notifications.providers import (
    MAX_BATCH_SIZE,
    Outcome,
    ProviderConfigError,
    PushMessage,
    get_backend,
    locmem,
)
from notifications.providers.common import retry_after_seconds
from notifications.providers.console import ConsoleBackend
from notifications.providers.locmem import LocmemBackend
from notifications.providers.real import ProviderBackend


def push(delivery_id: int = 1, kind: str = "fcm", application_id: str = "default",
         **fields) -> PushMessage:
    fields = {"token": f"token-{delivery_id}", "title": "Hello", "body": "Your cart misses you",
              **fields}
    return PushMessage(delivery_id=delivery_id, kind=kind, application_id=application_id,
                       **fields)


@pytest.fixture
def outbox():
    locmem.outbox.clear()
    yield locmem.outbox
    locmem.outbox.clear()


def test_the_locmem_backend_keeps_what_it_sends(settings, outbox):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    messages = [push(1), push(2)]

    results = get_backend().send_batch(messages)

    assert outbox == messages
    assert [(r.delivery_id, r.outcome) for r in results] == [(1, Outcome.SENT), (2, Outcome.SENT)]


def test_the_console_backend_prints_each_message(settings, capsys):
    settings.PUSH_BACKEND = "notifications.providers.console.ConsoleBackend"

    [result] = get_backend().send_batch([push(7, kind="apns", token="f" * 64)])

    printed = capsys.readouterr().out
    assert "[push apns/default] delivery 7 -> ffffffffffffffff…: 'Hello'" in printed
    assert result.outcome == Outcome.SENT


def test_the_backend_is_built_once_and_again_when_settings_change(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    first = get_backend()

    assert get_backend() is first
    settings.PUSH_BACKEND = "notifications.providers.console.ConsoleBackend"
    assert isinstance(get_backend(), ConsoleBackend)


def test_a_missing_application_id_names_kind_and_id(settings):
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = {"fcm": {"default": {"credentials_file": "/nowhere.json"}},
                          "apns": {}, "webpush": {}}

    with pytest.raises(ProviderConfigError, match="no apns configuration for application id "
                                                   "'brand_b'"):
        get_backend().send_batch([push(kind="apns", application_id="brand_b")])


def test_an_unreadable_fcm_service_account_is_a_configuration_error(settings, tmp_path):
    settings.PUSH_APPS = {"fcm": {"default": {"credentials_file": str(tmp_path / "no.json")}}}

    with pytest.raises(ProviderConfigError, match="fcm application id 'default'"):
        ProviderBackend().send_batch([push()])


@pytest.mark.parametrize("backend", [LocmemBackend(), ConsoleBackend(), ProviderBackend()],
                         ids=["locmem", "console", "real"])
def test_every_backend_refuses_a_batch_that_breaks_the_contract(backend, outbox):
    too_many = [push(i) for i in range(MAX_BATCH_SIZE + 1)]
    mixed = [push(1), push(2, kind="apns")]

    for batch in (too_many, mixed, []):
        with pytest.raises(ValueError):
            backend.send_batch(batch)
    assert outbox == []


@pytest.mark.parametrize(("header", "expected"), [
    (None, 30.0), ("", 30.0), ("12", 12.0), (" 3 ", 3.0), ("soon", 30.0),
    (email.utils.formatdate(time.time() - 60, usegmt=True), 0.0),
])
def test_retry_after_reads_seconds_or_falls_back(header, expected):
    assert retry_after_seconds(header, 30.0) == expected


def test_retry_after_reads_an_http_date():
    header = email.utils.formatdate(time.time() + 120, usegmt=True)

    assert 115 <= retry_after_seconds(header, 30.0) <= 120
