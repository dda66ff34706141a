from datetime import time, timedelta

import pytest
from django.utils import timezone

from audiences.services import customer_upsert
from notifications.demo_sink import demo_inboxes_attach, demo_vapid_ensure
from notifications.models import (
    DeliveryBatch,
    DeliverySettings,
    DemoReceivedPush,
    Device,
    Send,
    Template,
)
from notifications.sending.batch_send import batch_send
from notifications.services import device_register, send_create, send_fan_out


@pytest.fixture
def demo_mode(settings, live_server, tmp_path):
    settings.DEMO_VAPID_FILE = tmp_path / "vapid.json"
    settings.DEMO_BASE_URL = live_server.url
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = {"fcm": {}, "apns": {}, "webpush": {"default": demo_vapid_ensure()}}
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})


# serialized_rollback: keep the topics and stage rules that data migrations create.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_send_reaches_the_demo_sink_through_real_web_push(demo_mode):
    ana, _ = customer_upsert(external_id="ana", first_name="Ana")
    device_register(customer=ana, kind="webpush", token="https://placeholder.invalid/x",
                    platform="web", p256dh="placeholder", auth="placeholder")
    assert demo_inboxes_attach(devices=Device.objects.all()) == 1
    template = Template.objects.create(name="Guide", title="Hello {{ customer.first_name }}",
                                       body="Ten days in Lisbon: our guide", url="/guides/lisbon")

    send = send_create(template=template, customer_ids=[ana.pk], source="demo")
    send_fan_out(send_id=send.pk)
    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)

    received = DemoReceivedPush.objects.get()
    assert (received.title, received.body) == ("Hello Ana", "Ten days in Lisbon: our guide")
    assert received.payload["url"] == "/guides/lisbon"
    assert received.payload["data"]["delivery_id"]
    assert send.deliveries.get().status == "sent"


@pytest.mark.django_db
def test_the_sink_refuses_what_it_cannot_read(client, settings, tmp_path):
    ana, _ = customer_upsert(external_id="ana")
    device_register(customer=ana, kind="webpush", token="https://placeholder.invalid/y",
                    platform="web", p256dh="p", auth="a")
    demo_inboxes_attach(devices=Device.objects.all())
    key = Device.objects.get().demo_inbox.key
    url = f"/demo/webpush/{key}/"

    assert client.post(url, b"garbage", content_type="application/octet-stream").status_code == 401
    assert client.post(url, b"garbage", content_type="application/octet-stream",
                       HTTP_AUTHORIZATION="vapid t=x, k=y").status_code == 400
    assert client.post("/demo/webpush/unknown/", b"x", content_type="application/octet-stream",
                       HTTP_AUTHORIZATION="vapid t=x, k=y").status_code == 410
    assert not DemoReceivedPush.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_message_sent_again_after_a_crash_shows_once(demo_mode):
    ana, _ = customer_upsert(external_id="ana", first_name="Ana")
    device_register(customer=ana, kind="webpush", token="https://placeholder.invalid/z",
                    platform="web", p256dh="placeholder", auth="placeholder")
    demo_inboxes_attach(devices=Device.objects.all())
    template = Template.objects.create(name="Guide", title="Hello", body="Lisbon")
    send = send_create(template=template, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    batch = DeliveryBatch.objects.get(send=send)
    batch_send(batch_id=batch.pk)
    first_shown_at = DemoReceivedPush.objects.get().received_at
    # The worker died after the push service took the message, before recording it.
    send.deliveries.update(status="sending")
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        status="sending", claimed_at=timezone.now() - timedelta(hours=1))
    Send.objects.filter(pk=send.pk).update(status="sending")

    batch_send(batch_id=batch.pk)  # the next claim sends it again

    delivery = send.deliveries.get()
    [shown] = DemoReceivedPush.objects.all()
    assert shown.tag == f"jh-{delivery.pk}" and shown.payload["tag"] == shown.tag
    assert shown.received_at > first_shown_at  # it did arrive again, and replaced the first
    assert delivery.status == "sent"
    other = send_create(template=template, customer_ids=[ana.pk])
    send_fan_out(send_id=other.pk)
    batch_send(batch_id=DeliveryBatch.objects.get(send=other).pk)
    assert DemoReceivedPush.objects.count() == 2  # another delivery is another notification
