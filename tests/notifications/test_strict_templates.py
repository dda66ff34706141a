"""Strict templates: a variable with no value skips that customer's message, naming it."""

from datetime import time

import pytest

from audiences.services import customer_upsert
from notifications.models import Delivery, DeliverySettings, Template
from notifications.providers import locmem
from notifications.services import device_register, send_create, template_save
from tests.notifications.sending_kit import run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    DeliverySettings.objects.update_or_create(pk=1, defaults={
        "quiet_hours_start": time(0), "quiet_hours_end": time(0), "frequency_cap": 0})
    yield locmem.outbox
    locmem.outbox.clear()


def rider(external_id, **attributes):
    customer, _ = customer_upsert(external_id=external_id, attributes=attributes)
    device_register(customer=customer, kind="fcm", token=f"{external_id}-token",
                    platform="android")
    return customer


def rate_your_ride(strict):
    return template_save(fields={
        "name": f"Rate {strict}", "title": "Thanks for riding",
        "body": "Rate your ride with {{ customer.attributes.driver }}, "
                "{{ customer.first_name|default:'rider' }}", "strict": strict})


def test_a_strict_template_skips_the_customer_missing_a_value_and_names_it(outbox):
    ana, ben = rider("ana", driver="Rui"), rider("ben")

    send = run(send_create(template=rate_your_ride(True), customer_ids=[ana.pk, ben.pk]))

    assert [m.body for m in outbox] == ["Rate your ride with Rui, rider"]
    skipped = Delivery.objects.get(send=send, customer=ben)
    assert (skipped.status, skipped.reason) == ("skipped", "render_error")
    assert skipped.error == "strict template: no value for customer.attributes.driver"


def test_a_lenient_template_still_sends_with_the_gap(outbox):
    ben = rider("ben")

    run(send_create(template=rate_your_ride(False), customer_ids=[ben.pk]))

    assert [m.body for m in outbox] == ["Rate your ride with , rider"]


def test_a_strict_template_reading_the_event_can_be_saved():
    template = template_save(fields={"name": "Order", "title": "Order {{ event.order_id }}",
                                     "body": "On its way", "strict": True})
    assert Template.objects.get(pk=template.pk).strict


def test_loop_variables_and_empty_values_with_a_default_are_not_missing(outbox):
    ana = rider("ana", stops=["Lisbon", "Porto"])
    template = template_save(fields={
        "name": "Route", "title": "Your route", "strict": True,
        "body": "{% for stop in customer.attributes.stops %}{{ stop }} {% endfor %}"
                "{{ customer.last_name|default_if_none:'' }}{{ customer.last_name|default:'' }}"})

    send = run(send_create(template=template, customer_ids=[ana.pk]))

    assert Delivery.objects.get(send=send).status == "sent"
