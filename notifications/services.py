"""Writes on devices. Keyword-only arguments, one transaction each."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, Max, OuterRef, ProtectedError, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audiences.models import Customer
from audiences.services import event_track
from notifications import deactivation, tasks
from notifications.deactivation import PROVIDER_MODELS
from notifications.models import (
    Delivery,
    DeliveryBatch,
    Device,
    LocalTimePassed,
    Send,
    Template,
    TemplateTranslation,
)
from notifications.rendering import template_check, template_field_problems
from notifications.sending.batch_send import batch_send
from notifications.sending.batches import batches_release_expired, send_finish_if_complete
from notifications.sending.fanout import deliveries_materialise
from notifications.sending.throttle import throttles_forget_idle
from notifications.tracking import tracking_token_read

DEVICE_FIELDS = ("platform", "app_version", "locale", "time_zone", "environment", "permission")
WEBPUSH_FIELDS = ("p256dh", "auth", "browser")
REGISTER_ATTEMPTS = 3  # a lost race on the unique token index is retried, not reported
DISPATCH_LIMIT = 5000  # batches enqueued per dispatch tick (2.5M messages)
FANOUT_LEASE_FACTOR = 10  # a fan-out may take longer than a batch; give it ten leases
EXPIRABLE = (Send.Status.SENDING, Send.Status.PAUSED)  # fanned out, rows may still be queued
# A send's expiry task is queued this long ahead at most (by send_create, else by the minute
# sweep): a message held longer by a worker would be handed out again by Redis after its
# visibility timeout, and closed on by RabbitMQ after its consumer timeout. 90 s: a sweep
# late by 30 s still schedules every expiry before it passes.
EXPIRY_LOOKAHEAD = timedelta(seconds=90)


def device_register(*, customer: Customer, kind: str, token: str,
                    application_id: str | None = None, **fields) -> tuple[Device, bool]:
    """Register a push token for a customer. Returns (device, created).

    The same token again updates its row; a token registered by another customer (a logout and
    login on the same phone) moves to this customer. The unique index on the provider's token
    column keeps one row per token when two registrations race."""
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            return _device_register_once(
                customer=customer, kind=kind, token=token, application_id=application_id, **fields
            )
        except IntegrityError:
            if attempt == REGISTER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _device_register_once(*, customer, kind, token, application_id, **fields):
    model = PROVIDER_MODELS[Device.Kind(kind)]
    webpush = {name: fields.pop(name) for name in WEBPUSH_FIELDS if name in fields}
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"device_register() got unknown fields: {sorted(unknown)}")
    provider_row = model.objects.select_for_update().filter(registration_id=token).first()
    created = provider_row is None
    if created:
        provider_row = model(registration_id=token)
        if kind == Device.Kind.FCM:
            provider_row.cloud_message_type = "FCM"
    provider_row.active = True
    provider_row.application_id = application_id
    for name, value in webpush.items():
        setattr(provider_row, name, value)
    with transaction.atomic():  # savepoint: a racing insert raises here and is retried whole
        provider_row.save()
    device = Device.objects.select_for_update().filter(**{kind: provider_row}).first()
    if device is None:
        device = Device(kind=kind, **{kind: provider_row})
        created = True
    device.customer = customer
    device.is_active, device.deactivated_reason = True, ""
    device.last_seen_at = timezone.now()
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean(exclude=["apns", "fcm", "webpush"], validate_unique=False)
    device.save()
    return device, created


@transaction.atomic
def device_update(*, device: Device, **fields) -> Device:
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"device_update() got unknown fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(device, name, value)
    device.last_seen_at = timezone.now()
    device.full_clean(exclude=["apns", "fcm", "webpush"], validate_unique=False)
    device.save()
    return device


@transaction.atomic
def device_delete(*, device: Device) -> None:
    """Forget a device: the provider row goes too (its token must not be pushed again)."""
    provider_row = device.provider_device
    device.delete()
    provider_row.delete()


def device_deactivate(*, device: Device, reason: str) -> Device:
    if not reason:
        raise ValidationError("A deactivated device needs a reason.")
    devices_deactivate(reasons={device.pk: reason})
    device.is_active, device.deactivated_reason = False, reason
    return device


@transaction.atomic
def devices_deactivate(*, reasons: dict[int, str]) -> int:
    """Deactivate devices (id -> reason) and their provider rows, so nobody pushes to them."""
    return deactivation.devices_deactivate(reasons)


def devices_mark_test(*, devices, is_test: bool) -> int:
    """Mark (or unmark) devices as test devices, which journey test runs send to. Returns how
    many changed."""
    return devices.exclude(is_test=is_test).update(is_test=is_test)


# --- Sends ------------------------------------------------------------------------------------


@transaction.atomic
def send_create(*, template: Template, segment=None, customer_ids=None, trigger_event=None,
                kinds: list[str] | None = None, throttle_per_minute: int | None = None,
                respect_quiet_hours: bool = True, cap_exempt: bool = False, expires_at=None,
                source: str = "", throttle_key: str = "", campaign_kind: str = "",
                quiet_hours: tuple | None = None, local_time=None,
                local_time_passed: str = LocalTimePassed.NEXT_DAY, test_devices_only: bool = False,
                created_by=None) -> Send:
    """Create a send to a segment or to customer ids and queue its fan-out (after commit).

    ``throttle_key`` names the stream whose throttle it shares (a campaign's sends share one;
    blank: its own); ``campaign_kind`` is the kind of campaign that made it (blank: ad-hoc),
    which the per-kind frequency caps count by. ``cap_exempt`` marks it transactional: not
    capped, and it reaches the global control group. ``quiet_hours`` is its own (start, end)
    window, None (or two Nones) for the global one; ``respect_quiet_hours=False``: none.
    ``local_time``: delivered at that time in each delivery's time zone, and where it has passed
    today, the next day or not at all (``local_time_passed``: next_day, skip).
    ``test_devices_only``: only the customers' devices marked as test devices receive it."""
    if (segment is None) == (customer_ids is None):
        raise ValidationError("A send needs exactly one audience: a segment or customer ids.")
    unknown_kinds = set(kinds or []) - set(Device.Kind.values)
    if unknown_kinds:
        raise ValidationError({"kinds": f"Unknown kinds: {', '.join(sorted(unknown_kinds))}; "
                                        f"choose among: {', '.join(Device.Kind.values)}."})
    if throttle_per_minute is not None and throttle_per_minute < 1:
        raise ValidationError({"throttle_per_minute": "Must be at least 1 message per minute."})
    quiet_start, quiet_end = quiet_hours or (None, None)
    if (quiet_start is None) != (quiet_end is None):
        raise ValidationError({"quiet_hours": "An own quiet window needs both its start and its "
                                              "end; give neither for the global window."})
    if local_time_passed not in LocalTimePassed.values:
        raise ValidationError({"local_time_passed": f"Unknown choice {local_time_passed!r}; "
                               f"choose one of: {', '.join(LocalTimePassed.values)}."})
    # A silent push is not seen: it neither counts against the cap nor waits for it.
    cap_exempt = cap_exempt or template.kind == Template.Kind.SILENT
    send = Send.objects.create(
        template=template, segment=segment,
        customer_ids=sorted(set(customer_ids)) if customer_ids is not None else None,
        trigger_event=trigger_event, kinds=sorted(set(kinds or [])),
        throttle_per_minute=throttle_per_minute,
        respect_quiet_hours=respect_quiet_hours, cap_exempt=cap_exempt, expires_at=expires_at,
        source=source, throttle_key=throttle_key, campaign_kind=campaign_kind,
        quiet_hours_start=quiet_start, quiet_hours_end=quiet_end, local_time=local_time,
        local_time_passed=local_time_passed, test_devices_only=test_devices_only,
        created_by=created_by,
    )
    _enqueue_on_commit("notifications.tasks.send_fan_out", send.pk)
    send_expiry_schedule(send=send)
    return send


