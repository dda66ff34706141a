"""Benchmarks of the delivery engine (python manage.py bench NAME --size N)."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from push_notifications.models import GCMDevice
from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

from audiences import demo as audiences_demo
from audiences.demo_data import Timings, external_id
from audiences.models import Customer, Segment, Topic, customer_bucket
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from notifications import demo as notifications_demo
from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    Device,
    Send,
    Template,
)
from notifications.selectors import send_progress
from notifications.sending.fanout import deliveries_materialise
from notifications.services import batches_create, send_create

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


SEND_PREFIX = "sendbench-{size}-"  # one audience per size: a larger run leaves a smaller intact
SEND_WORKERS = 2  # worker processes...
SEND_CONCURRENCY = 2  # ...with this many pool processes each (a 2-core machine)
SEND_DEADLINE_SECONDS = 3600


@benchmark("send", default_size=10_000,
           help="Deliver N FCM messages through the pipeline (real workers, loopback FCM) vs "
                "GCMDevice.objects.filter(...).send_message(...) against the same FCM.")
def send(*, size: int, log) -> BenchResult:
    """Both sides talk to one loopback FCM process that speaks HTTP v1 (tests/fakes)."""
    _send_devices_ensure(size, log)
    cpu = {}  # CPU seconds per side: steadier than wall time on a busy machine
    with tempfile.TemporaryDirectory() as scratch, _FakeFcmProcess(Path(scratch)) as fcm:
        with _Workers(SEND_WORKERS, fcm.apps_file, Path(scratch), log) as workers:
            _workers_warm_up(size, log)
            with _cpu_spent(cpu, "ours", workers.pids), _cpu_spent(cpu, "fcm_ours", [fcm.pid]):
                ours = _send_through_pipeline(size, fcm, log)
        with _cpu_spent(cpu, "naive", [os.getpid()], children=False), \
                _cpu_spent(cpu, "fcm_naive", [fcm.pid]):
            naive = _send_naively(size, fcm, log)
        received = fcm.summary()["total"]
    if received < 2 * size:
        raise AssertionError(f"the fake received {received} messages, expected {2 * size}")
    per_message = {f"cpu_us_per_msg_{side}": round(1e6 * seconds / size)
                   for side, seconds in cpu.items()}
    return BenchResult(
        ours, "GCMDevice queryset send_message (django-push-notifications) to the same FCM",
        naive, extra={"messages_per_s": round(size / ours), "naive_messages_per_s":
                      round(size / naive), **per_message, "peak_rss_mb": peak_rss_mb(),
                      "workers": SEND_WORKERS, "pool_processes": SEND_CONCURRENCY},
    )


@contextmanager
def _cpu_spent(into: dict, side: str, pids: list[int], *, children: bool = True):
    """CPU seconds used by these processes (and their children) while the block runs (Linux)."""
    before = _cpu_seconds(pids, children)
    yield
    if before is not None and (after := _cpu_seconds(pids, children)) is not None:
        into[side] = after - before


def _cpu_seconds(pids: list[int], children: bool) -> float | None:
    ticks = 0
    try:
        for pid in pids:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if children else []
            for process in [pid, *map(int, kids)]:
                fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError):
        return None  # not Linux, or a process just ended
    return ticks / os.sysconf("SC_CLK_TCK")


def _send_devices_ensure(size: int, log) -> None:
    prefix = SEND_PREFIX.format(size=size)
    have = Customer.objects.filter(external_id__startswith=prefix).count()
    if have >= size:
        return
    log(f"creating {size - have:,} customers with one FCM device each (once)")
    for lo in range(have, size, 5000):
        ids = {f"{prefix}{i:08d}": f"B{size:X}Z{i:08d}" for i in range(lo, min(lo + 5000, size))}
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                Customer(external_id=x, bucket=customer_bucket(x), referral_code=code,
                         first_name="Bench", time_zone="UTC") for x, code in ids.items())
            tokens = GCMDevice.objects.bulk_create(
                GCMDevice(registration_id=f"token-{x}", cloud_message_type="FCM") for x in ids)
            Device.objects.bulk_create(
                Device(customer=c, kind="fcm", platform="android", fcm=t)
                for c, t in zip(customers, tokens, strict=True))
    audiences_demo.analyze(Timings(), [Customer, Device, GCMDevice])


def _send_through_pipeline(size: int, fcm, log) -> float:
    template = _send_template()
    segment, _ = Segment.objects.get_or_create(
        name=f"bench: send audience of {size}",
        defaults={"rules": {"profile": {"field": "external_id", "op": "contains",
                                        "value": SEND_PREFIX.format(size=size)}}})
    with timed() as ours:
        send = send_create(template=template, segment=segment, cap_exempt=True,
                           respect_quiet_hours=False, source="bench")
        _send_wait(send)
    progress = send_progress(send)
    log(f"pipeline: {progress.sent:,} sent in {ours.seconds:.1f}s")
    if progress.sent != size:
        raise AssertionError(f"expected {size} sent, got {progress}")
    return ours.seconds


def _send_template() -> Template:
    template, _ = Template.objects.get_or_create(
        name="bench: send", defaults={"title": "Hi {{ customer.first_name }}",
                                      "body": "A limited-time offer"})
    return template


def _workers_warm_up(size: int, log) -> None:
    """One-message sends, one per pool process, before the clock starts: a worker's first batch
    imports the providers, signs in to Google and opens its connections (1-2 s), which a
    running worker has long done, and the naive side runs in this already warm process."""
    ids = list(Customer.objects.filter(external_id__startswith=SEND_PREFIX.format(size=size))
               .order_by("pk").values_list("pk", flat=True)[:SEND_WORKERS * SEND_CONCURRENCY])
    sends = [send_create(template=_send_template(), customer_ids=[pk], cap_exempt=True,
                         respect_quiet_hours=False, source="bench warm-up") for pk in ids]
    for send in sends:
        _send_wait(send)
    log(f"workers warmed up with {len(sends)} one-message sends")


def _send_wait(send: Send) -> None:
    deadline = time.monotonic() + SEND_DEADLINE_SECONDS
    while Send.objects.get(pk=send.pk).status != Send.Status.DONE:
        if time.monotonic() > deadline:
            raise AssertionError(f"the send did not finish: {send_progress(send)}")
        time.sleep(0.05)


def _send_naively(size: int, fcm, log) -> float:
    """What a Django developer writes today with django-push-notifications."""
    # firebase-admin is heavy and only this side uses it: listing or running the other
    # benchmarks does not load it (providers.fcm imports it too).
    import firebase_admin
    from firebase_admin import credentials

    from notifications.providers.fcm import _point_messaging_at

    certificate = credentials.Certificate(str(fcm.credentials))
    app = firebase_admin.initialize_app(certificate)  # the default app the library uses
    _point_messaging_at(app, fcm.url, certificate.get_credential())
    PUSH_NOTIFICATIONS_SETTINGS["FIREBASE_APP"] = app
    PUSH_NOTIFICATIONS_SETTINGS["FCM_MAX_RECIPIENTS"] = 500  # the SDK refuses the default 1,000
    devices = GCMDevice.objects.filter(
        registration_id__startswith=f"token-{SEND_PREFIX.format(size=size)}")
    with timed() as naive:
        devices.send_message("A limited-time offer")
    log(f"naive: {size:,} in {naive.seconds:.1f}s")
    return naive.seconds


class _FakeFcmProcess:
    """tests/fakes/fcm_server.py in a process of its own, as FCM would be."""

    def __init__(self, scratch):
        self.credentials = scratch / "service-account.json"
        self.apps_file = scratch / "push-apps.json"

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.fcm_server", "--port", "0",
             "--credentials", str(self.credentials)],
            cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        self.pid = self.process.pid
        self.apps_file.write_text(json.dumps({"fcm": {"default": {
            "credentials_file": str(self.credentials), "endpoint": self.url}}}))
        return self

    def summary(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_received") as response:
            return json.load(response)

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait()


class _Workers:
    """Celery workers on the configured broker and database, sending to the fake."""

    def __init__(self, count: int, apps_file, scratch, log):
        self.count, self.apps_file, self.scratch, self.log = count, apps_file, scratch, log

    def __enter__(self):
        env = {**os.environ, "PUSH_APPS_FILE": str(self.apps_file),
               "PUSH_BACKEND": "notifications.providers.real.ProviderBackend"}
        self.processes, self.logs = [], []
        for n in range(self.count):
            log_path = self.scratch / f"worker-{n}.log"
            self.logs.append(log_path)
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "journeyhub", "worker", "-Q",
                 "fanout,send,default", "--concurrency", str(SEND_CONCURRENCY),
                 "--hostname", f"bench{n}@%h",
                 "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
                cwd=settings.BASE_DIR, env=env, stdout=open(log_path, "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while not all(" ready." in p.read_text(errors="replace") for p in self.logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise AssertionError("workers did not start: " + self.logs[0].read_text())
            time.sleep(0.2)
        self.log(f"{self.count} workers ready")
        return self

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def __exit__(self, *exc_info):
        for process in self.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.wait()
