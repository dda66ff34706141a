"""The whole pipeline against a loopback FCM that speaks HTTP v1: provider answers become
delivery rows, device states and send states."""

from datetime import time

import pytest
from django.urls import reverse
from django.utils import timezone

from audiences.services import customer_upsert
from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    Device,
    ProviderOutage,
    Send,
    Template,
)
from notifications.sending.batch_send import batch_send
from notifications.sending.recording import MAX_ATTEMPTS
from notifications.services import device_register, send_create, send_fan_out, send_resume
from tests.fakes.fcm_server import FakeFcm

pytestmark = pytest.mark.django_db


@pytest.fixture
def fcm(settings, tmp_path):
    with FakeFcm() as fake:
        credentials = fake.write_service_account(tmp_path / "service-account.json")
        settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
        settings.PUSH_APPS = {"fcm": {"default": {"credentials_file": str(credentials),
                                                  "endpoint": fake.url}},
                              "apns": {}, "webpush": {}}
        DeliverySettings.objects.update_or_create(
            pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
        yield fake


@pytest.fixture
def template():
    return Template.objects.create(name="Tips", title="Hi {{ customer.first_name }}",
                                   body="Three tips for Lisbon")


def android(external_id, token):
    customer, _ = customer_upsert(external_id=external_id, first_name=external_id.title())
    device, _ = device_register(customer=customer, kind="fcm", token=token, platform="android")
    return customer, device


def send_to(template, customers):
    send = send_create(template=template, customer_ids=[c.pk for c in customers])
    send_fan_out(send_id=send.pk)
    return send


def run_batches(send):
    for batch_id in DeliveryBatch.objects.filter(send=send).values_list("pk", flat=True):
        batch_send(batch_id=batch_id)


def release_retries(send):
    """Time passes: retries become due."""
    DeliveryBatch.objects.filter(send=send, status="queued").update(not_before=None)


def test_delivered_messages_are_recorded_with_the_fcm_message_name(fcm, template):
    ana, _ = android("ana", "ok-ana")

    send = send_to(template, [ana])
    run_batches(send)

    delivery = Delivery.objects.get(send=send)
    assert delivery.status == "sent"
    assert delivery.provider_message_id.startswith("projects/journeyhub-test/messages/")
    assert fcm.summary()["by_delivery_id"] == {str(delivery.pk): 1}
    assert fcm.received[0]["message"]["notification"]["title"] == "Hi Ana"


def test_unregistered_token_fails_the_delivery_and_deactivates_the_device(fcm, template):
    gone, device = android("gone", "unregistered-1")

    run_batches(send_to(template, [gone]))

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.reason) == ("failed", "dead_token")
    device.refresh_from_db()
    assert not device.is_active and device.deactivated_reason == "UNREGISTERED"
    assert not device.fcm.__class__.objects.get(pk=device.fcm_id).active


def test_invalid_argument_about_the_payload_keeps_the_device(fcm, template):
    odd, device = android("odd", "invalid-1")

    run_batches(send_to(template, [odd]))

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.reason) == ("failed", "provider_rejected")
    assert Device.objects.get(pk=device.pk).is_active


def test_quota_and_unavailable_are_retried_then_given_up(fcm, template):
    """One device's own temporary errors, among devices that FCM accepts."""
    busy, _ = android("busy", "quota-1")
    down, _ = android("down", "unavailable-1")
    fine = [android(f"fine{i}", f"ok-{i}")[0] for i in range(3)]
    send = send_to(template, [busy, down, *fine])

    for _ in range(MAX_ATTEMPTS):
        run_batches(send)
        release_retries(send)

    rows = dict(Delivery.objects.filter(send=send, status="failed")
                .values_list("customer__external_id", "reason"))
    assert rows == {"busy": "retries_exhausted", "down": "retries_exhausted"}
    assert Delivery.objects.filter(send=send, status="sent").count() == 3
    assert fcm.attempts["quota-1"] == MAX_ATTEMPTS
    assert Send.objects.get(pk=send.pk).status == Send.Status.DONE


def test_a_retry_waits_at_least_what_retry_after_asks(fcm, template):
    busy, _ = android("busy", "quota-1")
    fine = [android(f"fine{i}", f"ok-{i}")[0] for i in range(4)]
    send = send_to(template, [busy, *fine])

    run_batches(send)

    batch = DeliveryBatch.objects.get(send=send)
    assert batch.status == "queued" and batch.not_before is not None
    assert Delivery.objects.get(send=send, customer=busy).status == "queued"
    batch_send(batch_id=batch.pk)  # not due yet: nothing happens
    assert fcm.attempts["quota-1"] == 1


def test_bad_credentials_pause_the_send_instead_of_burning_the_audience(fcm, template):
    customers = [android(f"c{i}", f"ok-{i}")[0] for i in range(3)]
    fcm.auth_failing = True
    send = send_to(template, customers)

    run_batches(send)

    send.refresh_from_db()
    assert send.status == Send.Status.PAUSED
    assert "credentials" in send.error
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"queued"}

    fcm.auth_failing = False
    send_resume(send=send)
    run_batches(send)
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}


def test_an_unavailable_fcm_holds_the_send_as_a_whole_without_spending_attempts(
        fcm, template, admin_client):
    first = send_to(template, [android(f"a{i}", f"ok-a{i}")[0] for i in range(5)])
    second = send_to(template, [android(f"b{i}", f"ok-b{i}")[0] for i in range(5)])
    fcm.outage((600, "unavailable-"))

    run_batches(first)
    outage = ProviderOutage.objects.get(kind="fcm")
    tried = fcm.summary()["attempts"]
    run_batches(second)  # FCM is known to be down: this batch waits without a request

    assert tried == 5 and fcm.summary()["attempts"] == 5
    rows = Delivery.objects.filter(send__in=[first, second])
    assert set(rows.values_list("status", "attempts")) == {("queued", 0)}
    assert set(DeliveryBatch.objects.values_list("status", "not_before")) == {
        ("queued", outage.retry_at)}
    page = admin_client.get(reverse("admin:notifications_send_change", args=[first.pk]))
    shown = f"FCM provider unavailable, retrying at {timezone.localtime(outage.retry_at):%H:%M}"
    assert shown in page.content.decode()

    fcm.outage()  # FCM is back; time passes
    ProviderOutage.objects.update(retry_at=timezone.now())
    release_retries(first)
    release_retries(second)
    run_batches(first)
    run_batches(second)

    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert not ProviderOutage.objects.exists()
    assert Send.objects.get(pk=second.pk).status == Send.Status.DONE


def test_a_longer_outage_waits_longer_and_honours_retry_after(fcm, template, settings):
    settings.DELIVERY_OUTAGE_BACKOFF_SECONDS = 10
    settings.DELIVERY_OUTAGE_BACKOFF_MAX_SECONDS = 300
    send = send_to(template, [android(f"a{i}", f"ok-a{i}")[0] for i in range(3)])
    fcm.outage((600, "internal-"))
    waits = []
    for _ in range(3):
        ProviderOutage.objects.update(retry_at=timezone.now())
        release_retries(send)
        before = timezone.now()
        run_batches(send)
        waits.append((ProviderOutage.objects.get().retry_at - before).total_seconds())

    assert [round(w) for w in waits] == [10, 20, 40]
    assert ProviderOutage.objects.get().failures == 3
