"""Local clock times: "the next 10:00 in the customer's time zone, on a weekday"."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

UTC = ZoneInfo("UTC")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):  # a zone the database knows no more: use UTC, do not crash
        return UTC


def next_local_time(now: datetime, zone_name: str, at: time | None,
                    weekdays: list[int] | None = None) -> datetime:
    """The first moment after ``now`` when the wall clock in ``zone_name`` reads ``at`` on an
    allowed weekday (0=Monday; empty means any day). Computed on the local calendar, so it
    stays at 10:00 local across a DST change; a time that does not exist that day (the
    spring-forward gap) becomes the same wall time shifted by the gap, as zoneinfo reads it."""
    zone = _zone(zone_name)
    at = at or time(0, 0)
    allowed = {int(day) for day in (weekdays or []) if str(day).lstrip("-").isdigit()}
    allowed &= set(range(7))
    local_today = now.astimezone(zone).date()
    for offset in range(8):  # a week and a day covers every allowed weekday
        day = local_today + timedelta(days=offset)
        if allowed and day.weekday() not in allowed:
            continue
        candidate = datetime.combine(day, at, tzinfo=zone)
        if candidate.astimezone(UTC) > now:
            return candidate.astimezone(UTC)
    return (now + timedelta(days=1)).astimezone(UTC)  # unreachable with a valid weekday list
