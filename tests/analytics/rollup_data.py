"""A small campaign history built directly with the ORM (not through the campaigns engine), with
numbers small enough to count by hand. See ``campaign_world`` for what it holds."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from audiences.services import customer_upsert
from campaigns.models import Campaign, Conversion, Enrollment, Step, StepSend, Variant
from notifications.models import Delivery, Device, Send, Template
from notifications.services import device_register

D1, D2 = date(2026, 3, 2), date(2026, 3, 3)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def customer(external_id: str, *kinds: str):
    person, _ = customer_upsert(external_id=external_id)
    for n, kind in enumerate(kinds):
        extra = {"p256dh": "p", "auth": "a"} if kind == "webpush" else {}
        platform = {"apns": "ios", "fcm": "android", "webpush": "web"}[kind]
        device_register(customer=person, kind=kind, token=f"{external_id}-{kind}-{n}",
                        platform=platform, **extra)
    return person


def device(person, kind: str) -> Device:
    return Device.objects.get(customer=person, kind=kind)


def deliver(send, person, kind: str = "", *, status="sent", reason="", day=D1, received=False,
            opened=False) -> Delivery:
    """A delivery row created on ``day`` at 10:00; sent a minute later when status is sent."""
    return Delivery.objects.create(
        send=send, customer=person, device=device(person, kind) if kind else None, kind=kind,
        status=status, reason=reason, created_at=at(day, 10),
        sent_at=at(day, 10, 1) if status == "sent" else None,
        received_at=at(day, 10, 2) if received else None,
        opened_at=at(day, 10, 5) if opened else None,
    )


@dataclass
class World:
    campaign: Campaign
    step1: Step
    step2: Step
    variant_a: Variant
    variant_b: Variant
    customers: dict = field(default_factory=dict)
    deliveries: dict = field(default_factory=dict)
    other_send: Send | None = None


def template(name: str) -> Template:
    return Template.objects.create(name=name, title="Hi", body="An offer")


def campaign_send(step: Step, variant: Variant | None, name: str) -> Send:
    send = Send.objects.create(template=variant.template if variant else step.template,
                               customer_ids=[], source=name)
    StepSend.objects.create(step=step, campaign=step.campaign, variant=variant, send=send)
    return send


def campaign_world() -> World:
    """Campaign "Spring offer" (goal: purchase). Step 1 sends with variants A and B, step 2
    without. On D1, variant A: c1 (fcm: sent, received, opened; apns: sent), c2 (fcm: sent,
    received), c3 skipped frequency_capped; variant B: c4 (webpush: sent, received, opened),
    c5 (fcm: failed dead_token), c6 skipped opted_out. On D2, step 2: c1 and c2 (fcm, sent;
    c2 opened). A send outside any campaign on D1: c1 fcm failed provider_rejected.
    Enrollments on D1: c1..c6 treatment, h1 and h2 holdout. Conversions: c1 (variant A, 30.00,
    D2), c4 (variant B, 20.00, D1), h1 (holdout, 10.00, D2)."""
    campaign = Campaign.objects.create(name="Spring offer", kind="journey",
                                       goal_event_name="purchase")
    step1 = Step.objects.create(campaign=campaign, position=1, kind="send", name="Offer")
    step2 = Step.objects.create(campaign=campaign, position=2, kind="send", name="Reminder",
                                template=template("reminder"))
    variant_a = Variant.objects.create(step=step1, name="A", template=template("offer A"))
    variant_b = Variant.objects.create(step=step1, name="B", template=template("offer B"))
    world = World(campaign, step1, step2, variant_a, variant_b)
    c = world.customers
    for name, kinds in [("c1", ("fcm", "apns")), ("c2", ("fcm",)), ("c3", ()), ("c4", ("webpush",)),
                        ("c5", ("fcm",)), ("c6", ()), ("h1", ()), ("h2", ())]:
        c[name] = customer(name, *kinds)
    send_a, send_b = campaign_send(step1, variant_a, "A"), campaign_send(step1, variant_b, "B")
    send_2 = campaign_send(step2, None, "reminder")
    d = world.deliveries
    d["c1_a_fcm"] = deliver(send_a, c["c1"], "fcm", received=True, opened=True)
    d["c1_a_apns"] = deliver(send_a, c["c1"], "apns")
    d["c2_a"] = deliver(send_a, c["c2"], "fcm", received=True)
    deliver(send_a, c["c3"], status="skipped", reason="frequency_capped")
    d["c4_b"] = deliver(send_b, c["c4"], "webpush", received=True, opened=True)
    deliver(send_b, c["c5"], "fcm", status="failed", reason="dead_token")
    deliver(send_b, c["c6"], status="skipped", reason="opted_out")
    deliver(send_2, c["c1"], "fcm", day=D2)
    deliver(send_2, c["c2"], "fcm", day=D2, opened=True)
    world.other_send = Send.objects.create(template=variant_a.template, customer_ids=[])
    deliver(world.other_send, c["c1"], "fcm", status="failed", reason="provider_rejected")
    enrollments = {}
    for name in ("c1", "c2", "c3", "c4", "c5", "c6", "h1", "h2"):
        group = "holdout" if name.startswith("h") else "treatment"
        enrollments[name] = Enrollment.objects.create(campaign=campaign, customer=c[name],
                                                      group=group, entered_at=at(D1, 9))
    convert(enrollments["c1"], Decimal("30.00"), at(D2, 8), d["c1_a_fcm"], variant_a)
    convert(enrollments["c4"], Decimal("20.00"), at(D1, 18), d["c4_b"], variant_b)
    convert(enrollments["h1"], Decimal("10.00"), at(D2, 9))
    return world


def convert(enrollment, revenue, occurred_at, delivery=None, variant=None) -> Conversion:
    return Conversion.objects.create(
        campaign=enrollment.campaign, enrollment=enrollment, customer=enrollment.customer,
        group=enrollment.group, delivery=delivery, variant=variant, revenue=revenue,
        occurred_at=occurred_at,
    )
