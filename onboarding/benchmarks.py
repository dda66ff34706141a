"""Benchmarks of onboarding for ``python manage.py bench NAME [--size N]`` (PostgreSQL).

import_customers  a CSV of --size customers, one FCM device and five attributes each, through
                  ``manage.py import_customers`` (a child process: its peak RSS is the
                  import's own) into a database that already holds as many other customers,
                  vs PostgreSQL COPY of the same file into a bare staging table and one
                  INSERT ... SELECT into each of the same tables.
customers_batch   the same customers through POST /api/v1/customers/batch/ (1,000 a request,
                  one client, real request handling) vs bulk_create of the same rows in
                  batches of 1,000.

Each side writes customers of its own (the reference's external ids and tokens get a prefix),
and finds the same database: the reference's rows are removed (and vacuumed) before ours run,
as are a run's rows before the next."""

import csv
import json
import os
import resource
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from push_notifications.models import GCMDevice

from audiences.models import Customer, customer_bucket
from journeyhub.bench import (
    BenchResult,
    api_post_all,
    benchmark,
    database_url,
    peak_rss_mb,
    timed,
)
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create
from notifications.models import Device
from onboarding.codes import referral_codes

PREFIX = "bench-import-"  # every customer the import benchmarks write starts with this
OTHER_PREFIX = "bench-other-"  # the customers already there
BATCH = 1000  # the batch API's maximum
BENCH_TABLES = ("audiences_customer", "push_notifications_gcmdevice", "notifications_device")
CHILD_TIMEOUT_SECONDS = 3600
HEADER = ("external_id", "first_name", "last_name", "email", "locale", "time_zone",
          "attr.plan", "attr.city", "attr.visits:number", "attr.vip:boolean", "attr.source",
          "device_kind", "device_token", "device_platform", "device_app_version")
CITIES = ("Lisbon", "Porto", "Kyoto", "Osaka", "Berlin")
STAGING_SQL = f"CREATE TEMP TABLE bench_stage ({', '.join(f'c{i} text' for i in range(15))})"
# The reference: what someone who knows PostgreSQL would write for the same result.
REFERENCE_INSERTS = (
    """INSERT INTO audiences_customer (external_id, first_name, last_name, email, locale,
           time_zone, attributes, stage, referral_code, bucket, push_opt_out, created_at,
           updated_at)
       SELECT 'ref-' || c0, c1, c2, c3, c4, c5,
           jsonb_build_object('plan', c6, 'city', c7, 'visits', c8::int, 'vip', c9 = 'yes',
                              'source', c10),
           'awareness', upper(substr(md5(random()::text || c0), 1, 16)),
           abs(hashtext(c0)) % 10000, false, now(), now()
       FROM bench_stage""",
    """INSERT INTO push_notifications_gcmdevice (registration_id, active, date_created,
           cloud_message_type)
       SELECT 'ref-' || c12, true, now(), 'FCM' FROM bench_stage""",
    """INSERT INTO notifications_device (customer_id, kind, platform, fcm_id, app_version,
           locale, time_zone, environment, permission, is_active, deactivated_reason,
           created_at, last_seen_at)
       SELECT c.id, 'fcm', s.c13, p.id, s.c14, '', '', 'production', 'granted', true, '',
           now(), now()
       FROM bench_stage s JOIN audiences_customer c ON c.external_id = 'ref-' || s.c0
       JOIN push_notifications_gcmdevice p ON p.registration_id = 'ref-' || s.c12""",
)


