"""Sending one batch: claim it, render each delivery, call the provider, record every result.

A batch is claimed with one conditional UPDATE, so two workers never send the same rows; the
claim is a lease that the sweeper takes back if the worker dies. Results are written per chunk
of SEND_CHUNK messages, so a worker killed mid-batch leaves at most one chunk whose outcome is
unknown; those rows are sent again by the next claim (at-least-once for that chunk only)."""

import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q, prefetch_related_objects
from django.utils import timezone

from audiences.models import TopicOptOut
from notifications.models import Delivery, DeliveryBatch, Send
from notifications.providers import get_backend
from notifications.providers.base import (
    Outcome,
    ProviderAuthError,
    ProviderConfigError,
    PushMessage,
    PushResult,
)
from notifications.rendering import (
    RenderError,
    last_event_names,
    last_events_for,
    message_context,
    pick_translation,
    render,
)
from notifications.services import devices_deactivate, send_finish_if_complete
from notifications.tracking import tracking_token

SEND_CHUNK = 100  # messages per provider call and per results write: the crash-ambiguity bound
MAX_ATTEMPTS = 5  # temporary provider errors before a delivery fails for good
RETRY_BASE_SECONDS = 5  # exponential backoff: 5, 10, 20, 40 s ...
RETRY_MAX_SECONDS = 15 * 60


def batch_claim(batch_id: int, now: datetime) -> str | None:
    token = uuid.uuid4().hex
    claimed = DeliveryBatch.objects.filter(
        Q(not_before__isnull=True) | Q(not_before__lte=now), pk=batch_id,
        status=DeliveryBatch.Status.QUEUED,
    ).update(status=DeliveryBatch.Status.SENDING, claimed_at=now, claim_token=token,
             attempts=F("attempts") + 1)
    return token if claimed else None


def batch_send(*, batch_id: int) -> None:
    now = timezone.now()
    token = batch_claim(batch_id, now)
    if token is None:
        return  # another worker has it, it is done, or it is not due yet
    batch = DeliveryBatch.objects.select_related("send__template__topic").get(pk=batch_id)
    send = batch.send
    if send.status in (Send.Status.PAUSED, Send.Status.CANCELLED):
        _batch_release(batch, token, now=None)
        return
    rows = _rows_to_send(batch, now)
    messages = _prepare(send, rows, now)
    try:
        retry_after = _deliver(batch, token, messages)
    except ProviderAuthError as error:
        _send_pause(send, batch, token, f"the {batch.kind} provider refused our credentials "
                                        f"({error}). Fix the credentials")
        return
    except ProviderConfigError as error:
        _send_pause(send, batch, token, f"{error} Configure it (see Push providers in the "
                                        "README)")
        return
    _batch_finish(batch, token, retry_after)


def _rows_to_send(batch: DeliveryBatch, now: datetime) -> list[Delivery]:
    """Queued rows, plus rows left 'sending' by a worker that died (their outcome is unknown)."""
    return list(
        Delivery.objects.filter(
            send_id=batch.send_id, batch_no=batch.number,
            status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING],
        ).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .select_related("customer", "device__apns", "device__fcm", "device__webpush")
        .only(*_ROW_FIELDS).order_by("pk")
    )


# What sending reads of a row and its customer and device: turning the other columns (a dozen
# timestamps among them) into Python objects cost more than rendering the message.
_ROW_FIELDS = (
    "status", "reason", "error", "application_id", "customer_id", "device_id",
    *(f"customer__{name}" for name in (
        "external_id", "first_name", "last_name", "locale", "time_zone", "stage",
        "referral_code", "attributes", "push_opt_out")),
    *(f"device__{name}" for name in (
        "kind", "environment", "permission", "is_active", "apns__registration_id",
        "fcm__registration_id", "webpush__registration_id", "webpush__p256dh", "webpush__auth")),
)


def _prepare(send: Send, rows: list[Delivery], now: datetime) -> list[PushMessage]:
    """Skip what must not go out any more, render the rest. Returns the messages to send."""
    if send.is_expired(now):
        _skip(rows, Delivery.Reason.EXPIRED)
        return []
    opted_out = _opted_out_now(send, rows)
    _skip([row for row in rows if row.customer_id in opted_out], Delivery.Reason.OPTED_OUT)
    rows = [row for row in rows if row.customer_id not in opted_out]
    gone = [row for row in rows if row.device is None or not row.device.can_receive]
    _skip(gone, Delivery.Reason.NO_ACTIVE_DEVICE)
    rows = [row for row in rows if row.device is not None and row.device.can_receive]
    template = send.template
    prefetch_related_objects([template], "translations")  # one query, not one per message
    trigger = send.trigger_event.properties if send.trigger_event_id else {}
    last = last_events_for({row.customer_id for row in rows}, last_event_names(template))
    campaign = {"source": send.source}
    messages, broken = [], []
    for row in rows:
        context = message_context(customer=row.customer, event_properties=trigger,
                                  last_events=last.get(row.customer_id), campaign=campaign)
        try:
            rendered = render(template, context,
                              text=pick_translation(template, row.customer.locale))
        except RenderError as error:
            row.error = str(error)[:500]
            broken.append(row)
            continue
        messages.append(_message(row, rendered, template))
    _skip(broken, Delivery.Reason.RENDER_ERROR)
    return messages


def _opted_out_now(send: Send, rows: list[Delivery]) -> set[int]:
    """Consent may have changed since fan-out (a deferred message waits hours)."""
    ids = {row.customer_id for row in rows}
    out = {row.customer_id for row in rows if row.customer.push_opt_out}
    if send.template.topic_id:
        out |= set(TopicOptOut.objects.filter(topic_id=send.template.topic_id, customer_id__in=ids)
                   .values_list("customer_id", flat=True))
    return out


