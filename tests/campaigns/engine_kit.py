"""Builders shared by the journey engine tests (tests/campaigns/test_engine*.py)."""

from datetime import time, timedelta

import pytest

from audiences.models import Customer, Segment
from audiences.services import customer_upsert
from campaigns.models import Campaign, Enrollment, Step
from notifications.models import DeliveryBatch, DeliverySettings, Send, Template
from notifications.providers import locmem
from notifications.sending.batch_send import batch_send
from notifications.services import device_register, send_fan_out


@pytest.fixture
def outbox(settings):
    """The locmem provider backend, no quiet hours, no frequency cap."""
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.frequency_cap = 0
    controls.save()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def eager():
    """Tasks run in-process when enqueued, as a worker would run them."""
    from journeyhub.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def person(external_id: str, *, device: bool = True, **fields) -> Customer:
    customer, _ = customer_upsert(external_id=external_id, **fields)
    if device:
        device_register(customer=customer, kind="fcm", token=f"tok-{external_id}",
                        platform="android")
    return customer


def template(name: str = "Hello", **fields) -> Template:
    fields.setdefault("title", "Hi {{ customer.first_name|default:'there' }}")
    fields.setdefault("body", "Something for you")
    return Template.objects.create(name=name, **fields)


def everyone(name: str = "Everyone") -> Segment:
    return Segment.objects.get_or_create(name=name, defaults={"rules": {"all": []}})[0]


def campaign(name: str = "Journey", *, steps: list[dict], **fields) -> Campaign:
    """A RUNNING campaign with these steps, in order. ``next``/``else`` in a step dict name
    other steps by index."""
    fields.setdefault("kind", Campaign.Kind.JOURNEY)
    fields.setdefault("status", Campaign.Status.RUNNING)
    if fields["kind"] != Campaign.Kind.JOURNEY:
        fields.setdefault("segment", everyone())
    created = Campaign.objects.create(name=name, **fields)
    built = []
    for position, spec in enumerate(steps):
        spec = dict(spec)
        spec.pop("next", None), spec.pop("else", None)
        built.append(Step.objects.create(campaign=created, position=position, **spec))
    for step, spec in zip(built, steps, strict=True):
        if "next" in spec or "else" in spec:
            step.next_step = built[spec["next"]] if spec.get("next") is not None else None
            step.else_step = built[spec["else"]] if spec.get("else") is not None else None
            step.save()
    return created


def wait(**duration) -> dict:
    return {"kind": Step.Kind.WAIT, "duration": timedelta(**duration)}


def send(tmpl: Template) -> dict:
    return {"kind": Step.Kind.SEND, "template": tmpl}


def enrollment_of(journey: Campaign, customer: Customer) -> Enrollment:
    return Enrollment.objects.filter(campaign=journey, customer=customer).latest("entered_at")


def deliver(sends) -> None:
    """What the workers do with each Send: fan out, then send every batch."""
    for one in sends:
        send_fan_out(send_id=one.pk)
        for batch_id in DeliveryBatch.objects.filter(send=one).values_list("pk", flat=True):
            batch_send(batch_id=batch_id)


def sends_of(journey: Campaign):
    return Send.objects.filter(step_send__campaign=journey).order_by("pk")
