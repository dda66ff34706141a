"""Benchmarks of analytics (python manage.py bench NAME --size N)."""

import statistics
import time
from datetime import UTC, date, datetime

from django.db import connection, transaction
from django.db.models import Sum

from analytics import bench_export  # noqa: F401
from analytics.models import DeliveryDay
from analytics.reports import campaign_report
from analytics.rollups import rollups_rebuild
from audiences.models import Customer, Segment
from campaigns.models import Campaign, Step, StepSend, Variant
from journeyhub.bench import BenchResult, benchmark, timed
from notifications.benchmarks import data_set_ensure
from notifications.models import Delivery, Send, Template

# February 2020: no other bench's deliveries live there (the export bench uses January).
REPORT_SINCE, REPORT_UNTIL = date(2020, 2, 1), date(2020, 2, 29)
REPORT_CAMPAIGN = "bench: report"
REPORT_SENDS = 10  # step 1 sends alternate variants A and B; the last sends are step 2's
RUNS = 3  # each side is timed this many times (after one warm-up) and the median kept


@benchmark("report", default_size=1_000_000,
           help="The campaign report over N deliveries from the daily rollups vs the same "
                "numbers from raw deliveries with one GROUP BY.")
def report(*, size: int, log) -> BenchResult:
    if connection.vendor != "postgresql":
        raise RuntimeError("The report bench builds its data with PostgreSQL SQL: use it.")
    campaign = _data_ensure(size, log)
    ours_times, ref_times = [], []
    campaign_report(campaign=campaign)  # warm-up, both sides alike
    rows = _reference(campaign)
    for _ in range(RUNS):
        with timed() as ours:
            result = campaign_report(campaign=campaign)
        ours_times.append(ours.seconds)
        with timed() as ref:
            rows = _reference(campaign)
        ref_times.append(ref.seconds)
    _check_same_numbers(result, rows)
    log(f"report: sent {result.totals.sent:,}, opened {result.totals.opened:,}, "
        f"conversions {result.totals.conversions:,}; {len(rows)} raw groups")
    return BenchResult(
        statistics.median(ours_times),
        "the same numbers from raw deliveries: one GROUP BY step, variant, platform, status, "
        "reason", statistics.median(ref_times),
        extra={"deliveries": size, "rollup_rows": DeliveryDay.objects.filter(
            campaign_id=campaign.pk).count(), "runs": RUNS},
    )


_REFERENCE_SQL = """
SELECT ss.step_id, ss.variant_id, d.kind, d.status, d.reason,
       COUNT(*), COUNT(d.received_at), COUNT(d.opened_at)
FROM notifications_delivery d JOIN campaigns_stepsend ss ON ss.send_id = d.send_id
WHERE ss.campaign_id = %s
GROUP BY ss.step_id, ss.variant_id, d.kind, d.status, d.reason
"""


def _reference(campaign) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(_REFERENCE_SQL, [campaign.pk])
        return cursor.fetchall()


def _check_same_numbers(result, rows: list[tuple]) -> None:
    raw = {"sent": 0, "failed": 0, "skipped": 0, "delivered": 0, "opened": 0}
    for _step, _variant, _kind, status, _reason, n, delivered, opened in rows:
        if status in raw:
            raw[status] += n
        raw["delivered"] += delivered
        raw["opened"] += opened
    ours = {name: getattr(result.totals, name) for name in raw}
    if ours != raw:
        raise AssertionError(f"the report differs from the raw deliveries: {ours} vs {raw}")


def _data_ensure(size: int, log) -> Campaign:
    campaign, steps = _bench_campaign()
    have = Delivery.objects.filter(send__step_send__campaign=campaign).count()
    if have != size:
        if have:
            log(f"dropping the {have:,} report-bench deliveries of another size")
            Send.objects.filter(step_send__campaign=campaign).delete()
            campaign.enrollments.all().delete()
        _deliveries_build(campaign, steps, size, log)
    rolled = DeliveryDay.objects.filter(campaign_id=campaign.pk).aggregate(
        n=Sum("deliveries"))["n"]
    if rolled != size:
        started = time.perf_counter()
        rollups_rebuild(since=REPORT_SINCE, until=REPORT_UNTIL)
        log(f"rollups rebuilt for {REPORT_SINCE}..{REPORT_UNTIL} in "
            f"{time.perf_counter() - started:.1f}s (not timed)")
    return campaign


