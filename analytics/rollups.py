"""Keeping the daily rollups (analytics.models) up to date.

A day is always rebuilt whole: in one transaction, delete its rows and INSERT ... SELECT them
again from the raw tables. So a rebuild is idempotent, and a refresh only has to know which
days changed. The beat task (``rollups_refresh``) finds them from ids inserted since the last
refresh (a conversion dated by an older event) and from timestamps moved since it started (an
open reported a week after the send touches the send's day), each through an index, so a
refresh reads what changed, not the whole delivery log.

A delivery's status has no timestamp of its own, and indexing sent_at or status would cost
every fan-out insert and every send's update. But a status only moves while a worker holds the
delivery's batch (claimed_at is renewed before each chunk it sends), so the refresh re-reads
the deliveries of the batches claimed since its last run, through the delivery log's
(send, batch_no) index: a deferred delivery sent the next morning, a throttled batch failing an
hour later. A fan-out that commits late may hold ids below the last refresh's mark: its send
started within LATE_COMMIT_MARGIN, or (slower still) finishes after it commits, so the rows of
sends started or finished since are re-read too. Not seen: a send cancelled (its queued rows
become skipped) stamps no time, so its days need a rollups_rebuild, as before.

Days are UTC calendar days: one report means the same thing wherever it is read."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import RollupState

# Rows are written with their timestamp before their transaction commits (a fan-out of 1M
# rows commits about a minute after its send's started_at). Looking this far behind the
# watermark catches them; re-reading a day costs little, missing one leaves it wrong until a
# rebuild.
LATE_COMMIT_MARGIN = timedelta(minutes=15)
REFRESH_LEASE = timedelta(minutes=30)  # a refresh that died frees the claim after this
CHUNK_DAYS = 7  # days rebuilt per transaction: bounds its size on a long rebuild


@dataclass(frozen=True)
class Rollup:
    table: str
    last_id_field: str  # RollupState column holding the source's last seen id
    source_table: str
    insert_sql: str  # {day} and {day2}: the day expressions; %(start)s and %(end)s: the range
    touched_sql: str  # distinct days touched; %(since)s and %(last_id)s


def day_sql(column: str) -> str:
    """The UTC calendar day of a timestamp column, in this database's SQL."""
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column})"  # SQLite stores UTC text


# Rows whose status may have moved since %(since)s: those of the batches a worker claimed since
# (it renews claimed_at before each chunk it sends, so a batch still sending counts too). And
# the rows of sends that fanned out since (committed late, below the id mark) or finished since
# (a fan-out slower than LATE_COMMIT_MARGIN: its send finishes after it commits). Each is an
# index range on a small table, then the delivery log's (send, batch_no) index.
_BATCHES_CLAIMED_SINCE = """SELECT b.send_id, b.number FROM notifications_deliverybatch b
    WHERE b.claimed_at >= %(since)s"""
# (A fan-out still running shows nothing: its rows, and its send leaving fanning_out, commit
# together.)
_SENDS_SINCE = """SELECT s.id FROM notifications_send s
    WHERE s.started_at >= %(since)s OR s.finished_at >= %(since)s"""

_DELIVERY_FROM = """FROM notifications_delivery d
LEFT JOIN campaigns_stepsend ss ON ss.send_id = d.send_id
WHERE d.created_at >= %(start)s AND d.created_at < %(end)s"""