def send_fan_out(*, send_id: int) -> int:
    """Materialise the send's deliveries and batches, then dispatch the due batches.

    Claimed with a conditional UPDATE; a re-run after a crash inserts only what is missing."""
    now = timezone.now()
    claimed = Send.objects.filter(pk=send_id, status=Send.Status.QUEUED).update(
        status=Send.Status.FANNING_OUT, started_at=now
    )
    if not claimed:
        return 0
    send = Send.objects.select_related("template", "segment").get(pk=send_id)
    with transaction.atomic():
        _skipped, queued = deliveries_materialise(send=send, now=now)
        batches_create(send=send, now=now)
        Send.objects.filter(pk=send_id).update(status=Send.Status.SENDING)
    send_finish_if_complete(send_id=send_id)
    batches_dispatch_due()
    return queued


def batches_create(*, send: Send, now) -> int:
    """One batch row per batch number; throttled sends spread their batches one a minute."""
    groups = (
        Delivery.objects.filter(send=send, status=Delivery.Status.QUEUED, batch_no__isnull=False)
        .values("batch_no", "kind", "application_id")
        .annotate(size=Count("id"), not_before=Max("not_before")).order_by("batch_no")
    )
    batches, messages_before = [], 0
    for group in groups.iterator(chunk_size=2000):
        not_before = group["not_before"]
        if send.throttle_per_minute:
            minutes = messages_before / send.throttle_per_minute
            staggered = now + timedelta(minutes=minutes)
            not_before = max(not_before, staggered) if not_before else staggered
        messages_before += group["size"]
        batches.append(DeliveryBatch(
            send=send, number=group["batch_no"], kind=group["kind"],
            application_id=group["application_id"], size=group["size"], not_before=not_before,
        ))
    DeliveryBatch.objects.bulk_create(batches, batch_size=1000, ignore_conflicts=True)
    return len(batches)


