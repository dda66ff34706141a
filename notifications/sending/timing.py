"""When a delivery may go: local-time delivery and quiet hours, in the delivery's time zone.

A delivery's time zone is the device's own where the app reported one, else the customer's,
else the workspace default (DeliverySettings.default_time_zone). Fan-out works out the timing
once per zone present in the audience (a few hundred at most) and applies it in SQL with one
CASE per column, so it follows DST and needs no time zone support in the database."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import CharField, F, Value
from django.db.models.functions import Coalesce, NullIf

from notifications.models import Delivery, DeliverySettings, LocalTimePassed, Send

UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Timing:
    """When a zone's deliveries may go (None: now), and the reason a row shows meanwhile
    (blank: none; ``local_time_passed``: skipped)."""

    not_before: datetime | None = None
    reason: str = ""


def delivery_zone(default: str) -> Coalesce:
    """The delivery time zone of a Device row, in SQL."""
    return Coalesce(NullIf(F("time_zone"), Value("")), NullIf(F("customer__time_zone"), Value("")),
                    Value(default), output_field=CharField())


def quiet_window(send: Send, controls: DeliverySettings) -> tuple[time, time] | None:
    """The send's quiet window: its own when it has one, else the global one; None for a send
    that ignores quiet hours or a window of no length."""
    if not send.respect_quiet_hours:
        return None
    if send.quiet_hours_start is not None and send.quiet_hours_end is not None:
        start, end = send.quiet_hours_start, send.quiet_hours_end
    else:
        start, end = controls.quiet_hours_start, controls.quiet_hours_end
    return None if start == end else (start, end)


def zone_timing(send: Send, zone: str, now: datetime,
                window: tuple[time, time] | None) -> Timing:
    """The timing of a send's deliveries in one zone: at its local time if it has one (today,
    or tomorrow / never once today's has passed), then pushed to the end of quiet hours if it
    falls inside them."""
    at, reason = now, ""
    if send.local_time is not None:
        local_at = local_time_on(now, zone, send.local_time, days=0)
        if local_at < now:
            if send.local_time_passed == LocalTimePassed.SKIP:
                return Timing(reason=Delivery.Reason.LOCAL_TIME_PASSED)
            local_at = local_time_on(now, zone, send.local_time, days=1)
        if local_at > now:
            at, reason = local_at, Delivery.Reason.LOCAL_TIME_SCHEDULED
    if window is not None:
        end = quiet_hours_end_in_zone(at, zone, *window)
        if end is not None:
            at, reason = end, Delivery.Reason.QUIET_HOURS_DEFERRED
    return Timing(at if reason else None, reason)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):  # a zone the system knows no more: UTC rather than a crash
        return UTC


def local_time_on(now: datetime, zone: str, at: time, *, days: int) -> datetime:
    """``at`` on the local calendar day of ``now`` in ``zone`` plus ``days``, in UTC. A time in
    a spring-forward gap is read as zoneinfo reads it (shifted by the gap)."""
    tz = _zone(zone)
    day = now.astimezone(tz).date() + timedelta(days=days)
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def quiet_hours_end_in_zone(now: datetime, zone: str, start, end) -> datetime | None:
    """If ``now`` is inside the quiet window [start, end) of local time in ``zone``, the moment
    the window ends (as an aware datetime); otherwise None. The window may cross midnight."""
    try:
        local = now.astimezone(ZoneInfo(zone))
    except (KeyError, ValueError):
        return None
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    end_day = local.date() if clock < end else local.date() + timedelta(days=1)
    naive_end = datetime.combine(end_day, end)
    return naive_end.replace(tzinfo=ZoneInfo(zone))