ROLLUPS = [
    Rollup(
        "analytics_deliveryday", "last_delivery_id", "notifications_delivery",
        f"""INSERT INTO analytics_deliveryday (day, campaign_id, step_id, variant_id, kind,
            status, reason, deliveries, delivered, opened)
        SELECT {{day}}, ss.campaign_id, ss.step_id, ss.variant_id, d.kind, d.status, d.reason,
               COUNT(*), COUNT(d.received_at), COUNT(d.opened_at)
        {_DELIVERY_FROM}
        GROUP BY {{day}}, ss.campaign_id, ss.step_id, ss.variant_id, d.kind, d.status,
                 d.reason""",
        # One SELECT per index (an OR across them would read the whole log); UNION dedups.
        f"""SELECT {{day}} FROM notifications_delivery d WHERE d.id > %(last_id)s
        UNION SELECT {{day}} FROM notifications_delivery d WHERE d.received_at >= %(since)s
        UNION SELECT {{day}} FROM notifications_delivery d WHERE d.opened_at >= %(since)s
        UNION SELECT {{day}} FROM notifications_delivery d
        WHERE (d.send_id, d.batch_no) IN ({_BATCHES_CLAIMED_SINCE})
        UNION SELECT {{day}} FROM notifications_delivery d
        WHERE d.send_id IN ({_SENDS_SINCE})""",
    ),
    Rollup(
        # An erased customer's rows have no customer but their erasure's id: still one
        # customer per send. (A merge's unlinked rows have neither: their customer is counted
        # by the row the merge could not move them beside.)
        "analytics_audienceday", "last_delivery_id", "notifications_delivery",
        f"""INSERT INTO analytics_audienceday (day, campaign_id, step_id, variant_id, targeted)
        SELECT day, campaign_id, step_id, variant_id, SUM(customers) FROM (
            SELECT {{day}} AS day, ss.campaign_id, ss.step_id, ss.variant_id,
                   COUNT(DISTINCT d.customer_id) + COUNT(DISTINCT d.erasure_id) AS customers
            {_DELIVERY_FROM}
            GROUP BY {{day}}, d.send_id, ss.campaign_id, ss.step_id, ss.variant_id
        ) per_send GROUP BY day, campaign_id, step_id, variant_id""",
        # A delivery's created_at never moves, so new rows are all that can touch a day:
        # those above the id mark, and those of a fan-out that committed late.
        f"""SELECT {{day}} FROM notifications_delivery d WHERE d.id > %(last_id)s
        UNION SELECT {{day}} FROM notifications_delivery d
        WHERE d.send_id IN ({_SENDS_SINCE})""",
    ),
    Rollup(
        "analytics_conversionday", "last_conversion_id", "campaigns_conversion",
        """INSERT INTO analytics_conversionday (day, campaign_id, "group", step_id, variant_id,
            kind, conversions, revenue)
        SELECT {day}, c.campaign_id, c."group", ss.step_id, COALESCE(c.variant_id, ss.variant_id),
               COALESCE(d.kind, ''), COUNT(*), COALESCE(SUM(c.revenue), 0)
        FROM campaigns_conversion c
        LEFT JOIN notifications_delivery d ON d.id = c.delivery_id
        LEFT JOIN campaigns_stepsend ss ON ss.send_id = d.send_id
        WHERE c.occurred_at >= %(start)s AND c.occurred_at < %(end)s
        GROUP BY {day}, c.campaign_id, c."group", ss.step_id,
                 COALESCE(c.variant_id, ss.variant_id), COALESCE(d.kind, '')""",
        "SELECT DISTINCT {day} FROM campaigns_conversion c WHERE c.id > %(last_id)s",
    ),
    Rollup(
        "analytics_enrollmentday", "last_enrollment_id", "campaigns_enrollment",
        """INSERT INTO analytics_enrollmentday (day, campaign_id, "group", entered, exited)
        SELECT day, campaign_id, grp, SUM(entered), SUM(exited) FROM (
            SELECT {day} AS day, e.campaign_id, e."group" AS grp, 1 AS entered, 0 AS exited
            FROM campaigns_enrollment e
            WHERE e.entered_at >= %(start)s AND e.entered_at < %(end)s
            UNION ALL
            SELECT {day2}, e.campaign_id, e."group", 0, 1
            FROM campaigns_enrollment e
            WHERE e.exited_at >= %(start)s AND e.exited_at < %(end)s
        ) x GROUP BY day, campaign_id, grp""",
        # Each term has its index: the primary key, entered_at, and the partial exited_at.
        """SELECT {day} FROM campaigns_enrollment e WHERE e.id > %(last_id)s
        UNION SELECT {day} FROM campaigns_enrollment e WHERE e.entered_at >= %(since)s
        UNION SELECT {day2} FROM campaigns_enrollment e
        WHERE e.id > %(last_id)s AND e.exited_at IS NOT NULL
        UNION SELECT {day2} FROM campaigns_enrollment e WHERE e.exited_at >= %(since)s""",
    ),
    Rollup(
        "analytics_transitionday", "last_transition_id", "audiences_stagetransition",
        """INSERT INTO analytics_transitionday (day, from_stage, to_stage, transitions)
        SELECT {day}, t.from_stage, t.to_stage, COUNT(*) FROM audiences_stagetransition t
        WHERE t.at >= %(start)s AND t.at < %(end)s
        GROUP BY {day}, t.from_stage, t.to_stage""",
        """SELECT {day} FROM audiences_stagetransition t WHERE t.id > %(last_id)s
        UNION SELECT {day} FROM audiences_stagetransition t WHERE t.at >= %(since)s""",
    ),
]

# The timestamp each source's {day} (and {day2}) is taken from.
_DAY_COLUMNS = {
    "notifications_delivery": ("d.created_at", "d.created_at"),
    "campaigns_conversion": ("c.occurred_at", "c.occurred_at"),
    "campaigns_enrollment": ("e.entered_at", "e.exited_at"),
    "audiences_stagetransition": ("t.at", "t.at"),
}


