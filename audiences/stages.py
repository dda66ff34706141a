"""Lifecycle stage rules: event rules run at ingestion, inactivity rules from a beat task.

Each rule moves a set of customers in one UPDATE and records one transition row each, then
fires ``stage_changed`` per customer after the rows exist."""

from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from audiences.models import Customer, Event, Stage, StageRule, StageTransition
from audiences.signals import stage_changed

INACTIVITY_CHUNK = 1000  # customers moved per transaction by the inactivity sweep
IMPORT_CHUNK = 10_000  # customers one rule moves per UPDATE over imported history


def _move(*, customer_ids: Iterable[int], rule: StageRule, cause: str,
          events_by_customer: dict[int, Event] | None = None,
          announce: bool = True) -> list[StageTransition]:
    """Move the given customers (still in one of the rule's source stages) to the rule's stage.
    ``announce=False`` records the moves without telling the apps above (no journeys start)."""
    now = timezone.now()
    movable = list(
        Customer.objects.select_for_update()
        .filter(pk__in=list(customer_ids), stage__in=rule.source_stages())
        .values_list("pk", "stage")
    )
    if not movable:
        return []
    Customer.objects.filter(pk__in=[pk for pk, _ in movable]).update(
        stage=rule.to_stage, stage_changed_at=now
    )
    events_by_customer = events_by_customer or {}
    transitions = StageTransition.objects.bulk_create(
        StageTransition(
            customer_id=pk, from_stage=stage, to_stage=rule.to_stage, at=now, cause=cause,
            rule=rule, event=events_by_customer.get(pk),
        )
        for pk, stage in movable
    )
    if announce:
        transaction.on_commit(lambda: _announce(transitions))
    return transitions


def _announce(transitions: list[StageTransition]) -> None:
    for transition in transitions:
        stage_changed.send(
            sender=Customer, customer_id=transition.customer_id,
            from_stage=transition.from_stage, to_stage=transition.to_stage,
            cause=transition.cause, transition_id=transition.pk,
        )


def stage_rules_apply_to_events(*, events: list[Event]) -> list[StageTransition]:
    """Run the active event rules over freshly stored events (one query per rule, not per event).

    Must run inside the transaction that stored the events."""
    if not events:
        return []
    rules = [r for r in StageRule.objects.filter(is_active=True, kind=StageRule.Kind.EVENT)]
    transitions: list[StageTransition] = []
    new_ids = [event.pk for event in events]
    for rule in rules:
        matching = [event for event in events if event.name == rule.event_name]
        if not matching:
            continue
        first_by_customer: dict[int, Event] = {}
        for event in sorted(matching, key=lambda e: e.occurred_at):
            first_by_customer.setdefault(event.customer_id, event)
        customer_ids = set(first_by_customer)
        if rule.first_time_only:
            seen_before = Event.objects.filter(
                customer_id__in=customer_ids, name=rule.event_name
            ).exclude(pk__in=new_ids)
            customer_ids -= set(seen_before.values_list("customer_id", flat=True).distinct())
        cause = f"{rule.name}: {rule.event_name} event"
        transitions += _move(
            customer_ids=customer_ids, rule=rule, cause=cause, events_by_customer=first_by_customer
        )
    return transitions


def stage_rule_apply_quietly(*, rule: StageRule, customer_ids: list[int], cause: str) -> int:
    """Run one event rule over customers whose imported history has its event: they move as
    the rule would have moved them, recorded as transitions but not announced, so imported
    history starts no journeys. Returns how many moved."""
    moved = 0
    for start in range(0, len(customer_ids), IMPORT_CHUNK):
        chunk = customer_ids[start:start + IMPORT_CHUNK]
        moved += len(_move(customer_ids=chunk, rule=rule, cause=cause, announce=False))
    return moved


def stage_rules_plan_for_merge(*, anonymous: Customer, known: Customer
                               ) -> list[tuple[StageRule, Event]]:
    """What the event rules make of the anonymous customer's events once they are the known
    customer's: per active rule, the anonymous customer's first event it reacts to, unless
    the rule counts only a first time and the known customer already had one. Call before
    the events move; one indexed query or two per rule."""
    plan = []
    for rule in StageRule.objects.filter(is_active=True, kind=StageRule.Kind.EVENT):
        first = (Event.objects.filter(customer=anonymous, name=rule.event_name)
                 .order_by("occurred_at", "pk").first())
        if first is None:
            continue
        if rule.first_time_only and Event.objects.filter(
                customer=known, name=rule.event_name).exists():
            continue
        plan.append((rule, first))
    return plan


def stage_rules_apply_plan(*, customer: Customer, plan: list[tuple[StageRule, Event]],
                           ) -> list[StageTransition]:
    """Run a merge's plan on the known customer, rule by rule in priority order, as if the
    events had been tracked for them: each rule moves them only out of its source stages."""
    transitions = []
    for rule, event in plan:
        cause = f"{rule.name}: {rule.event_name} event (merged from an anonymous customer)"
        transitions += _move(customer_ids=[customer.pk], rule=rule, cause=cause,
                             events_by_customer={customer.pk: event})
    return transitions


def stage_rules_apply_inactivity(*, now=None) -> int:
    """Move customers with no event for each inactivity rule's days. Returns how many moved.

    Works in chunks of INACTIVITY_CHUNK rows claimed with SKIP LOCKED, so memory stays bounded
    and two beats running at once do not move the same customer twice."""
    now = now or timezone.now()
    moved = 0
    for rule in StageRule.objects.filter(is_active=True, kind=StageRule.Kind.INACTIVITY):
        cutoff = now - timedelta(days=rule.inactivity_days)
        cause = f"{rule.name}: no event for {rule.inactivity_days} days"
        due = Customer.objects.annotate(seen=Coalesce("last_seen_at", "created_at")).filter(
            stage__in=rule.source_stages(), seen__lt=cutoff
        )
        while True:
            with transaction.atomic():
                chunk = list(
                    due.select_for_update(skip_locked=True).order_by("pk")
                    .values_list("pk", flat=True)[:INACTIVITY_CHUNK]
                )
                if not chunk:
                    break
                moved += len(_move(customer_ids=chunk, rule=rule, cause=cause))
    return moved


@transaction.atomic
def customer_stage_set(*, customer: Customer, stage: str, cause: str) -> StageTransition | None:
    """Move one customer to ``stage`` by hand (the admin, an import), recording the transition
    and announcing it like a rule would. Returns None when the customer is already there."""
    if stage not in Stage.values:
        raise ValidationError({"stage": f"Unknown stage {stage!r}."})
    current = Customer.objects.select_for_update().values_list("stage", flat=True).get(
        pk=customer.pk
    )
    customer.stage = current
    if current == stage:
        return None
    now = timezone.now()
    Customer.objects.filter(pk=customer.pk).update(stage=stage, stage_changed_at=now)
    transition = StageTransition.objects.create(
        customer=customer, from_stage=current, to_stage=stage, at=now, cause=cause
    )
    transaction.on_commit(lambda: _announce([transition]))
    customer.stage, customer.stage_changed_at = stage, now
    return transition
