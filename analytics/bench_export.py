"""``python manage.py bench export --size N``: our streaming CSV export of N deliveries vs
PostgreSQL's ``COPY (SELECT the same columns) TO STDOUT WITH CSV``, in the same run.

Each side runs RUNS times, alternately, and the medians are compared. Ours runs in a child
process (the export_stream that the command and the admin use), so its peak RSS is the
export's own, not this process's (which built the data). django-import-export's default
export of the same columns is timed too, as the peer, on a slice of PEER_MAX_ROWS rows: it
builds the whole file in memory."""

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime

from django.conf import settings
from django.db import connection, transaction
from import_export import resources

from analytics.exports import DELIVERIES, ExportFilter, export_stream
from audiences.models import Customer, Segment
from campaigns.models import Campaign, Step, StepSend, Variant
from journeyhub.bench import BenchResult, benchmark, database_url, peak_rss_mb, timed
from notifications.benchmarks import data_set_ensure
from notifications.models import Delivery, Send, Template

# The bench's deliveries are dated January 2020, where no other delivery lives, so the export
# and the reference select exactly them by date, as an analyst would.
BENCH_SINCE, BENCH_UNTIL = date(2020, 1, 1), date(2020, 1, 31)
BENCH_SOURCE = "bench:export"
SENDS = 10  # the deliveries are split over this many sends; half come from a campaign step
PEER_MAX_ROWS = 100_000  # django-import-export holds every row in memory: a slice is enough
CHILD_TIMEOUT_SECONDS = 3600
RUNS = 3  # each side is timed this many times, alternately, and the median kept
PEER_FIELDS = (  # the columns of our export, as django-import-export paths
    "id", "send_id", "send__step_send__campaign_id", "send__step_send__campaign__name",
    "send__step_send__step_id", "send__step_send__variant__name", "customer__external_id",
    "kind", "application_id", "status", "reason", "error", "created_at", "sent_at",
    "received_at", "opened_at",
)


@benchmark("export", default_size=1_000_000,
           help="Streaming CSV export of N deliveries vs COPY (SELECT ...) TO STDOUT WITH CSV.")
def export(*, size: int, log) -> BenchResult:
    if connection.vendor != "postgresql":
        raise RuntimeError("The export bench compares with PostgreSQL's COPY: use PostgreSQL.")
    _data_ensure(size, log)
    ours_runs, ref_runs = [], []
    for _ in range(RUNS):  # alternated, so a busy moment on a shared machine hits both sides
        ours_runs.append(_child("ours", size))
        log(f"ours: {ours_runs[-1]['rows']:,} rows, {ours_runs[-1]['bytes']:,} bytes in "
            f"{ours_runs[-1]['seconds']:.2f}s, peak RSS {ours_runs[-1]['peak_rss_mb']} MB")
        ref_runs.append(_copy_reference())
        log(f"COPY: {ref_runs[-1][0]:,} rows, {ref_runs[-1][1]:,} bytes in "
            f"{ref_runs[-1][2]:.2f}s")
    ours = {**ours_runs[0], "seconds": statistics.median(r["seconds"] for r in ours_runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in ours_runs)}
    ref_rows, ref_bytes = ref_runs[0][:2]
    ref_seconds = statistics.median(r[2] for r in ref_runs)
    if ours["rows"] != ref_rows:
        raise AssertionError(f"row counts differ: ours {ours['rows']}, COPY {ref_rows}")
    peer = _child("peer", min(size, PEER_MAX_ROWS))
    log(f"django-import-export: {peer['rows']:,} rows in {peer['seconds']:.2f}s, "
        f"peak RSS {peer['peak_rss_mb']} MB")
    return BenchResult(
        ours["seconds"], "PostgreSQL COPY (SELECT the same columns) TO STDOUT WITH CSV",
        ref_seconds, extra={
            "rows": ref_rows, "bytes": ours["bytes"], "ref_bytes": ref_bytes,
            "peak_rss_mb": ours["peak_rss_mb"], "rows_per_s": round(ref_rows / ours["seconds"]),
            "peer": "django-import-export ModelResource.export() of the same columns, as CSV",
            "peer_rows": peer["rows"], "peer_s": round(peer["seconds"], 4),
            "peer_peak_rss_mb": peer["peak_rss_mb"],
            "peer_s_per_1m_rows": round(peer["seconds"] * 1_000_000 / peer["rows"], 1),
            "ours_s_per_1m_rows": round(ours["seconds"] * 1_000_000 / ref_rows, 1),
            "runs": RUNS, "ours_runs_s": [round(r["seconds"], 2) for r in ours_runs],
            "ref_runs_s": [round(r[2], 2) for r in ref_runs],
        })


