"""One example campaign per lifecycle stage, built on the demo templates and events.

- awareness: weekly destination guides to customers still discovering the app (recurring);
- engagement: an order update, personalised with the customer's name and the restaurant of
  their last order, the moment an order is placed (journey, transactional);
- conversion: a limited-time offer to engaged customers that is never sent after it ends
  (broadcast, with a holdout and a purchase goal);
- retention: regular content to customers at risk of churn (weekly, recurring), and a journey
  on entering the retention stage with a second nudge if they stay away;
- advocacy: after a five-star rating, a referral ask carrying the customer's referral code;
  a friend signing up with it records referral_signup on them, the journey's goal.

Created once by name (staff may edit them afterwards) and launched, except the broadcast,
which is left as a draft for staff to launch from the builder."""

from datetime import time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audiences.models import Segment
from campaigns.models import Campaign, Step, Variant
from campaigns.services import campaign_launch
from notifications.models import Template

STAGE_SEGMENTS = {
    "awareness": ("Awareness stage", {"stage": {"in": ["awareness"]}}),
    "engagement": ("Engaged, not yet buying", {"all": [
        {"stage": {"in": ["engagement"]}}, {"consent": {"topic": "offers"}}]}),
    "retention": ("At risk of churn", {"stage": {"in": ["retention"]}}),
}


def _segment(stage: str) -> Segment:
    name, rules = STAGE_SEGMENTS[stage]
    return Segment.objects.get_or_create(name=name, defaults={"rules": rules})[0]


def _template(name: str) -> Template:
    return Template.objects.get(name=name)


def _steps(campaign: Campaign, specs: list[dict]) -> list[Step]:
    """Create the steps in order; "next"/"else" in a spec name another step by its key."""
    steps = {}
    for position, spec in enumerate(specs, start=1):
        fields = {k: v for k, v in spec.items() if k not in ("key", "next", "else", "variants")}
        steps[spec["key"]] = Step.objects.create(campaign=campaign, position=position, **fields)
    for spec in specs:
        step = steps[spec["key"]]
        step.next_step = steps.get(spec.get("next"))
        step.else_step = steps.get(spec.get("else"))
        step.save(update_fields=["next_step", "else_step"])
        for name, template, weight in spec.get("variants", []):
            Variant.objects.create(step=step, name=name, template=_template(template),
                                   weight=weight)
    return list(steps.values())


def _awareness() -> tuple[dict, list[dict]]:
    return {
        "name": "Weekly destination guides", "kind": Campaign.Kind.RECURRING,
        "stage": "awareness", "segment": _segment("awareness"),
        "crontab": "0 10 * * 1", "crontab_time_zone": "Europe/Lisbon",
        "description": "Every Monday at 10:00 (Lisbon), a city guide to customers still "
                       "discovering the app.",
        "goal_event_name": "app_open", "goal_window": timedelta(days=3),
    }, [{"key": "guide", "kind": Step.Kind.SEND, "template": _template("Destination guide")}]


def _engagement() -> tuple[dict, list[dict]]:
    return {
        "name": "Order update", "kind": Campaign.Kind.JOURNEY, "stage": "engagement",
        "trigger": Campaign.Trigger.EVENT, "trigger_event_name": "order_placed",
        "reentry": Campaign.Reentry.ALWAYS, "transactional": True,
        "respect_quiet_hours": False,
        "description": "The moment an order is placed: the customer's name and the restaurant "
                       "of their last order.",
    }, [{"key": "update", "kind": Step.Kind.SEND, "template": _template("Order update")}]


def _conversion() -> tuple[dict, list[dict]]:
    ends = timezone.now() + timedelta(days=2)
    return {
        "name": "Limited-time offer", "kind": Campaign.Kind.BROADCAST, "stage": "conversion",
        "segment": _segment("engagement"), "message_expires_at": ends,
        "holdout_percent": 10, "goal_event_name": "purchase",
        "goal_revenue_property": "total", "goal_window": timedelta(days=2),
        "description": "20% off for 48 hours to engaged customers who accept offers; never "
                       "sent after the offer ends. A 10% holdout measures the lift.",
    }, [{"key": "offer", "kind": Step.Kind.SEND, "template": _template("Limited-time offer")}]


