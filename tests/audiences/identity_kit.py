"""Builders shared by the merge, erasure and data export tests (audiences, api, notifications,
campaigns): customers with devices, events, enrollments and real fanned-out deliveries."""

from datetime import time, timedelta

from django.utils import timezone

from audiences.models import Customer
from audiences.services import EventInput, customer_upsert, events_track
from campaigns.models import Campaign, Conversion, Enrollment, Step
from notifications.models import Delivery, DeliverySettings, Device, Send, Template
from notifications.services import device_register, send_create, send_fan_out


def person(external_id: str, **fields) -> Customer:
    customer, _ = customer_upsert(external_id=external_id, **fields)
    return customer


def phone(customer: Customer, token: str) -> Device:
    device, _ = device_register(customer=customer, kind="fcm", token=f"{token:x<40}",
                                platform="android")
    return device


def track(customer: Customer, *names: str, ids: list[str | None] | None = None,
          days_ago: int = 1):
    """Events for the customer, oldest first, a minute apart."""
    start = timezone.now() - timedelta(days=days_ago)
    ids = ids or [None] * len(names)
    items = [EventInput(name=name, customer=customer, client_event_id=client_id,
                        occurred_at=start + timedelta(minutes=number))
             for number, (name, client_id) in enumerate(zip(names, ids, strict=True))]
    return [result.event for result in events_track(items=items)]


def journey(name: str = "Welcome") -> Campaign:
    campaign = Campaign.objects.create(name=name, kind=Campaign.Kind.JOURNEY,
                                       status=Campaign.Status.RUNNING)
    Step.objects.create(campaign=campaign, position=0, kind=Step.Kind.WAIT,
                        duration=timedelta(days=1))
    return campaign


def enroll(campaign: Campaign, customer: Customer, **fields) -> Enrollment:
    fields.setdefault("step", campaign.steps.first())
    fields.setdefault("next_run_at", timezone.now() + timedelta(days=1))
    return Enrollment.objects.create(campaign=campaign, customer=customer, **fields)


def convert(enrollment: Enrollment, revenue: str = "10.00") -> Conversion:
    return Conversion.objects.create(
        campaign=enrollment.campaign, enrollment=enrollment, customer=enrollment.customer,
        group=enrollment.group, revenue=revenue, occurred_at=timezone.now(),
    )


def no_controls() -> None:
    """No quiet hours and no frequency cap, so a fan-out queues a row per device."""
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.frequency_cap = 0
    controls.save()


def broadcast(*customers: Customer, name: str = "Hello") -> Send:
    """A send to these customers, fanned out: one queued delivery per device, one skipped
    row for a customer without one."""
    template = Template.objects.get_or_create(name=name, defaults={"title": "Hi",
                                                                   "body": "There"})[0]
    send = send_create(template=template, customer_ids=[c.pk for c in customers],
                       cap_exempt=True, respect_quiet_hours=False)
    send_fan_out(send_id=send.pk)
    return send


def deliveries_of(customer: Customer):
    return Delivery.objects.filter(customer=customer).order_by("pk")
