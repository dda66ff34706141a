"""Benchmarks of the delivery engine (python manage.py bench NAME --size N)."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences import demo as audiences_demo
from audiences.demo_data import external_id
from audiences.models import Customer, Segment, Topic
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from notifications import demo as notifications_demo
from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    Send,
    Template,
)
from notifications.sending.fanout import deliveries_materialise
from notifications.services import batches_create

EVERYONE = {"all": []}


def data_set_ensure(size: int, log) -> None:
    """The scale data set (customers with events, opt-outs and devices) up to ``size``."""
    if Customer.objects.filter(external_id=external_id(size)).exists():
        return
    log(f"building the data set: {size:,} customers (once)")
    audiences_demo.seed(
        customers=size, log=log,
        per_chunk=lambda lo, hi, t: notifications_demo.devices_seed_range(lo=lo, hi=hi, timings=t),
    )


def _bench_send() -> Send:
    template, _ = Template.objects.get_or_create(
        name="bench: offer", defaults={"title": "Hi {{ customer.first_name }}",
                                       "body": "A limited-time offer",
                                       "topic": Topic.objects.get(key="offers")},
    )
    segment, _ = Segment.objects.get_or_create(name="bench: everyone", defaults={"rules": EVERYONE})
    # Quiet hours off: the reference has no per-zone deferral, so the rows stay identical.
    return Send.objects.create(template=template, segment=segment, source="bench",
                               respect_quiet_hours=False)


@benchmark("fanout", default_size=100_000,
           help="Materialise deliveries for every customer vs one raw INSERT ... SELECT.")
def fanout(*, size: int, log) -> BenchResult:
    data_set_ensure(size, log)
    controls = DeliverySettings.load()
    controls.frequency_cap = 3  # the cap filter runs (nobody is capped: no recent sends)
    controls.save()
    send = _bench_send()
    now = timezone.now()
    with timed() as ours:
        with transaction.atomic():
            skipped, queued = deliveries_materialise(send=send, now=now)
            batches = batches_create(send=send, now=now)
    log(f"ours: {skipped:,} skipped + {queued:,} queued rows, {batches:,} batches")
    _forget(send)
    with timed() as ref:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_REFERENCE_SQL, _reference_params(send, now))
            ref_rows = cursor.rowcount
    log(f"reference: {ref_rows:,} rows")
    _forget(send)
    send.delete()
    if ref_rows != skipped + queued:
        raise AssertionError(f"row counts differ: ours {skipped + queued}, reference {ref_rows}")
    return BenchResult(ours.seconds, "one raw INSERT ... SELECT of the same rows", ref.seconds,
                       extra={"rows": ref_rows, "batches": batches, "peak_rss_mb": peak_rss_mb()})


def _forget(send: Send) -> None:
    Delivery.objects.filter(send=send)._raw_delete(Delivery.objects.db)
    DeliveryBatch.objects.filter(send=send).delete()


def _reference_params(send: Send, now) -> dict:
    controls = DeliverySettings.load()
    return {"send": send.pk, "now": now, "topic": send.template.topic_id,
            "cap": controls.frequency_cap,
            "since": now - timedelta(hours=controls.frequency_window_hours)}


# The same rows written by hand: a skipped row with its reason for every customer who cannot be
# reached, one queued row per reachable device for everyone else, numbered into batches of 500.
_REFERENCE_SQL = """
WITH capped AS (
    SELECT d.customer_id FROM notifications_delivery d JOIN notifications_send s ON s.id = d.send_id
    WHERE d.status = 'sent' AND d.sent_at >= %(since)s AND NOT s.cap_exempt
    GROUP BY d.customer_id HAVING count(DISTINCT d.send_id) >= %(cap)s
), targeted AS MATERIALIZED (
    SELECT c.id,
           CASE WHEN c.push_opt_out OR c.id IN (SELECT customer_id FROM audiences_topicoptout
                                                WHERE topic_id = %(topic)s) THEN 'opted_out'
                WHEN NOT EXISTS (SELECT 1 FROM notifications_device r
                                 WHERE r.customer_id = c.id AND r.is_active
                                   AND r.permission <> 'denied') THEN 'no_active_device'
                WHEN c.id IN (SELECT customer_id FROM capped) THEN 'frequency_capped'
           END AS reason
    FROM audiences_customer c
)
INSERT INTO notifications_delivery (send_id, customer_id, device_id, kind, application_id,
    status, reason, not_before, batch_no, error, attempts, provider_message_id, created_at)
SELECT %(send)s, t.id, NULL, '', '', 'skipped', t.reason, NULL::timestamptz, NULL::int, '', 0,
       '', %(now)s
FROM targeted t WHERE t.reason IS NOT NULL
UNION ALL
SELECT %(send)s, r.customer_id, r.id, r.kind, '', 'queued', '', NULL::timestamptz,
       (dense_rank() OVER (ORDER BY r.kind) * 1000000
        + (row_number() OVER (PARTITION BY r.kind ORDER BY r.customer_id, r.id) - 1) / 500),
       '', 0, '', %(now)s
FROM notifications_device r JOIN targeted t ON t.id = r.customer_id AND t.reason IS NULL
WHERE r.is_active AND r.permission <> 'denied'
"""
