from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.models import Customer, StageRule, StageTransition
from audiences.services import EventInput, customer_upsert, event_track, events_track
from audiences.signals import stage_changed
from audiences.stages import stage_rules_apply_inactivity

pytestmark = pytest.mark.django_db


@pytest.fixture
def stage_changes():
    received = []

    def receiver(sender, **kwargs):
        received.append((kwargs["customer_id"], kwargs["from_stage"], kwargs["to_stage"]))

    stage_changed.connect(receiver)
    yield received
    stage_changed.disconnect(receiver)


def test_first_app_open_moves_awareness_to_engagement(django_capture_on_commit_callbacks,
                                                      stage_changes):
    customer, _ = customer_upsert(external_id="c1")
    with django_capture_on_commit_callbacks(execute=True):
        result = event_track(customer=customer, name="app_open")

    customer.refresh_from_db()
    assert customer.stage == "engagement"
    transition = StageTransition.objects.get(customer=customer)
    assert (transition.from_stage, transition.to_stage) == ("awareness", "engagement")
    assert transition.event_id == result.event.pk
    assert "app_open" in transition.cause
    assert stage_changes == [(customer.pk, "awareness", "engagement")]


def test_a_later_app_open_is_not_a_first_one():
    customer, _ = customer_upsert(external_id="c1")
    event_track(customer=customer, name="app_open")
    Customer.objects.filter(pk=customer.pk).update(stage="awareness")

    event_track(customer=customer, name="app_open")

    customer.refresh_from_db()
    assert customer.stage == "awareness"
    assert StageTransition.objects.filter(customer=customer).count() == 1


def test_purchase_converts_and_referral_makes_an_advocate():
    customer, _ = customer_upsert(external_id="c1")
    event_track(customer=customer, name="purchase", properties={"total": 30})
    event_track(customer=customer, name="referral_sent")

    path = list(
        StageTransition.objects.filter(customer=customer).order_by("pk")
        .values_list("from_stage", "to_stage")
    )
    assert path == [("awareness", "conversion"), ("conversion", "advocacy")]


def test_rule_does_not_move_customers_outside_its_from_stages():
    customer, _ = customer_upsert(external_id="c1")
    Customer.objects.filter(pk=customer.pk).update(stage="advocacy")

    event_track(customer=customer, name="purchase")

    customer.refresh_from_db()
    assert customer.stage == "advocacy"
    assert not StageTransition.objects.exists()


def test_a_batch_moves_many_customers_with_one_transition_each():
    now = timezone.now()
    events_track(items=[
        EventInput(name="purchase", occurred_at=now, customer_external_id=f"c{i}")
        for i in range(50)
    ])

    assert Customer.objects.filter(stage="conversion").count() == 50
    assert StageTransition.objects.filter(to_stage="conversion").count() == 50


def test_inactive_rules_are_ignored():
    StageRule.objects.update(is_active=False)
    customer, _ = customer_upsert(external_id="c1")

    event_track(customer=customer, name="purchase")

    customer.refresh_from_db()
    assert customer.stage == "awareness"


def test_inactivity_moves_quiet_customers_to_retention(django_capture_on_commit_callbacks,
                                                       stage_changes):
    now = timezone.now()
    quiet, _ = customer_upsert(external_id="quiet")
    active, _ = customer_upsert(external_id="active")
    never_engaged, _ = customer_upsert(external_id="new")
    Customer.objects.filter(pk__in=[quiet.pk, active.pk]).update(stage="conversion")
    Customer.objects.filter(pk=quiet.pk).update(last_seen_at=now - timedelta(days=31))
    Customer.objects.filter(pk=active.pk).update(last_seen_at=now - timedelta(days=2))
    Customer.objects.filter(pk=never_engaged.pk).update(created_at=now - timedelta(days=90))

    with django_capture_on_commit_callbacks(execute=True):
        moved = stage_rules_apply_inactivity(now=now)

    assert moved == 1
    assert Customer.objects.get(pk=quiet.pk).stage == "retention"
    assert Customer.objects.get(pk=active.pk).stage == "conversion"
    assert Customer.objects.get(pk=never_engaged.pk).stage == "awareness"  # not in from_stages
    transition = StageTransition.objects.get(customer=quiet)
    assert "30 days" in transition.cause
    assert stage_changes == [(quiet.pk, "conversion", "retention")]


def test_inactivity_sweep_is_idempotent():
    now = timezone.now()
    customer, _ = customer_upsert(external_id="quiet")
    Customer.objects.filter(pk=customer.pk).update(
        stage="engagement", last_seen_at=now - timedelta(days=40)
    )

    assert stage_rules_apply_inactivity(now=now) == 1
    assert stage_rules_apply_inactivity(now=now) == 0
    assert StageTransition.objects.count() == 1


def test_inactivity_sweep_works_in_chunks(monkeypatch):
    import audiences.stages

    monkeypatch.setattr(audiences.stages, "INACTIVITY_CHUNK", 7)
    old = timezone.now() - timedelta(days=60)
    Customer.objects.bulk_create([
        Customer(external_id=f"c{i}", bucket=i, stage="engagement", last_seen_at=old,
                 referral_code=f"R{i:09d}")
        for i in range(30)
    ])

    assert stage_rules_apply_inactivity() == 30
    assert Customer.objects.filter(stage="retention").count() == 30
