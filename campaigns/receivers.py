"""campaigns listens to audiences: an event or a stage change may enroll, convert or resume
customers. Each receiver only enqueues a task, after commit, and only when some campaign cares:
the ingest path stays as fast as it was for the events no journey uses."""

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from campaigns import tasks
from campaigns.models import Campaign, Step

INTERESTS_CACHE_KEY = "campaigns:interests"
# A campaign launched or edited is noticed within this many seconds; meanwhile each event
# costs a cache read instead of a query.
INTERESTS_TTL_SECONDS = 5


def interests() -> dict[str, set[str]]:
    """Event names and stages some live campaign reacts to (entry, goal or event wait)."""
    cached = cache.get(INTERESTS_CACHE_KEY)
    if cached is not None:
        return cached
    live = Campaign.objects.exclude(status__in=[Campaign.Status.DRAFT, Campaign.Status.ARCHIVED])
    events = set(live.filter(trigger=Campaign.Trigger.EVENT)
                 .values_list("trigger_event_name", flat=True))
    events |= set(live.exclude(goal_event_name="").values_list("goal_event_name", flat=True))
    events |= set(Step.objects.filter(Q(kind=Step.Kind.WAIT_EVENT), campaign__in=live)
                  .values_list("event_name", flat=True))
    stages = set(live.filter(trigger=Campaign.Trigger.STAGE)
                 .values_list("trigger_stage", flat=True))
    found = {"events": events - {""}, "stages": stages - {""}}
    cache.set(INTERESTS_CACHE_KEY, found, INTERESTS_TTL_SECONDS)
    return found


def on_event_tracked(sender, *, event_id: int, name: str, **kwargs) -> None:
    if name in interests()["events"]:
        transaction.on_commit(lambda: tasks.event_process.delay(event_id))


def on_stage_changed(sender, *, customer_id: int, to_stage: str, **kwargs) -> None:
    if to_stage in interests()["stages"]:
        transaction.on_commit(lambda: tasks.stage_process.delay(customer_id, to_stage))
