"""The claim on a delivery batch: a lease with a fencing number.

A worker claims a batch with one conditional UPDATE that raises the batch's ``fence``; the claim
is its lease for DELIVERY_BATCH_LEASE_SECONDS, renewed by every write it makes. Every write of
results goes through ``fenced()``, which renews the lease in the same transaction and refuses
the write (LeaseLost) when the fence moved on: the lease ran out and another worker took the
batch, so this worker's view of the batch is stale. On PostgreSQL the renewing UPDATE holds the
batch row until the write commits, so a takeover waits for it and then sees a fresh lease; a
write and a takeover can never interleave."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.models import DeliveryBatch, Send


class LeaseLost(Exception):
    """The batch was given to another claim: stop sending it and write nothing more."""


class BatchInterrupted(Exception):
    """The database went away in the middle of a batch (a restart, a failover, a terminated
    connection). The task tries again with ``fence``, which lets it take its own claim back
    at once instead of waiting for the lease to run out."""

    def __init__(self, batch_id: int, fence: int | None):
        super().__init__(f"batch {batch_id} interrupted by a database error")
        self.fence = fence


@dataclass(frozen=True)
class Claim:
    batch: DeliveryBatch
    fence: int


def lease() -> timedelta:
    return timedelta(seconds=settings.DELIVERY_BATCH_LEASE_SECONDS)


def batch_claim(batch_id: int, *, resume_fence: int | None = None) -> Claim | None:
    """Claim a batch that is due, or whose holder stopped renewing its lease (it died), or that
    ``resume_fence`` held (the same task, retried after losing its database connection)."""
    now = timezone.now()
    claimable = (
        Q(status=DeliveryBatch.Status.QUEUED)
        & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    ) | Q(status=DeliveryBatch.Status.SENDING, claimed_at__lt=now - lease())
    if resume_fence is not None:
        claimable |= Q(status=DeliveryBatch.Status.SENDING, fence=resume_fence)
    with transaction.atomic():
        claimed = DeliveryBatch.objects.filter(claimable, pk=batch_id).update(
            status=DeliveryBatch.Status.SENDING, claimed_at=now, fence=F("fence") + 1,
            attempts=F("attempts") + 1,
        )
        if not claimed:
            return None
        # Read in the claim's transaction: the UPDATE holds the row, so this is our fence.
        batch = DeliveryBatch.objects.select_related("send__template__topic").get(pk=batch_id)
    return Claim(batch=batch, fence=batch.fence)


def batch_held_for(batch_id: int) -> float | None:
    """Seconds until another claim's lease on this batch runs out, or None when no live claim
    holds it (it is done, waiting for its time, or gone)."""
    claimed_at = (DeliveryBatch.objects.filter(pk=batch_id, status=DeliveryBatch.Status.SENDING)
                  .values_list("claimed_at", flat=True).first())
    if claimed_at is None:
        return None
    return max(0.0, (claimed_at + lease() - timezone.now()).total_seconds())


@contextmanager
def fenced(claim: Claim) -> Iterator[None]:
    """One transaction that writes for ``claim`` only while it still holds the batch."""
    with transaction.atomic():
        renewed = DeliveryBatch.objects.filter(
            pk=claim.batch.pk, fence=claim.fence, status=DeliveryBatch.Status.SENDING
        ).update(claimed_at=timezone.now())
        if not renewed:
            raise LeaseLost(f"batch {claim.batch.pk} is no longer held by fence {claim.fence}")
        yield


def batch_release(claim: Claim, *, not_before: datetime | None) -> None:
    """Give the batch back to the queue, due at ``not_before`` (now when None). The dispatcher
    enqueues it again when it is due."""
    with fenced(claim):
        DeliveryBatch.objects.filter(pk=claim.batch.pk).update(
            status=DeliveryBatch.Status.QUEUED, enqueued_at=None, not_before=not_before,
            fence=F("fence") + 1,
        )


def batch_finish(claim: Claim) -> None:
    with fenced(claim):
        DeliveryBatch.objects.filter(pk=claim.batch.pk).update(
            status=DeliveryBatch.Status.DONE, finished_at=timezone.now()
        )
    send_finish_if_complete(send_id=claim.batch.send_id)


def batches_release_expired() -> int:
    """Batches whose holder stopped renewing its lease go back to the queue, due now. Raising
    the fence as well refuses anything their old holder still tries to write."""
    return DeliveryBatch.objects.filter(
        status=DeliveryBatch.Status.SENDING, claimed_at__lt=timezone.now() - lease()
    ).update(status=DeliveryBatch.Status.QUEUED, enqueued_at=None, fence=F("fence") + 1)


def send_finish_if_complete(*, send_id: int) -> None:
    open_batches = DeliveryBatch.objects.filter(send_id=send_id).exclude(
        status=DeliveryBatch.Status.DONE
    )
    if not open_batches.exists():
        Send.objects.filter(pk=send_id, status=Send.Status.SENDING).update(
            status=Send.Status.DONE, finished_at=timezone.now()
        )
