"""Writing what became of each message, only while the batch's claim holds (batches.fenced).

Results are written as they arrive, a slice at a time, so a worker killed mid-chunk leaves
without a recorded outcome only the requests it had in flight; those rows stay 'sending' and
the next claim sends them again."""

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


def rows_skip(claim: Claim, rows: list[Delivery], reason: str) -> None:
    if not rows:
        return
    for row in rows:
        row.status, row.reason = Delivery.Status.SKIPPED, reason
    with fenced(claim):
        Delivery.objects.bulk_update(rows, ["status", "reason", "error"])


def _mark_sent(results: list[PushResult]) -> None:
    """One UPDATE for the whole slice (Django's bulk_update builds an expression per row and
    field, which costs more than the provider call)."""
    if not results:
        return
    table = connection.ops.quote_name(Delivery._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in results)
    ids = ", ".join("%s" for _ in results)
    params = [value for r in results for value in (r.delivery_id, r.provider_message_id[:200])]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, sent_at = %s, reason = '', error = '', "
            f"provider_message_id = CASE id {cases} ELSE provider_message_id END "
            f"WHERE id IN ({ids})",
            [Delivery.Status.SENT, timezone.now(), *params, *(r.delivery_id for r in results)],
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