def batches_dispatch_due(*, limit: int = DISPATCH_LIMIT) -> int:
    """Enqueue one task per due batch that has no task in flight (or whose task was lost
    with a broker restart: enqueued longer ago than DELIVERY_REENQUEUE_AFTER_SECONDS).

    A batch that was claimed before (its worker died, it waited for retries or for a provider
    to come back) goes to the front of the send queue: it was due before any new batch."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.DELIVERY_REENQUEUE_AFTER_SECONDS)
    due = (
        DeliveryBatch.objects.filter(status=DeliveryBatch.Status.QUEUED,
                                     send__status=Send.Status.SENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
        .order_by("not_before", "pk").values_list("pk", "attempts")[:limit]
    )
    batches = list(due)
    DeliveryBatch.objects.filter(pk__in=[pk for pk, _ in batches]).update(enqueued_at=now)
    for batch_id, attempts in batches:
        priority = (settings.DELIVERY_PRIORITY_RESENT if attempts
                    else settings.DELIVERY_PRIORITY_NEW)
        transaction.on_commit(lambda batch_id=batch_id, priority=priority: (
            tasks.delivery_batch_send.apply_async((batch_id,), priority=priority)))
    return len(batches)


def delivery_batch_send(*, batch_id: int, fence: int | None = None) -> float | None:
    """Send one batch (see notifications.sending.batch_send). Returns the seconds after which to
    look again when another claim's live lease holds it; raises BatchInterrupted when the
    database went away mid-batch."""
    return batch_send(batch_id=batch_id, fence=fence)


def deliveries_sweep() -> dict[str, int]:
    """Take back work that nobody will finish: batches whose worker stopped renewing its lease
    go back to the queue, sends stuck building their audience start again, fan-outs the broker
    lost are enqueued again, and due batches are dispatched."""
    now = timezone.now()
    lease = timedelta(seconds=settings.DELIVERY_BATCH_LEASE_SECONDS)
    released = batches_release_expired()
    expired = deliveries_expire(now=now)
    sends_expiry_schedule(now=now)
    throttles_forget_idle(now)
    restarted = Send.objects.filter(
        status=Send.Status.FANNING_OUT, started_at__lt=now - lease * FANOUT_LEASE_FACTOR
    ).values_list("pk", flat=True)
    restarted = list(restarted)
    Send.objects.filter(pk__in=restarted).update(status=Send.Status.QUEUED)
    lost = Send.objects.filter(  # queued, but the broker lost the fan-out task (a restart)
        status=Send.Status.QUEUED,
        created_at__lt=now - timedelta(seconds=settings.DELIVERY_REENQUEUE_AFTER_SECONDS),
    ).exclude(pk__in=restarted).values_list("pk", flat=True)
    restarted += list(lost)
    for send_id in restarted:
        _enqueue_on_commit("notifications.tasks.send_fan_out", send_id)
    return {"released": released, "restarted": len(restarted), "expired": expired,
            "dispatched": batches_dispatch_due()}


def deliveries_expire(*, now) -> int:
    """Sends past their expiry skip every row still queued (``expired``), at once rather than
    when each row's wait ends; their batches with nothing left to send are done. Returns the
    rows skipped. The minute sweep's safety net under each send's own expiry task."""
    queued = Delivery.objects.filter(send=OuterRef("pk"), status=Delivery.Status.QUEUED)
    sends = list(Send.objects.filter(expires_at__lte=now, status__in=EXPIRABLE)
                 .filter(Exists(queued)).values_list("pk", flat=True))
    return sum(_send_expire_rows(send_id=send_id, now=now) for send_id in sends)


def send_expiry_schedule(*, send: Send) -> None:
    """Have the send's rows still queued skipped at its expiry, to the second (task
    send_expire, run at ``expires_at``) when the expiry is near; a farther one is scheduled by
    the minute sweep once it is near (sends_expiry_schedule). Call it whenever a send's expiry
    is set or changed: a task left from an earlier expiry runs early and changes nothing."""
    now = timezone.now()
    if send.expires_at is not None and now < send.expires_at <= now + EXPIRY_LOOKAHEAD:
        _expire_at(send.pk, send.expires_at)


def sends_expiry_schedule(*, now: datetime) -> int:
    """Schedule the expiry task of every unfinished send expiring within the lookahead (the
    minute sweep). A send scheduled twice is harmless. Returns the sends scheduled."""
    expiring = Send.objects.filter(
        expires_at__gt=now, expires_at__lte=now + EXPIRY_LOOKAHEAD,
        status__in=[Send.Status.QUEUED, Send.Status.FANNING_OUT, *EXPIRABLE],
    ).values_list("pk", "expires_at")
    expiring = list(expiring)
    for send_id, expires_at in expiring:
        _expire_at(send_id, expires_at)
    return len(expiring)


def _expire_at(send_id: int, expires_at: datetime) -> None:
    transaction.on_commit(lambda: tasks.send_expire.apply_async((send_id,), eta=expires_at))


def send_expire(*, send_id: int) -> datetime | None:
    """At the send's expiry, skip its rows still queued (``expired``) and finish it if nothing
    else is left. Safe to run twice, and early: before the expiry it changes nothing and
    returns the expiry when that is near (run again then), else None."""
    now = timezone.now()
    send = Send.objects.filter(pk=send_id).values("expires_at", "status").first()
    if send is None or send["expires_at"] is None:
        return None
    if now < send["expires_at"]:
        return send["expires_at"] if send["expires_at"] <= now + EXPIRY_LOOKAHEAD else None
    if send["status"] in EXPIRABLE:  # still fanning out: its fan-out or the sweep expires it
        _send_expire_rows(send_id=send_id, now=now)
    return None


def _send_expire_rows(*, send_id: int, now) -> int:
    """Rows not yet claimed (queued) are skipped; rows a worker holds are left to it (it checks
    the expiry before sending)."""
    with transaction.atomic():
        skipped = Delivery.objects.filter(
            send_id=send_id, status=Delivery.Status.QUEUED
        ).update(status=Delivery.Status.SKIPPED, reason=Delivery.Reason.EXPIRED)
        unsent = Delivery.objects.filter(
            send_id=send_id, batch_no=OuterRef("number"), status=Delivery.Status.SENDING)
        DeliveryBatch.objects.filter(send_id=send_id, status=DeliveryBatch.Status.QUEUED
                                     ).exclude(Exists(unsent)).update(
            status=DeliveryBatch.Status.DONE, finished_at=now)
    send_finish_if_complete(send_id=send_id)
    return skipped


def send_pause(*, send: Send) -> Send:
    _send_transition(send, {Send.Status.QUEUED, Send.Status.FANNING_OUT, Send.Status.SENDING},
                     Send.Status.PAUSED)
    return send


def send_resume(*, send: Send) -> Send:
    _send_transition(send, {Send.Status.PAUSED}, Send.Status.SENDING, error="")
    if not DeliveryBatch.objects.filter(send=send).exists():
        Send.objects.filter(pk=send.pk).update(status=Send.Status.QUEUED)
        _enqueue_on_commit("notifications.tasks.send_fan_out", send.pk)
    else:
        transaction.on_commit(batches_dispatch_due)
    send.refresh_from_db()
    return send


@transaction.atomic
def send_cancel(*, send: Send) -> Send:
    # finished_at stamps the moment its queued rows became skipped (reports refresh by it).
    _send_transition(send, {Send.Status.QUEUED, Send.Status.FANNING_OUT, Send.Status.SENDING,
                            Send.Status.PAUSED}, Send.Status.CANCELLED,
                     finished_at=timezone.now())
    Delivery.objects.filter(send=send, status=Delivery.Status.QUEUED).update(
        status=Delivery.Status.SKIPPED, reason=Delivery.Reason.SEND_CANCELLED
    )
    return send


def _send_transition(send: Send, allowed: set[str], to: str, **fields) -> None:
    changed = Send.objects.filter(pk=send.pk, status__in=allowed).update(status=to, **fields)
    if not changed:
        send.refresh_from_db()
        raise ValidationError(f"A {send.get_status_display().lower()} send cannot become {to}.")
    send.status = to


def send_test(*, template: Template, customer: Customer, created_by=None) -> Send:
    """Send a template to one customer now: no cap, no quiet hours (staff asked for it)."""
    return send_create(template=template, customer_ids=[customer.pk], cap_exempt=True,
                       respect_quiet_hours=False, source="test", created_by=created_by)


def delivery_track(*, token: str, action: str, customer: Customer | None = None,
                   action_id: str = "") -> Delivery:
    """Record that the app received or opened a delivery. The token is the signed one in the
    payload; ``action_id`` names the button that opened it, one of its template's actions. A
    forged token, or one for another customer's delivery, is invalid; the same action reported
    twice is refused with the code "already_reported"."""
    delivery_id = _tracked_delivery_id(token)
    field = {"received": "received_at", "opened": "opened_at"}[action]
    now = timezone.now()
    changes = {field: now}
    if action_id:
        _check_action_id(delivery_id, action_id)
        changes["opened_action"] = action_id
    if action == "opened":  # an open implies receipt, even if the app never reported it
        changes["received_at"] = Coalesce("received_at", Value(now))
    owned = Delivery.objects.filter(pk=delivery_id)
    if customer is not None:
        owned = owned.filter(customer=customer)
    with transaction.atomic():
        if not owned.filter(**{f"{field}__isnull": True}).update(**changes):
            if not owned.exists():
                raise ValidationError({"token": ValidationError(
                    "This tracking token is not valid.", code="invalid")})
            raise ValidationError({"token": ValidationError(
                f"Already reported as {action}.", code="already_reported")})
        delivery = Delivery.objects.select_related("customer", "send").get(pk=delivery_id)
        if action == "opened" and delivery.customer is not None:  # None: erased since
            properties = {"delivery_id": delivery_id, "send_id": delivery.send_id,
                          "source": delivery.send.source}
            if action_id:
                properties["action_id"] = action_id
            event_track(customer=delivery.customer, name="notification_opened", occurred_at=now,
                        properties=properties, client_event_id=f"open-{delivery_id}")
    return delivery


def _check_action_id(delivery_id: int, action_id: str) -> None:
    actions = (Template.objects.filter(sends__deliveries=delivery_id)
               .values_list("actions", flat=True).first())
    if actions is not None and action_id not in {action["id"] for action in actions or []}:
        raise ValidationError({"action_id": ValidationError(
            f"This message has no button {action_id!r}.", code="invalid")})


def _tracked_delivery_id(token: str) -> int:
    try:
        return tracking_token_read(token)
    except (signing.BadSignature, ValueError):
        raise ValidationError({"token": ValidationError(
            "This tracking token is not valid.", code="invalid")}) from None


def _enqueue_on_commit(task_name: str, *args) -> None:
    task = getattr(tasks, task_name.rsplit(".", 1)[1])
    transaction.on_commit(lambda: task.delay(*args))


# --- Templates --------------------------------------------------------------------------------

TEMPLATE_FIELDS = ("name", "kind", "title", "body", "image_url", "url", "data", "topic",
                   "priority", "ttl_seconds", "collapse_key", "strict", "badge_mode", "badge",
                   "sound", "thread_id", "android_channel_id", "interruption_level",
                   "relevance_score", "actions", "apns_category")


@transaction.atomic
def template_save(*, template: Template | None = None, fields: dict,
                  translations: list[dict] | None = None) -> Template:
    """Create or update a template; ``translations`` (a list of {locale, title, body}) replaces
    its translations when given. A template that would not render is refused: field errors
    under "template" (the main texts) and "translations" (those naming their locale); a field
    holding a NUL character or a lone surrogate under its own name."""
    template = template or Template()
    for name, value in fields.items():
        if name not in TEMPLATE_FIELDS:
            raise TypeError(f"template_save() got an unknown field: {name}")
        setattr(template, name, value)
    _refuse_unstorable_text(template, translations or [])
    template.full_clean()
    texts = None
    if translations is not None:
        texts = [(t["locale"], t["title"], t["body"]) for t in translations]
        if len({locale for locale, _, _ in texts}) != len(texts):
            raise ValidationError({"translations": "Each locale may be translated once."})
    elif template.pk:
        texts = list(template.translations.values_list("locale", "title", "body"))
    problems = template_check(template, texts=texts or [])
    if problems:
        translated = [p for p in problems if p.startswith("[")]
        errors = {"translations": translated} if translated else {}
        if main := [p for p in problems if not p.startswith("[")]:
            errors["template"] = main
        raise ValidationError(errors)
    template.save()
    if translations is not None:
        template.translations.all().delete()
        TemplateTranslation.objects.bulk_create([
            TemplateTranslation(template=template, locale=locale, title=title, body=body)
            for locale, title, body in texts
        ])
    return template


def _refuse_unstorable_text(template: Template, translations: list[dict]) -> None:
    errors = {name: [problem] for name, problem in template_field_problems(
        {name: getattr(template, name) for name in ("title", "body", "image_url", "url", "data")}
    ).items()}
    translated = [f"[{t.get('locale', '')}] {name}: {problem}" for t in translations
                  for name, problem in template_field_problems(t).items()]
    if translated:
        errors["translations"] = translated
    if errors:
        raise ValidationError(errors)


def template_delete(*, template: Template) -> None:
    """Delete a template nobody uses; one that campaign steps or sends name is kept (their
    history needs it) and refused with the code "in_use"."""
    try:
        with transaction.atomic():
            template.delete()
    except ProtectedError as error:
        raise ValidationError(
            f"This template is used by {len(error.protected_objects)} campaign steps, variants "
            "or sends; it cannot be deleted.", code="in_use",
        ) from error
