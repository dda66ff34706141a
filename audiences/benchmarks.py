"""Benchmarks of audiences for ``python manage.py bench NAME [--size N]``.

segment_count   a four-rule segment counted by the rules compiler vs the same predicate written
                by hand in SQL, on the demo scale data set of --size customers (PostgreSQL).
event_ingest    --size events posted to the batch API (batches of 1,000, real request handling
                through django.test.Client) vs Event.objects.bulk_create of the same rows.

segment_api and customer_erase are in audiences.bench_identity, with the segment both count.

Each makes sure its data set exists first (audiences.demo, idempotent) and measures both sides
in the same run, interleaved, so a busy machine slows both alike."""

import json
from datetime import datetime, timedelta

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from audiences import demo
from audiences.bench_identity import (  # also registers segment_api and customer_erase
    SEGMENT_RULES,
    SEGMENT_RUNS,
    SEGMENT_SQL,
)
from audiences.models import Customer, Event, StageTransition, customer_bucket
from audiences.selectors import customers_matching
from journeyhub.bench import BenchResult, api_post_all, benchmark, peak_rss_mb, timed
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create

INGEST_BATCH = 1000  # the batch API's maximum
INGEST_CUSTOMERS = 1000  # events spread over this many customers, as a busy hour would
INGEST_RUNS = 2
INGEST_PREFIX = "bench-ingest-"
INGEST_EVENTS = [  # name, properties: a day's mix for a food and travel app
    ("app_open", {}), ("destination_guide_viewed", {"destination": "Lisbon"}),
    ("destination_guide_viewed", {"destination": "Kyoto"}),
    ("order_placed", {"restaurant": "Tasca do Chico", "total": 23.5, "items": 2}),
    ("purchase", {"total": 23.5, "currency": "EUR"}),
    ("notification_opened", {"campaign": "Weekend offer"}),
]


@benchmark("segment_count", default_size=1_000_000)
def segment_count(*, size: int, log) -> BenchResult:
    """Count a 4-rule segment: rules compiler vs hand-written SQL (PostgreSQL)."""
    if connection.vendor != "postgresql":
        raise CommandError("segment_count runs on PostgreSQL: set DATABASE_URL.")
    log(f"Ensuring the demo data set of {size:,} customers ...")
    demo.seed(customers=size, log=log)
    ours_times, ref_times, counts = [], [], set()
    for run in range(SEGMENT_RUNS + 1):
        since = timezone.now() - timedelta(days=30)
        with timed() as ours:
            ours_count = customers_matching(SEGMENT_RULES).count()
        with timed() as ref, connection.cursor() as cursor:
            cursor.execute(SEGMENT_SQL, [since])
            ref_count = cursor.fetchone()[0]
        if ours_count != ref_count:
            raise AssertionError(f"The compiler counted {ours_count:,}, the SQL {ref_count:,}.")
        counts.add(ours_count)
        log(f"run {run}: compiler {ours.seconds:.3f}s, SQL {ref.seconds:.3f}s, {ours_count:,}")
        if run:  # run 0 warms the cache
            ours_times.append(ours.seconds)
            ref_times.append(ref.seconds)
    return BenchResult(
        ours_s=min(ours_times), ref="hand-written SQL, same predicate, cursor",
        ref_s=min(ref_times),
        extra={"count": max(counts), "customers": Customer.objects.count(),
               "peak_rss_mb": peak_rss_mb()},
    )


@benchmark("event_ingest", default_size=100_000)
def event_ingest(*, size: int, log) -> BenchResult:
    """Post events to /api/v1/events/batch/ vs Event.objects.bulk_create of the same rows."""
    customers = _ingest_customers()
    key = _ingest_api_key()
    ours_times, ref_times = [], []
    for run in range(INGEST_RUNS):
        items = _ingest_items(size, run)
        # Encoded before the clock starts: the sender's JSON is not the server's work.
        bodies = [json.dumps({"events": items[i:i + INGEST_BATCH]})
                  for i in range(0, len(items), INGEST_BATCH)]
        _ingest_reset(customers)
        with timed() as ours:
            api_post_all(reverse("api-events-batch"), bodies, key)
        _check_stored(customers, size)
        log(f"run {run}: API {ours.seconds:.2f}s ({size / ours.seconds:,.0f} events/s)")
        _ingest_reset(customers)
        with timed() as ref:
            _bulk_insert(items, customers)
        _check_stored(customers, size)
        log(f"run {run}: bulk_create {ref.seconds:.2f}s ({size / ref.seconds:,.0f} events/s)")
        ours_times.append(ours.seconds)
        ref_times.append(ref.seconds)
    _ingest_reset(customers)
    return BenchResult(
        ours_s=min(ours_times), ref=f"Event.objects.bulk_create, batches of {INGEST_BATCH}",
        ref_s=min(ref_times),
        extra={"batch": INGEST_BATCH, "events_per_s": round(size / min(ours_times)),
               "peak_rss_mb": peak_rss_mb()},
    )


def _ingest_customers() -> dict[str, int]:
    """The benchmark's own customers (not the demo ones, whose journeys it would change)."""
    ids = [f"{INGEST_PREFIX}{i:04d}" for i in range(INGEST_CUSTOMERS)]
    Customer.objects.bulk_create(
        [Customer(external_id=eid, bucket=customer_bucket(eid)) for eid in ids],
        ignore_conflicts=True,
    )
    return dict(Customer.objects.filter(external_id__in=ids).values_list("external_id", "pk"))


def _ingest_api_key() -> str:
    ApiKey.objects.filter(name="bench event_ingest").delete()
    return api_key_create(name="bench event_ingest", scopes=[ApiKey.Scope.EVENTS_WRITE])[1]


def _ingest_items(size: int, run: int) -> list[dict]:
    start = timezone.now() - timedelta(hours=1)
    return [
        {"customer_id": f"{INGEST_PREFIX}{i % INGEST_CUSTOMERS:04d}",
         "name": INGEST_EVENTS[i % len(INGEST_EVENTS)][0],
         "properties": INGEST_EVENTS[i % len(INGEST_EVENTS)][1],
         "occurred_at": (start + timedelta(milliseconds=i)).isoformat(),
         "event_id": f"bench-{run}-{i}"}
        for i in range(size)
    ]


def _ingest_reset(customers: dict[str, int]) -> None:
    """Same starting point for every side: no events, everyone in engagement (so the first
    purchase of each moves them, as it would for real)."""
    with transaction.atomic():
        Event.objects.filter(customer_id__in=customers.values()).delete()
        StageTransition.objects.filter(customer_id__in=customers.values()).delete()
        Customer.objects.filter(pk__in=customers.values()).update(
            stage="engagement", last_seen_at=None
        )


def _check_stored(customers: dict[str, int], size: int) -> None:
    stored = Event.objects.filter(customer_id__in=customers.values()).count()
    if stored != size:
        raise AssertionError(f"{stored:,} events stored out of {size:,} sent.")


def _bulk_insert(items: list[dict], customers: dict[str, int]) -> None:
    now = timezone.now()
    for i in range(0, len(items), INGEST_BATCH):
        Event.objects.bulk_create([
            Event(customer_id=customers[item["customer_id"]], name=item["name"],
                  properties=item["properties"],
                  occurred_at=datetime.fromisoformat(item["occurred_at"]),
                  received_at=now, client_event_id=item["event_id"])
            for item in items[i:i + INGEST_BATCH]
        ])

