"""Sending one batch: claim it, render each delivery, call the provider, record every result.

A batch is claimed in the database (notifications.sending.batches): a lease renewed by every
write, and a fencing number that every write checks, so a worker that lost its claim is refused
and stops. Messages go out in chunks of SEND_CHUNK; before each, the claim and the provider's
state are checked, and a chunk's results are recorded when its last answer arrives, or every
RECORD_EVERY_SECONDS while one is slow (notifications.sending.recording). A worker killed
mid-chunk therefore leaves without an outcome at most that chunk's messages, and those are sent
again by the next claim. Every message carries a collapse identity that stays
the same across such a resend, so a device shows it once."""

import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max, prefetch_related_objects
from django.utils import timezone

from audiences.models import TopicOptOut
from notifications.models import Delivery, Send
from notifications.payloads import SizeGuard, template_presentation
from notifications.providers import get_backend
from notifications.providers.base import (
    Outcome,
    Presentation,
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
from notifications.sending.batches import (
    BatchInterrupted,
    Claim,
    LeaseLost,
    batch_claim,
    batch_finish,
    batch_held_for,
    batch_release,
    fenced,
    lease,
)
from notifications.sending.caps import chunk_claim_under_caps
from notifications.sending.outage import is_outage, outage_clear, outage_record, outage_retry_at
from notifications.sending.recording import (
    results_record,
    retries_schedule,
    rows_requeue,
    rows_skip,
)
from notifications.sending.rows import SendRow, rows_to_send
from notifications.sending.throttle import throttle_reserve
from notifications.tracking import tracking_token

# Messages marked 'sending' together, with a claim and outage check before each chunk. With
# FCM_CONCURRENCY (100) they are all in flight at once: the most a kill can leave unknown.
SEND_CHUNK = 100
# A chunk's results are written in one transaction when the last arrives; a slow answer holds
# back the others' write at most this long. Each write is a claim check and a commit, which
# cost more per slice than the rows it updates.
RECORD_EVERY_SECONDS = 0.5
RETRY_BASE_SECONDS = 5  # a message's own temporary errors: 5, 10, 20, 40 s ...
RETRY_MAX_SECONDS = 15 * 60
DATABASE_ERRORS = (OperationalError, InterfaceError)  # the connection went away
# Answers already in hand are worth keeping: their write is tried again on a new connection
# this many times, a second apart (a restart takes seconds), before the batch is given up.
RECORD_RETRIES = 10
# A batch renders all its messages before its first write renews the lease. Each render stays
# within its budget (notifications.template_engine), and the batch stops rendering after this
# share of the lease: the rest stay queued for the batch's next pass, so even a batch of
# templates at the render budget (500 x 50 ms) cannot lose its claim.
RENDER_SHARE_OF_LEASE = 1 / 3


@dataclass
class Delivered:
    """How sending a batch's messages ended."""

    retry_after: float | None = None  # the longest wait a provider asked for
    provider_back_at: datetime | None = None  # the provider is down: wait for it until then


def batch_send(*, batch_id: int, fence: int | None = None) -> float | None:
    """Claim and send one batch. Returns the seconds after which to look again when another
    live claim holds it (this may be a copy of its task that the broker delivered again), else
    None. Raises BatchInterrupted when the database connection went away mid-batch."""
    claim = None
    try:
        claim = batch_claim(batch_id, resume_fence=fence)
        if claim is None:
            return batch_held_for(batch_id)
        _send_claimed(claim)
    except LeaseLost:
        return None  # the lease ran out and another claim took over: it sends the rest
    except DATABASE_ERRORS as error:
        raise BatchInterrupted(batch_id, claim.fence if claim else fence) from error
    return None


def _send_claimed(claim: Claim) -> None:
    batch, send = claim.batch, claim.batch.send
    if send.status in (Send.Status.PAUSED, Send.Status.CANCELLED):
        batch_release(claim, not_before=None)
        return
    now = timezone.now()
    rows = rows_to_send(batch, now)
    messages, rendered_all = _prepare(claim, send, rows, now)
    free_at = throttle_reserve(send, len(messages), now)
    if free_at is not None:  # the campaign's (or send's) rate is spent until then
        batch_release(claim, not_before=free_at)
        return
    # Messages that failed on their own before do not count as evidence of an outage: a batch
    # retrying only a few troubled devices must not hold up everyone's messages.
    tried = {row.pk for row in rows if row.attempts}
    customer_of = {row.pk: row.customer_id for row in rows}
    try:
        delivered = _deliver(claim, messages, tried, customer_of)
    except ProviderAuthError as error:
        _send_pause(claim, f"the {batch.kind} provider refused our credentials ({error}). "
                           "Fix the credentials")
        return
    except ProviderConfigError as error:
        _send_pause(claim, f"{error} Configure it (see Push providers in the README)")
        return
    _batch_settle(claim, delivered, rendered_all=rendered_all)


def _prepare(claim: Claim, send: Send, rows: list[SendRow],
             now: datetime) -> tuple[list[PushMessage], bool]:
    """Skip what must not go out any more, render the rest. Returns the messages to send, and
    whether every row was rendered (see _render_rows)."""
    if send.is_expired(now):
        rows_skip(claim, rows, Delivery.Reason.EXPIRED)
        return [], True
    opted_out = _opted_out_now(send, rows)
    rows_skip(claim, [row for row in rows if row.customer_id in opted_out],
              Delivery.Reason.OPTED_OUT)
    rows = [row for row in rows if row.customer_id not in opted_out]
    gone = [row for row in rows if row.device is None or not row.device.can_receive]
    rows_skip(claim, gone, Delivery.Reason.NO_ACTIVE_DEVICE)
    rows = [row for row in rows if row.device is not None and row.device.can_receive]
    messages, broken = _render_rows(send, rows)
    rows_skip(claim, broken, Delivery.Reason.RENDER_ERROR)
    return messages, len(messages) + len(broken) == len(rows)


def _render_rows(send: Send, rows: list[SendRow]) -> tuple[list[PushMessage], list[SendRow]]:
    """(messages, rows whose message did not render, with their error). Stops after a share
    of the lease: the rows not reached stay as they are, and the batch goes back to the queue
    (_batch_settle) to render them on its next pass."""
    template = send.template
    prefetch_related_objects([template], "translations")  # one query, not one per message
    trigger = send.trigger_event.properties if send.trigger_event_id else {}
    last = last_events_for({row.customer_id for row in rows}, last_event_names(template))
    campaign = {"source": send.source}
    presentation = template_presentation(template)
    # A batch holds one provider's messages: one measure of what they all share.
    guard = SizeGuard(rows[0].device.kind, template, presentation) if rows else None
    messages, broken = [], []
    render_until = time.monotonic() + lease().total_seconds() * RENDER_SHARE_OF_LEASE
    for row in rows:
        if (messages or broken) and time.monotonic() > render_until:
            break
        context = message_context(customer=row.customer, event_properties=trigger,
                                  last_events=last.get(row.customer_id), campaign=campaign,
                                  data=send.data)
        try:
            rendered = render(template, context,
                              text=pick_translation(template, row.customer.locale),
                              check_size=False)
        except RenderError as error:
            row.error = str(error)[:500]
            broken.append(row)
            continue
        message = _message(row, rendered, template, send, presentation)
        if problem := guard.problem(message):
            row.error = problem[:500]
            broken.append(row)
            continue
        messages.append(message)
    return messages, broken


def _opted_out_now(send: Send, rows: list[SendRow]) -> set[int]:
    """Consent may have changed since fan-out (a deferred message waits hours)."""
    ids = {row.customer_id for row in rows}
    out = {row.customer_id for row in rows if row.customer.push_opt_out}
    if send.template.topic_id:
        out |= set(TopicOptOut.objects.filter(topic_id=send.template.topic_id, customer_id__in=ids)
                   .values_list("customer_id", flat=True))
    return out


def _message(row: SendRow, rendered, template, send: Send,
             presentation: Presentation) -> PushMessage:
    device = row.device
    data = {**rendered.data, "delivery_id": str(row.pk), "jh_token": tracking_token(row.pk)}
    return PushMessage(
        delivery_id=row.pk, kind=device.kind, token=device.token,
        title=rendered.title, body=rendered.body, application_id=row.application_id or "default",
        image_url=rendered.image_url, url=rendered.url, data=data, priority=template.priority,
        ttl_seconds=template.ttl_seconds if send.ttl_seconds is None else send.ttl_seconds,
        collapse_key=collapse_identity(row, template),
        environment=device.environment,
        p256dh=device.p256dh, auth=device.auth,
        presentation=presentation,
    )


def collapse_identity(row: SendRow, template) -> str:
    """What a device replaces a notification by. The template's collapse key wins when it has
    one: both copies of a resent delivery carry it too, and it keeps the template's intent that
    a newer message (the order's latest status) replaces an older one. Otherwise the delivery's
    own identity, which only its own copies share."""
    return template.collapse_key or f"jh-{row.pk}"


def _deliver(claim: Claim, messages: list[PushMessage], tried: set[int],
             customer_of: dict[int, int]) -> Delivered:
    """Send chunk by chunk, recording results as they arrive. Stops when the provider is down
    (the batch waits for it) or, by LeaseLost, when another claim took the batch. Each chunk's
    customers are checked against the frequency caps as it goes (sending.caps)."""
    backend, batch, delivered = get_backend(), claim.batch, Delivered()
    for start in range(0, len(messages), SEND_CHUNK):
        back_at = outage_retry_at(batch.kind, batch.application_id)
        if back_at is not None and back_at > timezone.now():
            delivered.provider_back_at = back_at
            return delivered
        chunk = messages[start:start + SEND_CHUNK]
        capped = chunk_claim_under_caps(
            claim, batch.send, {m.delivery_id: customer_of[m.delivery_id] for m in chunk},
            timezone.now())
        chunk = [m for m in chunk if m.delivery_id not in capped]
        if not chunk:
            continue
        retries = _send_chunk(backend, claim, chunk)
        fresh = [m for m in chunk if m.delivery_id not in tried]
        if is_outage(sum(r.delivery_id not in tried for r in retries), len(fresh)):
            rows_requeue(claim, [r.delivery_id for r in retries])
            delivered.provider_back_at = outage_record(
                kind=batch.kind, application_id=batch.application_id,
                retry_after=max(r.retry_after or 0 for r in retries),
                error=f"{retries[0].error_code}: {retries[0].error}")
            return delivered
        if back_at is not None:  # this chunk was the first try after a wait: it is back
            outage_clear(kind=batch.kind, application_id=batch.application_id)
        delay = retries_schedule(claim, retries)
        if delay is not None:
            delivered.retry_after = max(delivered.retry_after or 0, delay)
    return delivered


def _send_chunk(backend, claim: Claim, chunk: list[PushMessage]) -> list[PushResult]:
    """Send one chunk, already marked 'sending', recording its results once they are all in,
    or every RECORD_EVERY_SECONDS while a slow answer holds the rest back; returns the
    retries."""
    retries: list[PushResult] = []
    answered: list[PushResult] = []
    waiting, recorded_at = len(chunk), time.monotonic()
    with closing(backend.send_stream(chunk)) as results:  # closed early: cancel the rest
        for part in results:
            waiting -= len(part)
            retries += [r for r in part if r.outcome == Outcome.RETRY]
            answered += [r for r in part if r.outcome != Outcome.RETRY]
            if answered and (not waiting
                             or time.monotonic() - recorded_at >= RECORD_EVERY_SECONDS):
                _record_surviving(claim, answered)
                answered, recorded_at = [], time.monotonic()
    if answered:  # a backend that answered fewer than it was given
        _record_surviving(claim, answered)
    return retries


def _record_surviving(claim: Claim, results: list[PushResult]) -> None:
    """Record a slice, reconnecting if the database dropped us: otherwise these messages,
    answered but not written down, would be sent again."""
    for attempt in range(RECORD_RETRIES):
        try:
            results_record(claim, results)
            return
        except DATABASE_ERRORS:
            if attempt == RECORD_RETRIES - 1:
                raise
            connection.close()
            time.sleep(1)


def _batch_settle(claim: Claim, delivered: Delivered, *, rendered_all: bool) -> None:
    """Done, or back to the queue until the provider or the retried messages are due (at once
    when messages are only left to render)."""
    if delivered.provider_back_at is not None:
        batch_release(claim, not_before=delivered.provider_back_at)
        return
    batch = claim.batch
    attempts = Delivery.objects.filter(
        send_id=batch.send_id, batch_no=batch.number, status=Delivery.Status.QUEUED
    ).aggregate(most=Max("attempts"))["most"]
    if attempts is None and rendered_all:
        batch_finish(claim)
        return
    if not attempts and not rendered_all:
        batch_release(claim, not_before=None)
        return
    backoff = min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)
    delay = max(backoff, delivered.retry_after or 0)
    batch_release(claim, not_before=timezone.now() + timedelta(seconds=delay))


def _send_pause(claim: Claim, problem: str) -> None:
    """Stop the whole send rather than fail its audience device by device: a credentials or
    configuration problem concerns every message of that provider."""
    batch = claim.batch
    with transaction.atomic():
        with fenced(claim):
            Delivery.objects.filter(
                send_id=batch.send_id, batch_no=batch.number, status=Delivery.Status.SENDING
            ).update(status=Delivery.Status.QUEUED)
            Send.objects.filter(pk=batch.send_id).exclude(status=Send.Status.CANCELLED).update(
                status=Send.Status.PAUSED,
                error=f"Paused: {problem}, then resume the send.",
            )
        batch_release(claim, not_before=None)
