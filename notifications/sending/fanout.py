"""Fan-out: turn a send's audience into delivery rows with set-based SQL.

Two INSERT ... SELECT statements do the work whatever the audience size: one writes a skipped
row (no device, with a reason) for each targeted customer who cannot be sent to, the other one
queued row per (customer, active device) for everyone else, already numbered into batches of
at most MAX_BATCH_SIZE by a window function. Unique keys make a re-run insert nothing.

Who is skipped, in this order of reasons: the global control group (unless the send is
transactional), opted out, no active device, frequency capped (sending.caps); queued rows
deferred past the send's expiry are skipped as expired at once."""

from datetime import datetime

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, DenseRank, RowNumber
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.models import Customer, TopicOptOut
from audiences.selectors import segment_customers
from notifications.models import Delivery, DeliverySettings, Device, Send
from notifications.providers.base import MAX_BATCH_SIZE
from notifications.sending.caps import capped_customers
from notifications.sending.timing import delivery_zone, quiet_window, zone_timing

BATCHES_PER_GROUP = 1_000_000  # batch_no = group rank * this + chunk: room for 500M devices


def send_audience(send: Send) -> QuerySet[Customer]:
    if send.segment_id:
        return segment_customers(send.segment)
    return Customer.objects.filter(pk__in=send.customer_ids or [])


def deliveries_materialise(*, send: Send, now: datetime) -> tuple[int, int]:
    """Write the send's delivery rows. Returns (skipped rows, queued rows) inserted now."""
    audience = send_audience(send).order_by()
    if send.is_expired(now):
        return _insert(_skipped_rows(send, audience, Value(Delivery.Reason.EXPIRED), now)), 0
    reason = _skip_reason(send, now)
    skipped = audience.annotate(jh_reason=reason).filter(jh_reason__isnull=False)
    skipped_count = _insert(_skipped_rows(send, skipped, F("jh_reason"), now))
    # The same test, spelt as plain filters: the planner misjudges how many rows a CASE keeps
    # and, believing it one, would nested-loop the devices against it.
    sendable = audience.exclude(_opted_out(send))
    control = _control_group(send)
    if control is not None:
        sendable = sendable.exclude(control)
    capped = capped_customers(send, now)
    if capped is not None:
        sendable = sendable.exclude(capped)
    queued = _insert(_queued_rows(send, sendable, now))
    passed = _skip_local_time_passed(send)
    expired = _expire_deferred_past_expiry(send)
    return skipped_count + passed + expired, queued - passed - expired


def _skip_local_time_passed(send: Send) -> int:
    """Rows in zones whose local delivery time had passed, for a send that skips them."""
    if send.local_time is None:
        return 0
    return Delivery.objects.filter(
        send=send, status=Delivery.Status.QUEUED, reason=Delivery.Reason.LOCAL_TIME_PASSED
    ).update(status=Delivery.Status.SKIPPED, batch_no=None)


def _control_group(send: Send) -> Q | None:
    """The global control group hears no marketing push, from a campaign or not; only
    transactional (cap-exempt) sends reach it."""
    slots = DeliverySettings.load().control_slots()
    if send.cap_exempt or not slots:
        return None
    return Q(bucket__lt=slots)


def _expire_deferred_past_expiry(send: Send) -> int:
    """Rows deferred (quiet hours, local time) to after the send expires will never go: they
    are skipped now, not at the end of their wait, so nobody counts them as pending."""
    if send.expires_at is None:
        return 0
    return Delivery.objects.filter(
        send=send, status=Delivery.Status.QUEUED, not_before__gt=send.expires_at
    ).update(status=Delivery.Status.SKIPPED, reason=Delivery.Reason.EXPIRED, batch_no=None)


def _reachable_devices(send: Send) -> QuerySet[Device]:
    devices = Device.objects.filter(is_active=True).exclude(permission=Device.Permission.DENIED)
    if send.test_devices_only:
        devices = devices.filter(is_test=True)
    return devices.filter(kind__in=send.kinds) if send.kinds else devices


def _opted_out(send: Send) -> Q:
    opted_out = Q(push_opt_out=True)
    if send.template.topic_id:
        opted_out |= Q(pk__in=TopicOptOut.objects.filter(topic_id=send.template.topic_id)
                       .values("customer_id"))
    return opted_out


def _skip_reason(send: Send, now: datetime) -> Case:
    whens = [When(control, then=Value(Delivery.Reason.CONTROL_GROUP))
             for control in [_control_group(send)] if control is not None]
    whens += [
        When(_opted_out(send), then=Value(Delivery.Reason.OPTED_OUT)),
        # EXISTS, not IN: PostgreSQL cannot hash a NOT IN of a million ids and would rescan it
        # for every customer; NOT EXISTS is an anti-join.
        When(~Exists(_reachable_devices(send).filter(customer=OuterRef("pk"))),
             then=Value(Delivery.Reason.NO_ACTIVE_DEVICE)),
    ]
    capped = capped_customers(send, now)
    if capped is not None:
        whens.append(When(capped, then=Value(Delivery.Reason.FREQUENCY_CAPPED)))
    return Case(*whens, default=None, output_field=CharField())


