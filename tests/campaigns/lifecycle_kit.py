"""Builders for the lifecycle tests (tests/campaigns/test_lifecycle*.py): campaigns made the
way staff make them, through campaigns.services."""

from datetime import timedelta

from audiences.models import Segment
from audiences.services import customer_upsert, segment_create
from campaigns.models import Campaign, Enrollment, Step
from campaigns.services import campaign_save
from notifications.models import Template


def a_template(name: str = "Hello") -> Template:
    return Template.objects.get_or_create(
        name=name, defaults={"title": "Hi {{ customer.first_name }}", "body": "News"})[0]


def everyone() -> Segment:
    found = Segment.objects.filter(name="Everyone").first()
    return found or segment_create(name="Everyone", rules={"all": []})


def customers(count: int, prefix: str = "c") -> list:
    return [customer_upsert(external_id=f"{prefix}-{n}")[0] for n in range(count)]


def send_step(**fields) -> dict:
    return {"kind": Step.Kind.SEND, "template": a_template(), **fields}


def wait_step(**fields) -> dict:
    return {"kind": Step.Kind.WAIT, "duration": timedelta(days=1), **fields}


def a_journey(name: str = "Welcome", steps: list[dict] | None = None, **fields) -> Campaign:
    fields = {"kind": Campaign.Kind.JOURNEY, "trigger": Campaign.Trigger.EVENT,
              "trigger_event_name": "signed_up", **fields}
    steps = steps if steps is not None else [send_step(name="Hello"), wait_step(),
                                             send_step(name="Again")]
    return campaign_save(fields={"name": name, **fields}, steps=steps)


def a_broadcast(name: str = "Sale", **fields) -> Campaign:
    fields = {"kind": Campaign.Kind.BROADCAST, "segment": everyone(), **fields}
    return campaign_save(fields={"name": name, **fields}, steps=[send_step()])


def a_recurring(name: str = "Weekly travel tips", **fields) -> Campaign:
    fields = {"kind": Campaign.Kind.RECURRING, "segment": everyone(), "crontab": "0 10 * * 1",
              "crontab_time_zone": "Europe/Lisbon", **fields}
    return campaign_save(fields={"name": name, **fields}, steps=[send_step()])


def enroll(campaign: Campaign, step: Step, people: list) -> list[Enrollment]:
    return [Enrollment.objects.create(campaign=campaign, customer=c, step=step) for c in people]