def _bench_campaign() -> tuple[Campaign, list[tuple[Step, Variant | None]]]:
    template, _ = Template.objects.get_or_create(
        name="bench: report", defaults={"title": "Hi", "body": "A limited-time offer"})
    segment, _ = Segment.objects.get_or_create(name="bench: everyone",
                                               defaults={"rules": {"all": []}})
    campaign, _ = Campaign.objects.get_or_create(
        name=REPORT_CAMPAIGN, defaults={"segment": segment, "status": "completed",
                                        "goal_event_name": "purchase", "holdout_percent": 10})
    first, _ = Step.objects.get_or_create(campaign=campaign, position=1,
                                          defaults={"kind": "send", "name": "Offer"})
    second, _ = Step.objects.get_or_create(campaign=campaign, position=2, defaults={
        "kind": "send", "name": "Reminder", "template": template})
    a, b = (Variant.objects.get_or_create(step=first, name=name, defaults={"template": template})[0]
            for name in ("A", "B"))
    plan = [(first, a), (first, b)] * ((REPORT_SENDS - 2) // 2) + [(second, None)] * 2
    return campaign, plan


def _deliveries_build(campaign, plan, size: int, log) -> None:
    per_send = -(-size // REPORT_SENDS)
    customer_ids = _customers_ensure(per_send, log)
    started = time.perf_counter()
    for number, (step, variant) in enumerate(plan):
        count = min(per_send, size - number * per_send)
        if count <= 0:
            break
        with transaction.atomic():
            send = Send.objects.create(template=variant.template if variant else step.template,
                                       source="bench:report",
                                       created_at=datetime(2020, 2, 1, tzinfo=UTC))
            StepSend.objects.create(step=step, campaign=campaign, send=send, variant=variant)
            with connection.cursor() as cursor:
                cursor.execute(_DELIVERIES_SQL, {"send": send.pk, "ids": customer_ids[:count],
                                                 "seed": number})
        log(f"{min((number + 1) * per_send, size):>10,} / {size:,} deliveries "
            f"{time.perf_counter() - started:6.1f}s")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_ENROLLMENTS_SQL, {"campaign": campaign.pk, "ids": customer_ids})
        # Fresh statistics first: planned on an empty table's, the conversions' lateral look-up
        # of each customer's last delivery is a scan per enrollment (minutes, not seconds).
        for table in ("notifications_delivery", "campaigns_stepsend", "campaigns_enrollment"):
            cursor.execute(f"ANALYZE {table}")
        cursor.execute(_CONVERSIONS_SQL, {"campaign": campaign.pk})


def _customers_ensure(count: int, log) -> list[int]:
    if Customer.objects.count() < count:
        data_set_ensure(count, log)
    return list(Customer.objects.order_by("id").values_list("id", flat=True)[:count])


# One row per customer and send, no device (the unique key is then (send, customer)): mostly
# sent, some failed or skipped with a reason, on the three platforms, over February 2020.
_DELIVERIES_SQL = """
INSERT INTO notifications_delivery (send_id, customer_id, device_id, kind, application_id,
    batch_no, status, reason, error, not_before, attempts, provider_message_id, created_at,
    sent_at, received_at, opened_at)
SELECT %(send)s, c.id, NULL, (ARRAY['apns', 'fcm', 'webpush'])[1 + r.n %% 3], '', NULL,
       CASE WHEN r.n %% 20 < 15 THEN 'sent' WHEN r.n %% 20 < 16 THEN 'failed' ELSE 'skipped' END,
       CASE WHEN r.n %% 20 < 15 THEN '' WHEN r.n %% 20 < 16 THEN 'dead_token'
            WHEN r.n %% 20 < 18 THEN 'frequency_capped' ELSE 'opted_out' END,
       '', NULL, 1, '', r.at,
       CASE WHEN r.n %% 20 < 15 THEN r.at + interval '2 seconds' END,
       CASE WHEN r.n %% 20 < 12 THEN r.at + interval '5 seconds' END,
       CASE WHEN r.n %% 20 < 2 + %(seed)s %% 2 THEN r.at + interval '10 minutes' END
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS c(id, n)
CROSS JOIN LATERAL (
    SELECT c.n + %(seed)s AS n,
           timestamptz '2020-02-01 00:00:00+00'
           + interval '1 second' * ((c.n * 7919 + %(seed)s * 104729) %% 2505600) AS at
) r
"""

# Every customer enrolled on the first of the month, one in ten in the holdout.
_ENROLLMENTS_SQL = """
INSERT INTO campaigns_enrollment (campaign_id, customer_id, step_id, state, "group",
    next_run_at, waiting_for, trigger_event_id, entered_at, exited_at, exit_reason)
SELECT %(campaign)s, c.id, NULL, 'exited', CASE WHEN c.n %% 10 = 0 THEN 'holdout'
       ELSE 'treatment' END, NULL, '', NULL, timestamptz '2020-02-01 00:00:00+00',
       timestamptz '2020-02-28 00:00:00+00', 'completed'
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS c(id, n)
"""

# 3% of the treatment and 2% of the holdout convert (picked by a hash of the enrollment, not by
# id, which would follow the holdout's every-tenth pattern). A treatment conversion is credited
# to the customer's last delivery from the campaign, as the engine does.
_CONVERSIONS_SQL = """
INSERT INTO campaigns_conversion (campaign_id, enrollment_id, customer_id, "group", event_id,
    delivery_id, variant_id, revenue, occurred_at)
SELECT e.campaign_id, e.id, e.customer_id, e."group", NULL, last.id, last.variant_id, 25.00,
       timestamptz '2020-02-10 00:00:00+00' + interval '1 minute' * (e.id %% 20000)
FROM campaigns_enrollment e
LEFT JOIN LATERAL (
    SELECT d.id, ss.variant_id FROM notifications_delivery d
    JOIN campaigns_stepsend ss ON ss.send_id = d.send_id
    WHERE d.customer_id = e.customer_id AND ss.campaign_id = e.campaign_id
      AND d.status = 'sent' AND e."group" = 'treatment'
    ORDER BY d.sent_at DESC LIMIT 1
) last ON true
WHERE e.campaign_id = %(campaign)s
  AND abs(hashtext(e.id::text)) %% 100 < CASE WHEN e."group" = 'treatment' THEN 3 ELSE 2 END
"""