def _retention() -> tuple[dict, list[dict]]:
    return {
        "name": "We miss you", "kind": Campaign.Kind.JOURNEY, "stage": "retention",
        "trigger": Campaign.Trigger.STAGE, "trigger_stage": "retention",
        "reentry": Campaign.Reentry.COOLDOWN, "reentry_cooldown": timedelta(days=30),
        "goal_event_name": "app_open", "goal_window": timedelta(days=14),
        "description": "Customers who went quiet get new places in their city at 18:00 their "
                       "time, and a second nudge a week later if they have not come back.",
    }, [
        {"key": "evening", "kind": Step.Kind.WAIT_UNTIL, "local_time": time(18, 0),
         "name": "Next 18:00 local"},
        {"key": "content", "kind": Step.Kind.SEND, "template": _template("We saved you a seat")},
        {"key": "back", "kind": Step.Kind.WAIT_EVENT, "event_name": "app_open",
         "duration": timedelta(days=7), "name": "Came back within a week?",
         "next": "done", "else": "nudge"},
        {"key": "nudge", "kind": Step.Kind.SEND, "template": _template("Destination guide"),
         "next": "done"},
        {"key": "done", "kind": Step.Kind.EXIT},
    ]


def _retention_weekly() -> tuple[dict, list[dict]]:
    return {
        "name": "Friday picks for quiet customers", "kind": Campaign.Kind.RECURRING,
        "stage": "retention", "segment": _segment("retention"),
        "crontab": "0 17 * * 5", "crontab_time_zone": "Europe/Lisbon",
        "goal_event_name": "app_open", "goal_window": timedelta(days=3),
        "holdout_percent": 10,
        "description": "Regular content against churn: every Friday, what is new in their city "
                       "for customers at risk of churn. A 10% holdout measures the lift.",
    }, [{"key": "picks", "kind": Step.Kind.SEND, "template": _template("We saved you a seat")}]


def _advocacy() -> tuple[dict, list[dict]]:
    return {
        "name": "Referral ask after a great rating", "kind": Campaign.Kind.JOURNEY,
        "stage": "advocacy", "trigger": Campaign.Trigger.EVENT, "trigger_event_name": "rating",
        "trigger_event_filter": {"score": 5}, "reentry": Campaign.Reentry.COOLDOWN,
        "reentry_cooldown": timedelta(days=60), "goal_event_name": "referral_signup",
        "goal_window": timedelta(days=14), "holdout_percent": 5,
        "description": "An hour after a five-star rating, ask for a referral with the "
                       "customer's own code; a friend signing up with it is the goal.",
    }, [
        {"key": "pause", "kind": Step.Kind.WAIT, "duration": timedelta(hours=1)},
        {"key": "ask", "kind": Step.Kind.SEND, "template": _template("Referral ask")},
    ]


DEMO_CAMPAIGNS = [_awareness, _engagement, _conversion, _retention_weekly, _retention,
                  _advocacy]


def campaigns_seed(*, launch: bool | None = None) -> list[Campaign]:
    """Create the demo campaigns not there yet; launch the new recurring and journey ones
    (``launch`` None: as the DEMO_JOURNEYS setting says)."""
    if launch is None:
        launch = settings.DEMO_JOURNEYS
    created = []
    for build in DEMO_CAMPAIGNS:
        fields, steps = build()
        if Campaign.objects.filter(name=fields["name"]).exists():
            continue
        with transaction.atomic():
            campaign = Campaign.objects.create(**fields)
            _steps(campaign, steps)
            if launch and campaign.kind != Campaign.Kind.BROADCAST:
                campaign_launch(campaign=campaign)
        created.append(campaign)
    return created
