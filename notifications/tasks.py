"""Thin Celery wrappers: ids in, one service call. notifications.services imports this module
to enqueue, so each task imports its service in its body (the one circle the layers accept)."""

from celery import shared_task
from django.conf import settings

from notifications.sending.batches import BatchInterrupted

# A batch task tries again this often while the database is away (a restart, a failover), and
# this many times in all: 10 minutes; after that the sweeper takes the batch back.
DATABASE_RETRY_SECONDS = 3
BATCH_TASK_RETRIES = 200


@shared_task(acks_late=True)
def send_fan_out(send_id: int) -> None:
    from notifications.services import send_fan_out

    send_fan_out(send_id=send_id)


@shared_task(bind=True, acks_late=True, max_retries=BATCH_TASK_RETRIES)
def delivery_batch_send(self, batch_id: int, fence: int | None = None) -> None:
    """Send one batch. When another live claim holds it (the broker delivered this task again
    while its first run goes on, or that run's worker died and its lease has yet to run out),
    look again when that lease would end: whichever happens first, the batch is done or this
    task takes it over."""
    from notifications.services import delivery_batch_send

    try:
        held_for = delivery_batch_send(batch_id=batch_id, fence=fence)
    except BatchInterrupted as interrupted:
        raise self.retry(args=(batch_id, interrupted.fence), countdown=DATABASE_RETRY_SECONDS,
                         priority=settings.DELIVERY_PRIORITY_RESENT) from None
    if held_for is not None:
        raise self.retry(args=(batch_id, None), countdown=held_for + 1,
                         priority=settings.DELIVERY_PRIORITY_RESENT)


@shared_task(acks_late=True)
def deliveries_sweep() -> dict:
    from notifications.services import deliveries_sweep

    return deliveries_sweep()


@shared_task(bind=True, acks_late=True)
def send_expire(self, send_id: int) -> None:
    """Run at the send's expiry (eta). Run early (the expiry moved, or the broker delivered it
    ahead), it looks again then; a task run eagerly (no broker) cannot wait, and leaves it to
    the minute sweep."""
    from notifications.services import send_expire

    look_again_at = send_expire(send_id=send_id)
    if look_again_at is not None and not self.request.is_eager:
        self.apply_async((send_id,), eta=look_again_at)
