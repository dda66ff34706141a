"""Benchmarks of the segments API and of erasure (registered through audiences.benchmarks).

segment_api     the four-rule segment (SEGMENT_RULES, which segment_count counts too), created
                and counted through the segments API (real request handling) vs the same
                predicate in hand-written SQL; also times the first and the last page of its
                members (keyset pages).
customer_erase  erasing one customer with --size events (customer_erase, every app's
                receivers) vs a bare DELETE of the same events and customer row."""

from datetime import timedelta

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from audiences import demo
from audiences.models import Customer, Segment, customer_bucket
from audiences.selectors import customers_matching
from audiences.services_identity import customer_erase
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create

SEGMENT_KEY = "bench-engaged-lisbon-buyers"
PAGE = 1000  # the members endpoint's largest page
ERASE_RUNS = 3  # best of, alternating with the reference
ERASE_ID = "bench-erase-me"

SEGMENT_RUNS = 5  # best of; the first run of each side warms the cache and is not counted
SEGMENT_RULES = {"all": [
    {"stage": {"in": ["engagement", "conversion"]}},
    {"attribute": {"key": "city", "op": "eq", "value": "Lisbon"}},
    {"event": {"name": "purchase", "within_days": 30}},
    {"consent": {"topic": "offers"}},
]}
# What a developer would write for the same segment. The topic's existence is part of the
# meaning (a deleted topic matches no one), as in the compiler.
SEGMENT_SQL = """
SELECT count(*) FROM audiences_customer c
WHERE c.stage IN ('engagement', 'conversion')
  AND c.attributes ->> 'city' = 'Lisbon'
  AND NOT c.push_opt_out
  AND EXISTS (SELECT 1 FROM audiences_event e
              WHERE e.customer_id = c.id AND e.name = 'purchase' AND e.occurred_at >= %s)
  AND EXISTS (SELECT 1 FROM audiences_topic WHERE key = 'offers')
  AND NOT EXISTS (SELECT 1 FROM audiences_topicoptout o JOIN audiences_topic t ON t.id = o.topic_id
                  WHERE o.customer_id = c.id AND t.key = 'offers')
"""


def _require_postgresql(name: str) -> None:
    if connection.vendor != "postgresql":
        raise CommandError(f"{name} runs on PostgreSQL: set DATABASE_URL.")


def _client(name: str, scopes: list[str]) -> Client:
    ApiKey.objects.filter(name=name).delete()
    key = api_key_create(name=name, scopes=scopes)[1]
    return Client(HTTP_AUTHORIZATION=f"Api-Key {key}")


def _get(client: Client, url: str) -> dict:
    response = client.get(url)
    if response.status_code != 200:
        raise AssertionError(f"{url} answered {response.status_code}: {response.content[:300]!r}")
    return response.json()


@benchmark("segment_api", default_size=1_000_000)
def segment_api(*, size: int, log) -> BenchResult:
    """The segments API's live count vs hand-written SQL, and its first and last member page."""
    _require_postgresql("segment_api")
    log(f"Ensuring the demo data set of {size:,} customers ...")
    demo.seed(customers=size, log=log)
    client = _client("bench segment_api", [ApiKey.Scope.SEGMENTS_READ,
                                           ApiKey.Scope.SEGMENTS_WRITE])
    Segment.objects.filter(key=SEGMENT_KEY).delete()
    created = client.post("/api/v1/segments/", {"key": SEGMENT_KEY, "name": SEGMENT_KEY,
                                                "rules": SEGMENT_RULES},
                          content_type="application/json")
    if created.status_code != 201:
        raise AssertionError(f"Creating the segment answered {created.status_code}.")
    ours_times, ref_times = [], []
    for run in range(SEGMENT_RUNS + 1):
        with timed() as ours:
            count = _get(client, f"/api/v1/segments/{SEGMENT_KEY}/count/")["count"]
        with timed() as ref, connection.cursor() as cursor:
            cursor.execute(SEGMENT_SQL, [timezone.now() - timedelta(days=30)])
            expected = cursor.fetchone()[0]
        if count != expected:
            raise AssertionError(f"The API counted {count:,}, the SQL {expected:,}.")
        log(f"run {run}: API {ours.seconds:.3f}s, SQL {ref.seconds:.3f}s, {count:,}")
        if run:  # run 0 warms the cache
            ours_times.append(ours.seconds)
            ref_times.append(ref.seconds)
    first, last = _member_pages(client, log)
    Segment.objects.filter(key=SEGMENT_KEY).delete()
    return BenchResult(
        ours_s=min(ours_times), ref="hand-written SQL count, same predicate, cursor",
        ref_s=min(ref_times),
        extra={"count": count, "members_first_page_s": round(first, 4),
               "members_last_page_s": round(last, 4), "page": PAGE,
               "peak_rss_mb": peak_rss_mb()},
    )


def _member_pages(client: Client, log) -> tuple[float, float]:
    """Seconds for the first page of members and for the last one: with keyset pages both
    read one page's worth (an offset would read every member before the last page)."""
    url = f"/api/v1/segments/{SEGMENT_KEY}/members/?limit={PAGE}"
    with timed() as first:
        _get(client, url)
    tail = customers_matching(SEGMENT_RULES).order_by("-pk").values_list("pk", flat=True)
    before_last = tail[PAGE] if tail[PAGE:PAGE + 1].exists() else 0
    with timed() as last:
        page = _get(client, f"{url}&after={before_last}")
    if page["next"] is not None:
        raise AssertionError("The last page has a next page.")
    log(f"members: first page {first.seconds:.3f}s, last page {last.seconds:.3f}s")
    return first.seconds, last.seconds


@benchmark("customer_erase", default_size=100_000)
def customer_erase_bench(*, size: int, log) -> BenchResult:
    """Erase a customer with --size events vs DELETE of the events and the row."""
    _require_postgresql("customer_erase")
    ours_times, ref_times = [], []
    for run in range(ERASE_RUNS):
        customer = _customer_with_events(size)
        with timed() as ours:
            erasure = customer_erase(customer=customer, erased_by="bench customer_erase")
        if erasure.removed["events"] != size:
            raise AssertionError(f"{erasure.removed['events']:,} events erased of {size:,}.")
        customer = _customer_with_events(size)
        with timed() as ref, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audiences_event WHERE customer_id = %s", [customer.pk])
            cursor.execute("DELETE FROM audiences_customer WHERE id = %s", [customer.pk])
        log(f"run {run}: customer_erase {ours.seconds:.3f}s, DELETE {ref.seconds:.3f}s")
        ours_times.append(ours.seconds)
        ref_times.append(ref.seconds)
    return BenchResult(
        ours_s=min(ours_times), ref="DELETE of the events and the customer row",
        ref_s=min(ref_times), extra={"events": size, "peak_rss_mb": peak_rss_mb()},
    )


def _customer_with_events(size: int) -> Customer:
    Customer.objects.filter(external_id=ERASE_ID).delete()
    customer = Customer.objects.create(external_id=ERASE_ID, bucket=customer_bucket(ERASE_ID))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audiences_event (customer_id, name, properties, occurred_at, "
            "received_at) SELECT %s, 'screen_view', jsonb_build_object('n', n), "
            "now() - n * interval '1 second', now() FROM generate_series(1, %s) n",
            [customer.pk, size],
        )
    return customer