def _sql(template: str, rollup: Rollup) -> str:
    first, second = _DAY_COLUMNS[rollup.source_table]
    return template.format(day=day_sql(first), day2=day_sql(second))


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _day_start(day: date):
    return connection.ops.adapt_datetimefield_value(datetime.combine(day, time.min, tzinfo=UTC))


def day_ranges(days: Iterable[date], chunk: int = CHUNK_DAYS) -> Iterator[tuple[date, date]]:
    """Consecutive days as (first, last) ranges of at most ``chunk`` days."""
    first = last = None
    for day in sorted(set(days)):
        if first is not None and day == last + timedelta(days=1) and (day - first).days < chunk:
            last = day
            continue
        if first is not None:
            yield first, last
        first = last = day
    if first is not None:
        yield first, last


def rollup_rebuild_range(rollup: Rollup, first: date, last: date) -> None:
    """Rebuild one rollup for the days first..last (inclusive), atomically."""
    ops = connection.ops
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Two rebuilds of one day at once would each insert it: take turns (readers don't
            # wait; they see the old rows until commit).
            cursor.execute(f"LOCK TABLE {rollup.table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            f"DELETE FROM {rollup.table} WHERE day >= %(first)s AND day <= %(last)s",
            {"first": ops.adapt_datefield_value(first), "last": ops.adapt_datefield_value(last)},
        )
        cursor.execute(_sql(rollup.insert_sql, rollup),
                       {"start": _day_start(first), "end": _day_start(last + timedelta(days=1))})


def rollups_rebuild(*, since: date, until: date, log=None) -> int:
    """Rebuild every rollup for since..until (inclusive); returns the number of days."""
    if since > until:
        raise ValueError("since must not be after until")
    for rollup in ROLLUPS:
        for first, last in day_ranges(_days_between(since, until)):
            rollup_rebuild_range(rollup, first, last)
        if log:
            log(f"{rollup.table}: {since} to {until} rebuilt")
    return (until - since).days + 1


def _days_between(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def _touched_days(rollup: Rollup, *, since, last_id: int) -> list[date]:
    since_value = connection.ops.adapt_datetimefield_value(
        since or datetime(1970, 1, 1, tzinfo=UTC)
    )
    with connection.cursor() as cursor:
        cursor.execute(_sql(rollup.touched_sql, rollup),
                       {"since": since_value, "last_id": last_id})
        return [_as_date(row[0]) for row in cursor.fetchall() if row[0] is not None]


def _max_ids() -> dict[str, int]:
    marks = {}
    with connection.cursor() as cursor:
        for rollup in ROLLUPS:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {rollup.source_table}")
            marks[rollup.last_id_field] = cursor.fetchone()[0]
    return marks


def _claim(now) -> bool:
    RollupState.objects.get_or_create(pk=1)
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return RollupState.objects.filter(free, pk=1).update(lease_until=now + REFRESH_LEASE) == 1


def rollups_refresh(*, now=None) -> int | None:
    """Rebuild the days touched since the last refresh. Returns how many (rollup, day) pairs
    were rebuilt, or None when another refresh holds the claim."""
    now = now or timezone.now()
    if not _claim(now):
        return None
    try:
        state = RollupState.objects.get(pk=1)
        since = state.watermark - LATE_COMMIT_MARGIN if state.watermark else None
        marks = _max_ids()  # before reading: rows inserted meanwhile are seen next time
        rebuilt = 0
        for rollup in ROLLUPS:
            days = _touched_days(rollup, since=since, last_id=getattr(state, rollup.last_id_field))
            for first, last in day_ranges(days):
                rollup_rebuild_range(rollup, first, last)
            rebuilt += len(days)
        RollupState.objects.filter(pk=1).update(
            watermark=now, refreshed_at=timezone.now(), days_refreshed=rebuilt,
            lease_until=None, **marks,
        )
        return rebuilt
    except BaseException:
        RollupState.objects.filter(pk=1).update(lease_until=None)
        raise


def rollups_mark_refreshed(*, now=None) -> None:
    """After rebuilding every day that holds data (seed_demo's history): the rollups are up to
    date as of ``now``, so the next refresh looks only at what comes after. Takes the claim
    like a refresh; skips when a refresh holds it (that refresh records its own time)."""
    now = now or timezone.now()
    if not _claim(now):
        return
    RollupState.objects.filter(pk=1).update(
        watermark=now, refreshed_at=now, days_refreshed=0, lease_until=None, **_max_ids())
