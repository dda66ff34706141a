from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import Event
from audiences.services import customer_upsert, event_track
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Send, Template
from notifications.providers import locmem
from notifications.sending.batch_send import batch_send
from notifications.services import (
    deliveries_sweep,
    delivery_track,
    device_register,
    send_cancel,
    send_create,
    send_fan_out,
    send_pause,
    send_resume,
)
from tests.notifications.sending_kit import run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def locmem_backend(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.save()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def order_update():
    return Template.objects.create(
        name="Order update",
        title="{{ customer.first_name|default:'Hi' }}, your order is on its way",
        body="Your order from {{ last.order_placed.restaurant|default:'the restaurant' }} "
             "left the kitchen.",
        data={"screen": "orders/{{ last.order_placed.order_id }}"},
    )


def customer(external_id, first_name="", locale="en", kinds=("fcm",)):
    person, _ = customer_upsert(external_id=external_id, first_name=first_name, locale=locale)
    for kind in kinds:
        extra = {"p256dh": "key", "auth": "secret"} if kind == "webpush" else {}
        device_register(customer=person, kind=kind, token=f"{external_id}-{kind}",
                        platform={"fcm": "android", "apns": "ios", "webpush": "web"}[kind],
                        **extra)
    return person




def test_each_device_gets_its_personalised_message_once(order_update, locmem_backend):
    ana = customer("ana", first_name="Ana", kinds=("fcm", "apns"))
    event_track(customer=ana, name="order_placed",
                properties={"restaurant": "Tasca do Chico", "order_id": 7})
    event_track(customer=ana, name="order_placed",
                properties={"restaurant": "Luigi's", "order_id": 8})

    send = run(send_create(template=order_update, customer_ids=[ana.pk]))

    assert send.status == Send.Status.DONE
    assert sorted(m.kind for m in locmem_backend) == ["apns", "fcm"]
    message = locmem_backend[0]
    assert message.title == "Ana, your order is on its way"
    assert message.body == "Your order from Luigi's left the kitchen."
    assert message.data["screen"] == "orders/8"
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}


def test_missing_values_fall_back_to_their_defaults(order_update, locmem_backend):
    ben = customer("ben")

    run(send_create(template=order_update, customer_ids=[ben.pk]))

    assert locmem_backend[0].title == "Hi, your order is on its way"
    assert locmem_backend[0].body == "Your order from the restaurant left the kitchen."


def test_translation_by_locale_with_language_fallback(order_update, locmem_backend):
    order_update.translations.create(locale="pt", title="Olá {{ customer.first_name }}",
                                     body="A caminho!")
    maria = customer("maria", first_name="Maria", locale="pt-BR")
    john = customer("john", first_name="John", locale="en-GB")

    run(send_create(template=order_update, customer_ids=[maria.pk, john.pk]))

    titles = {m.token: m.title for m in locmem_backend}
    assert titles == {"maria-fcm": "Olá Maria", "john-fcm": "John, your order is on its way"}


def test_a_render_failure_skips_that_delivery_with_a_reason(locmem_backend):
    template = Template.objects.create(
        name="Divides", title="Split", body="{{ customer.attributes.total|divisibleby:0 }}"
    )
    ana = customer("ana")
    customer_upsert(external_id="ana", attributes={"total": 10})

    send = run(send_create(template=template, customer_ids=[ana.pk]))

    delivery = Delivery.objects.get(send=send)
    assert (delivery.status, delivery.reason) == ("skipped", "render_error")
    assert "ZeroDivisionError" in delivery.error
    assert locmem_backend == []


def test_payload_carries_a_signed_token_and_an_open_is_recorded_once(order_update,
                                                                     locmem_backend):
    ana = customer("ana")
    run(send_create(template=order_update, customer_ids=[ana.pk]))
    token = locmem_backend[0].data["jh_token"]

    delivery = delivery_track(token=token, action="opened")

    assert delivery.opened_at is not None and delivery.received_at is not None
    opened = Event.objects.get(customer=ana, name="notification_opened")
    assert opened.properties["delivery_id"] == delivery.pk
    with pytest.raises(ValidationError, match="Already reported"):
        delivery_track(token=token, action="opened")
    with pytest.raises(ValidationError, match="not valid"):
        delivery_track(token=f"{delivery.pk}:forged", action="received")


def test_a_claimed_batch_is_not_sent_twice(order_update, locmem_backend):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    batch = DeliveryBatch.objects.get(send=send)

    batch_send(batch_id=batch.pk)
    batch_send(batch_id=batch.pk)  # a duplicate task message

    assert len(locmem_backend) == 1


def test_a_dead_workers_batch_is_taken_back_and_finished(order_update, locmem_backend, settings):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    batch = DeliveryBatch.objects.get(send=send)
    # A worker claimed the batch, then died without a word.
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        status="sending", fence=7, claimed_at=timezone.now() - timedelta(hours=1)
    )

    swept = deliveries_sweep()
    batch_send(batch_id=batch.pk)

    assert swept["released"] == 1
    assert len(locmem_backend) == 1
    assert Send.objects.get(pk=send.pk).status == Send.Status.DONE


def test_a_paused_send_holds_its_batches_until_resumed(order_update, locmem_backend):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    batch = DeliveryBatch.objects.get(send=send)

    send_pause(send=send)
    batch_send(batch_id=batch.pk)
    assert locmem_backend == []

    send_resume(send=send)
    batch_send(batch_id=batch.pk)
    assert len(locmem_backend) == 1


def test_cancel_skips_what_was_not_sent(order_update, locmem_backend):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)

    send_cancel(send=send)
    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)

    delivery = Delivery.objects.get(send=send)
    assert (delivery.status, delivery.reason) == ("skipped", "send_cancelled")
    assert locmem_backend == []
    with pytest.raises(ValidationError):
        send_resume(send=send)


def test_an_offer_that_expires_while_deferred_is_not_sent(order_update, locmem_backend):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk],
                       expires_at=timezone.now() + timedelta(minutes=5))
    send_fan_out(send_id=send.pk)
    Send.objects.filter(pk=send.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)

    assert Delivery.objects.get(send=send).reason == "expired"
    assert locmem_backend == []


def test_a_customer_who_opts_out_before_a_deferred_send_is_skipped(order_update,
                                                                   locmem_backend):
    ana = customer("ana")
    send = send_create(template=order_update, customer_ids=[ana.pk])
    send_fan_out(send_id=send.pk)
    customer_upsert(external_id="ana", push_opt_out=True)

    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)

    assert Delivery.objects.get(send=send).reason == "opted_out"
    assert locmem_backend == []


def test_a_provider_without_configuration_pauses_the_send(order_update, settings):
    settings.PUSH_BACKEND = "notifications.providers.real.ProviderBackend"
    settings.PUSH_APPS = {"fcm": {}, "apns": {}, "webpush": {}}
    ana = customer("ana")

    send = run(send_create(template=order_update, customer_ids=[ana.pk]))

    assert send.status == Send.Status.PAUSED
    assert "no fcm configuration" in send.error
    assert Delivery.objects.get(send=send).status == "queued"