@benchmark("import_customers", default_size=1_000_000)
def import_customers(*, size: int, log) -> BenchResult:
    """A CSV of customers with devices through import_customers vs COPY + INSERT ... SELECT."""
    _require_postgresql()
    _others_ensure(size, log)
    _clear(log)
    path = _csv_ensure(size, log)
    log("reference: COPY into a bare staging table, INSERT ... SELECT into the tables ...")
    with timed() as ref:
        _reference(path)
    log(f"reference: {ref.seconds:.1f}s ({size / ref.seconds:,.0f} rows/s)")
    _clear(log)  # ours finds the same database: the other customers only
    log("ours: manage.py import_customers ...")
    ours = _child_import(path)
    log(f"ours: {ours['seconds']:.1f}s ({size / ours['seconds']:,.0f} rows/s), peak RSS "
        f"{ours['peak_rss_mb']} MB")
    _check_imported(size)
    _clear(log)
    return BenchResult(
        ours_s=ours["seconds"], ref="COPY into a staging table + INSERT ... SELECT per table",
        ref_s=ref.seconds,
        extra={"rows_per_s": round(size / ours["seconds"]), "peak_rss_mb": ours["peak_rss_mb"],
               "helper_peak_rss_mb": ours["helper_peak_rss_mb"],
               "customers_before": Customer.objects.count()},
    )


@benchmark("customers_batch", default_size=100_000)
def customers_batch(*, size: int, log) -> BenchResult:
    """Customers with devices through POST /customers/batch/ vs bulk_create."""
    _require_postgresql()
    _clear(log)
    items = [_item(i) for i in range(size)]
    bodies = [json.dumps({"customers": items[i:i + BATCH]}) for i in range(0, size, BATCH)]
    key = _api_key()
    with timed() as ours:
        api_post_all(reverse("api-customers-batch"), bodies, key)
    log(f"API: {ours.seconds:.1f}s ({size / ours.seconds:,.0f} customers/s)")
    _check_imported(size)
    with timed() as ref:
        _bulk_create(items)
    log(f"bulk_create: {ref.seconds:.1f}s ({size / ref.seconds:,.0f} customers/s)")
    _clear(log)
    return BenchResult(
        ours_s=ours.seconds, ref=f"bulk_create of customers, FCM rows and devices, {BATCH} "
                                 "a batch", ref_s=ref.seconds,
        extra={"customers_per_s": round(size / ours.seconds), "batch": BATCH,
               "peak_rss_mb": peak_rss_mb()},
    )


def _require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise CommandError("The import benchmarks compare with PostgreSQL: set DATABASE_URL.")


def _row(i: int) -> tuple:
    return (f"{PREFIX}{i}", "Ana", "Silva", f"customer{i}@example.com", "pt-PT",
            "Europe/Lisbon", "pro" if i % 3 else "free", CITIES[i % len(CITIES)], str(i % 50),
            "yes" if i % 7 == 0 else "no", "import", "fcm",
            f"bench{i:09d}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9Fq3x", "android", "4.2.0")


def _item(i: int) -> dict:
    row = _row(i)
    return {"external_id": row[0], "first_name": row[1], "last_name": row[2],
            "email": row[3], "locale": row[4], "time_zone": row[5],
            "attributes": {"plan": row[6], "city": row[7], "visits": i % 50,
                           "vip": row[9] == "yes", "source": row[10]},
            "devices": [{"kind": "fcm", "token": row[12], "platform": row[13],
                         "app_version": row[14]}]}