def _message(row: Delivery, rendered, template) -> PushMessage:
    device = row.device
    provider_row = device.provider_device
    data = {**rendered.data, "delivery_id": str(row.pk), "jh_token": tracking_token(row.pk)}
    return PushMessage(
        delivery_id=row.pk, kind=device.kind, token=provider_row.registration_id,
        title=rendered.title, body=rendered.body, application_id=row.application_id or "default",
        image_url=rendered.image_url, url=rendered.url, data=data, priority=template.priority,
        ttl_seconds=template.ttl_seconds, collapse_key=template.collapse_key,
        environment=device.environment,
        p256dh=getattr(provider_row, "p256dh", None) or "",
        auth=getattr(provider_row, "auth", None) or "",
    )


def _deliver(batch: DeliveryBatch, token: str, messages: list[PushMessage]) -> float | None:
    """Send chunk by chunk, recording results after each. Returns the longest retry delay asked
    for by the provider, or None when nothing needs a retry. Stops if the lease was lost (the
    sweeper thought this worker dead and gave the batch to another)."""
    backend = get_backend()
    retry_after: float | None = None
    for start in range(0, len(messages), SEND_CHUNK):
        if not _lease_renew(batch, token):
            return None
        chunk = messages[start:start + SEND_CHUNK]
        Delivery.objects.filter(pk__in=[m.delivery_id for m in chunk]).update(
            status=Delivery.Status.SENDING, attempts=F("attempts") + 1
        )
        delay = _record(backend.send_batch(chunk))
        if delay is not None:
            retry_after = max(retry_after or 0, delay)
    return retry_after


def _lease_renew(batch: DeliveryBatch, token: str) -> bool:
    return bool(DeliveryBatch.objects.filter(pk=batch.pk, claim_token=token).update(
        claimed_at=timezone.now()
    ))


def _record(results: list[PushResult]) -> float | None:
    now = timezone.now()
    by_outcome: dict[Outcome, list[PushResult]] = {}
    for result in results:
        by_outcome.setdefault(result.outcome, []).append(result)
    with transaction.atomic():
        _mark_sent(by_outcome.get(Outcome.SENT, []), now)
        _fail(by_outcome.get(Outcome.FAILED, []), Delivery.Reason.PROVIDER_REJECTED)
        dead = by_outcome.get(Outcome.DEAD_TOKEN, [])
        _fail(dead, Delivery.Reason.DEAD_TOKEN)
        _deactivate_devices(dead)
        return _schedule_retries(by_outcome.get(Outcome.RETRY, []))


def _mark_sent(results: list[PushResult], now) -> None:
    """One UPDATE for the whole chunk (Django's bulk_update builds an expression per row and
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
            [Delivery.Status.SENT, now, *params, *(r.delivery_id for r in results)],
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
    devices_deactivate(reasons={device_id: reasons[pk] for pk, device_id in devices if device_id})


def _schedule_retries(retries: list[PushResult]) -> float | None:
    if not retries:
        return None
    ids = [r.delivery_id for r in retries]
    exhausted = Delivery.objects.filter(pk__in=ids, attempts__gte=MAX_ATTEMPTS)
    exhausted.update(status=Delivery.Status.FAILED, reason=Delivery.Reason.RETRIES_EXHAUSTED,
                     error="temporary provider errors on every attempt")
    Delivery.objects.filter(pk__in=ids, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED
    )
    return max(r.retry_after or 0 for r in retries)


def _skip(rows: list[Delivery], reason: str) -> None:
    for row in rows:
        row.status, row.reason = Delivery.Status.SKIPPED, reason
    Delivery.objects.bulk_update(rows, ["status", "reason", "error"])


def _batch_finish(batch: DeliveryBatch, token: str, retry_after: float | None) -> None:
    now = timezone.now()
    remaining = Delivery.objects.filter(
        send_id=batch.send_id, batch_no=batch.number, status=Delivery.Status.QUEUED
    )
    if remaining.exists():
        attempts = DeliveryBatch.objects.get(pk=batch.pk).attempts
        backoff = min(RETRY_BASE_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS)
        delay = max(backoff, retry_after or 0)
        _batch_release(batch, token, now=now + timedelta(seconds=delay))
        return
    finished = DeliveryBatch.objects.filter(pk=batch.pk, claim_token=token).update(
        status=DeliveryBatch.Status.DONE, finished_at=now
    )
    if finished:
        send_finish_if_complete(send_id=batch.send_id)


def _batch_release(batch: DeliveryBatch, token: str, *, now: datetime | None) -> None:
    """Give the batch back to the queue (paused send, or retries due at ``now``)."""
    DeliveryBatch.objects.filter(pk=batch.pk, claim_token=token).update(
        status=DeliveryBatch.Status.QUEUED, claim_token="", enqueued_at=None, not_before=now
    )


def _send_pause(send: Send, batch: DeliveryBatch, token: str, problem: str) -> None:
    """Stop the whole send rather than fail its audience device by device: a credentials or
    configuration problem concerns every message of that provider."""
    with transaction.atomic():
        Delivery.objects.filter(
            send_id=send.pk, batch_no=batch.number, status=Delivery.Status.SENDING
        ).update(status=Delivery.Status.QUEUED)
        Send.objects.filter(pk=send.pk).exclude(status=Send.Status.CANCELLED).update(
            status=Send.Status.PAUSED,
            error=f"Paused: {problem}, then resume the send.",
        )
        _batch_release(batch, token, now=None)
