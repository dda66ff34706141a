"""The claim on a batch: a lease that a dead worker's next task takes over, and a fencing
number that refuses every write of a worker that lost its claim."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from audiences.services import customer_upsert
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Template
from notifications.providers import locmem
from notifications.providers.base import Outcome, PushResult
from notifications.sending.batch_send import SEND_CHUNK, batch_send
from notifications.sending.batches import LeaseLost, batch_claim
from notifications.sending.recording import results_record
from notifications.services import device_register, send_create, send_fan_out

pytestmark = pytest.mark.django_db

TAKEN_OVER = []  # the claims the "other worker" made from inside the provider call


class SlowToAnswerBackend(locmem.LocmemBackend):
    """A provider whose first call lasts longer than the lease: meanwhile another worker takes
    the batch over (as the broker's second delivery of the task would, after the lease)."""

    def send_batch(self, messages):
        results = super().send_batch(messages)
        if not TAKEN_OVER:
            batch_id = DeliveryBatch.objects.get(status="sending").pk
            DeliveryBatch.objects.filter(pk=batch_id).update(
                claimed_at=timezone.now() - timedelta(hours=1))
            TAKEN_OVER.append(batch_claim(batch_id))
        return results


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    TAKEN_OVER.clear()
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
    yield locmem.outbox
    locmem.outbox.clear()


def a_batch(size=1, collapse_key=""):
    template = Template.objects.create(name="Hello", title="Hello", body="There",
                                       collapse_key=collapse_key)
    people = []
    for i in range(size):
        person, _ = customer_upsert(external_id=f"c{i}")
        device_register(customer=person, kind="fcm", token=f"tok-{i}", platform="android")
        people.append(person.pk)
    send = send_create(template=template, customer_ids=people)
    send_fan_out(send_id=send.pk)
    return DeliveryBatch.objects.get(send=send)


def test_a_batch_whose_worker_stopped_renewing_is_taken_over_by_the_next_task(outbox):
    batch = a_batch()
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        status="sending", fence=3, claimed_at=timezone.now() - timedelta(minutes=5))

    assert batch_send(batch_id=batch.pk) is None  # no sweeper needed

    assert len(outbox) == 1
    assert DeliveryBatch.objects.get(pk=batch.pk).status == "done"


def test_a_live_claim_is_left_alone_and_the_task_learns_when_its_lease_ends(outbox, settings):
    batch = a_batch()
    DeliveryBatch.objects.filter(pk=batch.pk).update(
        status="sending", fence=3, claimed_at=timezone.now() - timedelta(seconds=10))

    held_for = batch_send(batch_id=batch.pk)

    assert outbox == []
    assert settings.DELIVERY_BATCH_LEASE_SECONDS - 12 < held_for <= (
        settings.DELIVERY_BATCH_LEASE_SECONDS - 10)


def test_a_task_retried_after_a_database_error_takes_its_own_claim_back(outbox):
    batch = a_batch()
    claim = batch_claim(batch.pk)

    assert batch_claim(batch.pk, resume_fence=claim.fence + 5) is None
    resumed = batch_claim(batch.pk, resume_fence=claim.fence)

    assert resumed.fence == claim.fence + 1
    with pytest.raises(LeaseLost):  # the interrupted run, were it still there, is fenced off
        results_record(claim, [PushResult(1, Outcome.SENT)])


def test_a_stale_worker_records_nothing_and_stops_before_its_next_chunk(outbox, settings):
    settings.PUSH_BACKEND = f"{__name__}.SlowToAnswerBackend"
    batch = a_batch(size=SEND_CHUNK + 50)

    batch_send(batch_id=batch.pk)

    # It sent its first chunk, learnt it had lost the batch when recording, and stopped.
    assert len(outbox) == SEND_CHUNK
    rows = Delivery.objects.filter(send_id=batch.send_id)
    assert not rows.filter(status="sent").exists()
    assert rows.filter(status="sending").count() == SEND_CHUNK
    # The new holder sends everything whose fate it cannot know, and finishes.
    [new_claim] = TAKEN_OVER
    DeliveryBatch.objects.filter(pk=batch.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    batch_send(batch_id=batch.pk)
    assert rows.filter(status="sent").count() == SEND_CHUNK + 50
    assert DeliveryBatch.objects.get(pk=batch.pk).fence == new_claim.fence + 1


def test_every_message_carries_its_deliverys_collapse_identity(outbox):
    batch = a_batch(size=2)

    batch_send(batch_id=batch.pk)

    ids = sorted(Delivery.objects.filter(send_id=batch.send_id).values_list("pk", flat=True))
    assert sorted(m.collapse_key for m in outbox) == [f"jh-{pk}" for pk in ids]


def test_a_templates_own_collapse_key_wins(outbox):
    batch = a_batch(size=2, collapse_key="order-status")

    batch_send(batch_id=batch.pk)

    assert [m.collapse_key for m in outbox] == ["order-status", "order-status"]