def _skipped_rows(send: Send, customers: QuerySet, reason, now: datetime):
    return _select(customers, {
        "send": Value(send.pk, IntegerField()), "customer": F("pk"),
        "status": Value(Delivery.Status.SKIPPED), "reason": reason, "kind": Value(""),
        "application_id": Value(""), "error": Value(""), "attempts": Value(0, IntegerField()),
        "provider_message_id": Value(""), "created_at": Value(now, DateTimeField()),
    })


def _queued_rows(send: Send, customers: QuerySet, now: datetime):
    devices = _reachable_devices(send).filter(customer__in=customers.values("pk"))
    devices = devices.annotate(jh_zone=delivery_zone(DeliverySettings.load().default_time_zone))
    not_before, reason = _timing(send, devices, now)
    application_id = _application_id()
    group = [F("kind"), application_id, not_before]
    chunk = min(MAX_BATCH_SIZE, send.throttle_per_minute or MAX_BATCH_SIZE)
    batch_no = (
        Window(DenseRank(), order_by=[F("kind"), application_id, not_before])
        * BATCHES_PER_GROUP
        + (Window(RowNumber(), partition_by=group, order_by=[F("customer_id"), F("id")]) - 1)
        / chunk
    )
    return _select(devices.annotate(jh_not_before=not_before), {
        "send": Value(send.pk, IntegerField()), "customer": F("customer_id"), "device": F("pk"),
        "kind": F("kind"), "application_id": application_id,
        "status": Value(Delivery.Status.QUEUED), "reason": reason,
        "not_before": F("jh_not_before"), "batch_no": batch_no, "error": Value(""),
        "attempts": Value(0, IntegerField()), "provider_message_id": Value(""),
        "created_at": Value(now, DateTimeField()),
    })


def _timing(send: Send, devices: QuerySet, now: datetime) -> tuple:
    """(not-before, reason) of each device's row as SQL: a CASE on its delivery zone, from the
    timing worked out once per zone present (sending.timing)."""
    null = Cast(Value(None), DateTimeField())  # typed, or PostgreSQL reads the NULL as text
    window = quiet_window(send, DeliverySettings.load())
    if window is None and send.local_time is None:
        return null, Value("")
    zones = devices.order_by().values_list("jh_zone", flat=True).distinct()
    timings = {zone: zone_timing(send, zone, now, window) for zone in zones}
    timings = {zone: timing for zone, timing in timings.items() if timing.reason}
    if not timings:
        return null, Value("")
    not_before = Case(*(When(jh_zone=zone, then=Value(t.not_before, DateTimeField()))
                        for zone, t in timings.items() if t.not_before is not None),
                      default=null, output_field=DateTimeField())
    reason = Case(*(When(jh_zone=zone, then=Value(t.reason)) for zone, t in timings.items()),
                  default=Value(""), output_field=CharField())
    return not_before, reason


def _select(queryset: QuerySet, columns: dict) -> tuple[list[str], QuerySet]:
    """A values() queryset whose SELECT lists exactly ``columns``, in order, as jh_<column>."""
    aliases = {f"jh_{name}": expression for name, expression in columns.items()
               if f"jh_{name}" not in queryset.query.annotations}
    return list(columns), queryset.annotate(**aliases).values(*(f"jh_{n}" for n in columns))


def _application_id() -> Coalesce:
    """The device's application id, from its provider row. Scalar subqueries by primary key,
    not joins: a misestimated join of three provider tables can turn into a nested loop that
    scans one of them for every device."""
    lookups = [
        Subquery(model.objects.filter(pk=OuterRef(column)).values("application_id")[:1])
        for model, column in ((APNSDevice, "apns_id"), (GCMDevice, "fcm_id"),
                              (WebPushDevice, "webpush_id"))
    ]
    return Coalesce(*lookups, Value(""), output_field=CharField())


def _insert(selection: tuple[list[str], QuerySet]) -> int:
    """INSERT INTO deliveries (columns) SELECT ... ON CONFLICT DO NOTHING; rows inserted."""
    columns, rows = selection
    sql, params = rows.query.sql_with_params()
    quote = connection.ops.quote_name
    table = quote(Delivery._meta.db_table)
    names = ", ".join(quote(Delivery._meta.get_field(name).column) for name in columns)
    # The outer SELECT with WHERE true keeps SQLite from reading ON CONFLICT as a join clause.
    statement = (f"INSERT INTO {table} ({names}) SELECT * FROM ({sql}) AS jh_rows "
                 f"WHERE true ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount
