"""Writing what became of each message, only while the batch's claim holds (batches.fenced).

Results are written a chunk at a time (sooner while an answer is slow: batch_send), so a worker
killed mid-chunk leaves without a recorded outcome at most the messages of that chunk; those
rows stay 'sending' and the next claim sends them again."""

from django.db import connection
from django.db.models import F
from django.utils import timezone

from notifications.deactivation import devices_deactivate
from notifications.models import Delivery
from notifications.providers.base import Outcome, PushResult
from notifications.sending.batches import Claim, fenced

MAX_ATTEMPTS = 5  # temporary errors of one message (not of the provider) before it fails for good


def results_record(claim: Claim, results: list[PushResult]) -> None:
    """Sent, failed and dead-token results of one slice (retries are settled per chunk)."""
    by_outcome: dict[Outcome, list[PushResult]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    with fenced(claim):
        _mark_sent(by_outcome.get(Outcome.SENT, []))
        _fail(by_outcome.get(Outcome.FAILED, []), Delivery.Reason.PROVIDER_REJECTED)
        dead = by_outcome.get(Outcome.DEAD_TOKEN, [])
        _fail(dead, Delivery.Reason.DEAD_TOKEN)
        _deactivate_devices(dead)


def retries_schedule(claim: Claim, retries: list[PushResult]) -> float | None:
    """Messages that met a temporary error of their own: one attempt spent, back to the queue
    (or failed for good after MAX_ATTEMPTS). Returns the longest Retry-After asked for."""
    if not retries:
        return None
    ids = [r.delivery_id for r in retries]
    with fenced(claim):
        Delivery.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
        Delivery.objects.filter(pk__in=ids, attempts__gte=MAX_ATTEMPTS).update(
            status=Delivery.Status.FAILED, reason=Delivery.Reason.RETRIES_EXHAUSTED,
            error="temporary provider errors on every attempt",
        )
        Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.QUEUED
        )
    return max(r.retry_after or 0 for r in retries)


def rows_requeue(claim: Claim, delivery_ids: list[int]) -> None:
    """Back to the queue without spending an attempt: the provider, not the message, failed."""
    with fenced(claim):
        Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING).update(
            status=Delivery.Status.QUEUED
        )


def rows_skip(claim: Claim, rows: list, reason: str) -> None:
    """Skip rows (with ``pk`` and ``error``, as sending.rows reads them) for ``reason``."""
    if not rows:
        return
    skipped = [Delivery(pk=row.pk, status=Delivery.Status.SKIPPED, reason=reason, error=row.error)
               for row in rows]
    with fenced(claim):
        Delivery.objects.bulk_update(skipped, ["status", "reason", "error"])


def _mark_sent(results: list[PushResult]) -> None:
    """One UPDATE for the whole slice (Django's bulk_update builds an expression per row and
    field, which costs more than the provider call). On PostgreSQL the ids and message ids go
    as two array parameters, so the statement's text is the same for every slice."""
    if not results:
        return
    table = connection.ops.quote_name(Delivery._meta.db_table)
    ids = [r.delivery_id for r in results]
    message_ids = [r.provider_message_id[:200] for r in results]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} SET status = %s, sent_at = %s, reason = '', error = '', "
                f"provider_message_id = sent.message_id "
                f"FROM unnest(%s::bigint[], %s::text[]) AS sent(id, message_id) "
                f"WHERE {table}.id = sent.id",
                [Delivery.Status.SENT, timezone.now(), ids, message_ids],
            )
            return
        cases = " ".join("WHEN %s THEN %s" for _ in results)
        cursor.execute(
            f"UPDATE {table} SET status = %s, sent_at = %s, reason = '', error = '', "
            f"provider_message_id = CASE id {cases} ELSE provider_message_id END "
            f"WHERE id IN ({', '.join('%s' for _ in results)})",
            [Delivery.Status.SENT, timezone.now(),
             *(value for pair in zip(ids, message_ids, strict=True) for value in pair), *ids],
        )


def _fail(results: list[PushResult], reason: str) -> None:
    failed = [
        Delivery(pk=r.delivery_id, status=Delivery.Status.FAILED, reason=reason,
                 error=f"{r.error_code}: {r.error}"[:500])
        for r in results
    ]
    Delivery.objects.bulk_update(failed, ["status", "reason", "error"])


def _deactivate_devices(dead: list[PushResult]) -> None:
    if not dead:
        return
    reasons = {r.delivery_id: (r.error_code or "dead token")[:100] for r in dead}
    devices = Delivery.objects.filter(pk__in=reasons).values_list("pk", "device_id")
    devices_deactivate({device_id: reasons[pk] for pk, device_id in devices if device_id})
