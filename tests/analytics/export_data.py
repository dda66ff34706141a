"""A small history for the export tests: two customers, a campaign send (step 1, variant A)
and a send outside any campaign, three deliveries and three events on known days."""

from dataclasses import dataclass
from datetime import UTC, datetime

from audiences.models import Event
from audiences.services import customer_upsert
from campaigns.models import Campaign, Enrollment, Step, StepSend, Variant
from notifications.models import Delivery, Send, Template


def at(day: int, hour: int = 10, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, micro, tzinfo=UTC)


@dataclass
class History:
    campaign: Campaign
    step: Step
    campaign_send: Send
    other_send: Send
    deliveries: list[Delivery]
    events: list[Event]


def export_history() -> History:
    ana, _ = customer_upsert(external_id="ana-1")
    bo, _ = customer_upsert(external_id="bo-2")
    template = Template.objects.create(name="Offer", title="Hi", body="20% off")
    campaign = Campaign.objects.create(name="Spring offer", kind="journey")
    step = Step.objects.create(campaign=campaign, position=1, kind="send", template=template)
    variant = Variant.objects.create(step=step, name="A", template=template)
    campaign_send = Send.objects.create(template=template, customer_ids=[], source="campaign")
    StepSend.objects.create(step=step, campaign=campaign, variant=variant, send=campaign_send)
    other_send = Send.objects.create(template=template, customer_ids=[], source="manual")
    Enrollment.objects.create(campaign=campaign, customer=ana, entered_at=at(1))
    deliveries = [
        Delivery.objects.create(
            send=campaign_send, customer=ana, kind="fcm", application_id="shop",
            status="sent", created_at=at(1), sent_at=at(1, second=1),
            received_at=at(1, second=2, micro=500000), opened_at=at(1, 11)),
        Delivery.objects.create(
            send=campaign_send, customer=bo, status="skipped", reason="opted_out",
            created_at=at(2)),
        Delivery.objects.create(
            send=other_send, customer=ana, kind="apns", status="failed", reason="dead_token",
            error='Unregistered, "gone"', created_at=at(5), sent_at=None),
    ]
    events = [
        Event.objects.create(customer=ana, name="purchase", properties={"total": 12.5, "sku": "A1"},
                             occurred_at=at(1, 9), received_at=at(1, 9, 0, 1)),
        Event.objects.create(customer=bo, name="app_open", properties={},
                             occurred_at=at(3), received_at=at(3)),
        Event.objects.create(customer=ana, name="note", properties={"text": "=1+1"},
                             occurred_at=at(6), received_at=at(6)),
    ]
    return History(campaign, step, campaign_send, other_send, deliveries, events)