def _filters() -> ExportFilter:
    return ExportFilter(since=BENCH_SINCE, until=BENCH_UNTIL)


# --- the two sides ------------------------------------------------------------------------

def _child(mode: str, rows: int) -> dict:
    """Run ``child_main`` in a fresh interpreter on the same database; returns its report."""
    code = ("import django, sys; django.setup(); "
            "from analytics.bench_export import child_main; child_main(sys.argv[1:])")
    env = {**os.environ, "DATABASE_URL": database_url(),
           "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE",
                                                    "journeyhub.settings")}
    finished = subprocess.run(
        [sys.executable, "-c", code, mode, str(rows)], cwd=settings.BASE_DIR, env=env,
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"the {mode} export failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def child_main(argv: list[str]) -> None:
    """In the child: export to /dev/null and print one JSON line with time, rows and RSS."""
    mode, limit = argv[0], int(argv[1])
    counted = {"rows": 0}
    written = 0
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        if mode == "ours":
            pieces = export_stream(dataset=DELIVERIES, file_format="csv", filters=_filters(),
                                   progress=lambda done: counted.update(rows=done))
        else:
            pieces = _peer_pieces(limit, counted)
        for piece in pieces:
            written += sink.write(piece)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "rows": counted["rows"], "bytes": written,
                      "peak_rss_mb": peak_rss_mb()}))


def _peer_pieces(limit: int, counted: dict):
    """What a Django developer writes with django-import-export: a ModelResource of the same
    columns, exported to a tablib Dataset, rendered as CSV."""
    class DeliveryResource(resources.ModelResource):
        class Meta:
            model = Delivery
            fields = PEER_FIELDS
            export_order = PEER_FIELDS

    # select_related, as its docs advise: without it each row costs four more queries.
    queryset = DELIVERIES.queryset(_filters()).order_by("id").select_related(
        "customer", "send__step_send__campaign", "send__step_send__variant")
    last_id = queryset.values_list("id", flat=True)[limit - 1:limit].get()
    dataset = DeliveryResource().export(queryset=queryset.filter(id__lte=last_id))
    counted["rows"] = len(dataset)
    yield dataset.csv.encode()


def _copy_reference() -> tuple[int, int, float]:
    """The same columns, joins and filter, formatted by PostgreSQL itself. No ORDER BY, as
    ours has none (with one, COPY sorts in parallel workers, which a cursor cannot use)."""
    start, end = _filters().time_range()
    sql = _COPY_SQL.replace("%(start)s", _literal(start)).replace("%(end)s", _literal(end))
    rows = written = 0
    raw = connection.connection  # psycopg 3: COPY streams through cursor.copy()
    with timed() as watch, open(os.devnull, "wb") as sink, raw.cursor() as cursor:
        with cursor.copy(sql) as copy:
            for piece in copy:
                written += sink.write(piece)
                rows += bytes(piece).count(b"\n")  # no value holds a newline in this data
    return rows - 1, written, watch.seconds  # less the header line


def _literal(moment: datetime) -> str:
    return f"'{moment.isoformat()}'::timestamptz"


_COPY_SQL = """
COPY (
    SELECT d.id, d.send_id, ss.campaign_id, c.name, ss.step_id, v.name, cu.external_id, d.kind,
           d.application_id, d.status, d.reason, d.error, d.created_at, d.sent_at,
           d.received_at, d.opened_at
    FROM notifications_delivery d
    JOIN audiences_customer cu ON cu.id = d.customer_id
    LEFT JOIN notifications_send s ON s.id = d.send_id
    LEFT JOIN campaigns_stepsend ss ON ss.send_id = s.id
    LEFT JOIN campaigns_campaign c ON c.id = ss.campaign_id
    LEFT JOIN campaigns_variant v ON v.id = ss.variant_id
    WHERE d.created_at >= %(start)s AND d.created_at < %(end)s
) TO STDOUT WITH (FORMAT csv, HEADER)
"""