def _csv_ensure(size: int, log) -> str:
    folder = os.path.join(settings.VAR_DIR, "bench")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"customers-{size}.csv")
    if not os.path.exists(path):
        log(f"writing {path} ...")
        with open(path + ".part", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(_row(i) for i in range(size))
        os.replace(path + ".part", path)
    return path


def _others_ensure(size: int, log) -> None:
    """``size`` other customers already in the database, as a brand's existing base."""
    have = Customer.objects.filter(external_id__startswith=OTHER_PREFIX).count()
    if have >= size:
        return
    log(f"adding {size - have:,} other customers ...")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO audiences_customer (external_id, first_name, last_name, email,
                   locale, time_zone, attributes, stage, referral_code, bucket, push_opt_out,
                   created_at, updated_at)
               SELECT %s || n, '', '', '', 'en', 'UTC', '{}', 'engagement',
                   upper(substr(md5(random()::text || n), 1, 16)), n %% 10000, false,
                   now(), now()
               FROM generate_series(%s, %s - 1) AS n
               ON CONFLICT DO NOTHING""", [OTHER_PREFIX, have, size])
        cursor.execute("ANALYZE audiences_customer")


def _clear(log) -> None:
    """Remove what a run of these benchmarks wrote (its customers, devices and tokens), in
    SQL: the ORM's cascade would load a million rows to delete them."""
    if not Customer.objects.filter(external_id__startswith=PREFIX).exists() and not \
            Customer.objects.filter(external_id__startswith="ref-" + PREFIX).exists():
        return
    log("removing the rows of an earlier run ...")
    mine = "(external_id LIKE %s OR external_id LIKE %s)"
    patterns = [PREFIX + "%", "ref-" + PREFIX + "%"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM notifications_device WHERE customer_id IN "
                       f"(SELECT id FROM audiences_customer WHERE {mine})", patterns)
        cursor.execute(f"DELETE FROM audiences_customer WHERE {mine}", patterns)
        cursor.execute("DELETE FROM push_notifications_gcmdevice WHERE registration_id LIKE "
                       "'bench%%' OR registration_id LIKE 'ref-bench%%'")
    with connection.cursor() as cursor:  # their space reused, and the planner told
        for table in BENCH_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")


def _reference(path: str) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(STAGING_SQL)
        with open(path, "rb") as handle, cursor.cursor.copy(
                "COPY bench_stage FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        for statement in REFERENCE_INSERTS:
            cursor.execute(statement)
        cursor.execute("DROP TABLE bench_stage")


def _child_import(path: str) -> dict:
    """manage.py import_customers in a fresh interpreter; its time and peak RSS."""
    env = {**os.environ, "DATABASE_URL": database_url()}
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", "import django, sys; django.setup(); "
         "from onboarding.benchmarks import child_main; child_main(sys.argv[1])", path],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
        timeout=CHILD_TIMEOUT_SECONDS, check=False)
    if finished.returncode != 0:
        raise RuntimeError(f"import_customers failed:\n{finished.stderr[-3000:]}")
    report = json.loads(finished.stdout.strip().splitlines()[-1])
    report["seconds"] = time.perf_counter() - started
    return report


def child_main(path: str) -> None:
    """In the child: the command, then one JSON line with its peak RSS and the largest of
    its checking helpers' (onboarding.parallel; forked, so they share most of it)."""
    with open(os.devnull, "w") as sink:
        call_command("import_customers", path, "--no-progress", stdout=sink)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "helper_peak_rss_mb": round(helpers, 1)}))


def _check_imported(size: int) -> None:
    found = Device.objects.filter(customer__external_id__startswith=PREFIX).count()
    if found != size:
        raise AssertionError(f"{found:,} devices imported out of {size:,}.")


def _api_key() -> str:
    ApiKey.objects.filter(name="bench customers_batch").delete()
    return api_key_create(name="bench customers_batch",
                          scopes=[ApiKey.Scope.CUSTOMERS_WRITE])[1]


def _bulk_create(items: list[dict]) -> None:
    now = timezone.now()
    for start in range(0, len(items), BATCH):
        chunk = items[start:start + BATCH]
        codes = referral_codes(len(chunk))
        with transaction.atomic():
            customers = Customer.objects.bulk_create([
                Customer(external_id="ref-" + item["external_id"], first_name=item["first_name"],
                         last_name=item["last_name"], email=item["email"],
                         locale=item["locale"], time_zone=item["time_zone"],
                         attributes=item["attributes"], referral_code=code,
                         bucket=customer_bucket(item["external_id"]), created_at=now)
                for item, code in zip(chunk, codes, strict=True)])
            tokens = GCMDevice.objects.bulk_create([
                GCMDevice(registration_id="ref-" + item["devices"][0]["token"],
                          cloud_message_type="FCM") for item in chunk])
            Device.objects.bulk_create([
                Device(customer=customer, kind="fcm", platform="android", fcm=token,
                       app_version="4.2.0")
                for customer, token in zip(customers, tokens, strict=True)])