# --- the data set -------------------------------------------------------------------------

def _data_ensure(size: int, log) -> None:
    """``size`` deliveries dated January 2020 over size/SENDS customers (built once)."""
    have = Delivery.objects.filter(send__source=BENCH_SOURCE).count()
    if have == size:
        return
    if have:
        log(f"dropping the {have:,} bench deliveries of another size")
        Send.objects.filter(source=BENCH_SOURCE).delete()
    per_send = -(-size // SENDS)
    customer_ids = _customers_ensure(per_send, log)
    campaign, step, variants = _bench_campaign()
    started = time.perf_counter()
    for number in range(SENDS):
        count = min(per_send, size - number * per_send)
        if count <= 0:
            break
        with transaction.atomic():
            send = Send.objects.create(template=step.template, source=BENCH_SOURCE,
                                       created_at=datetime(2020, 1, 1, tzinfo=UTC))
            if number % 2 == 0:  # half the sends come from the campaign's A/B step
                StepSend.objects.create(step=step, campaign=campaign, send=send,
                                        variant=variants[number // 2 % 2])
            with connection.cursor() as cursor:
                cursor.execute(_DELIVERIES_SQL, {"send": send.pk, "ids": customer_ids[:count],
                                                 "seed": number})
        log(f"{(number + 1) * per_send:>10,} / {size:,} deliveries "
            f"{time.perf_counter() - started:6.1f}s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notifications_delivery")


def _customers_ensure(count: int, log) -> list[int]:
    if Customer.objects.count() < count:
        data_set_ensure(count, log)
    return list(Customer.objects.order_by("id").values_list("id", flat=True)[:count])


def _bench_campaign():
    template, _ = Template.objects.get_or_create(
        name="bench: export", defaults={"title": "Hi", "body": "A limited-time offer"})
    segment, _ = Segment.objects.get_or_create(name="bench: everyone",
                                               defaults={"rules": {"all": []}})
    campaign, _ = Campaign.objects.get_or_create(
        name="bench: export", defaults={"segment": segment, "status": "completed"})
    step, _ = Step.objects.get_or_create(campaign=campaign, position=1,
                                         defaults={"kind": "send", "template": template})
    variants = [Variant.objects.get_or_create(step=step, name=name,
                                              defaults={"template": template})[0]
                for name in ("A", "B")]
    return campaign, step, variants


# One row per customer: sent (mostly; some received and opened), failed or skipped with a
# reason, spread over January 2020. No device: the unique key is then (send, customer).
_DELIVERIES_SQL = """
INSERT INTO notifications_delivery (send_id, customer_id, device_id, kind, application_id,
    batch_no, status, reason, error, not_before, attempts, provider_message_id, created_at,
    sent_at, received_at, opened_at)
SELECT %(send)s, c.id, NULL, (ARRAY['apns', 'fcm', 'webpush'])[1 + r.n %% 3], 'default',
       NULL, CASE WHEN r.n %% 20 < 14 THEN 'sent' WHEN r.n %% 20 < 15 THEN 'failed'
                  ELSE 'skipped' END,
       CASE WHEN r.n %% 20 < 14 THEN '' WHEN r.n %% 20 < 15 THEN 'dead_token'
            WHEN r.n %% 20 < 18 THEN 'frequency_capped' ELSE 'opted_out' END,
       CASE WHEN r.n %% 20 = 14 THEN 'Unregistered: the token is no longer valid' ELSE '' END,
       NULL, 1, '', r.at,
       CASE WHEN r.n %% 20 < 14 THEN r.at + interval '2 seconds' END,
       CASE WHEN r.n %% 20 < 12 THEN r.at + interval '5 seconds' END,
       CASE WHEN r.n %% 20 < 3 THEN r.at + interval '10 minutes' END
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS c(id, n)
CROSS JOIN LATERAL (
    SELECT c.n + %(seed)s AS n,
           timestamptz '2020-01-01 00:00:00+00'
           + interval '1 second' * ((c.n * 7919 + %(seed)s * 104729) %% 2678400) AS at
) r
ORDER BY r.at
"""
