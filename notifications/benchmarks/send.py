"""``bench send [--platform fcm|apns|webpush]``: N messages through the pipeline (real workers)
vs django-push-notifications' queryset ``send_message``, both against one loopback provider in
a process of its own, with the CPU each side and the provider spend per message."""

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice
from push_notifications.settings import PUSH_NOTIFICATIONS_SETTINGS

from audiences.models import Customer, Segment
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from notifications.models import Send, Template
from notifications.selectors import send_progress
from notifications.services import send_create
from notifications.webpush_crypto import webpush_subscription_keys

from .devices import (
    audience_prefix,
    bench_devices_ensure,
    require_postgresql,
    webpush_endpoints_point_at,
)
from .processes import (
    FakeApnsProcess,
    FakeFcmProcess,
    WebPushSinkProcess,
    Workers,
    cpu_spent,
    per_message_us,
    profiled,
    py_spy_executable,
)

SEND_WORKERS = 2  # worker processes...
SEND_CONCURRENCY = 2  # ...with this many pool processes each (a 2-core machine)
SEND_DEADLINE_SECONDS = 3600
# django-push-notifications sends a queryset's APNs tokens in one asyncio.gather, each with a
# 1 s timeout from the start, waiting for a stream included: 1,000 at once already time out
# on a loaded machine, so the naive side sends slices.
NAIVE_APNS_SLICE = 250
NAIVE_TEXT = "A limited-time offer"
PROFILE_OPTION = {"default": None, "metavar": "PATH",
                  "help": "sample the workers with py-spy while ours runs, into PATH.<worker "
                          "pid> (collapsed stacks, one line per stack and its sample count)"}

FAKES = {"fcm": FakeFcmProcess, "apns": FakeApnsProcess, "webpush": WebPushSinkProcess}
REFERENCES = {
    "fcm": "GCMDevice queryset send_message (django-push-notifications) to the same FCM",
    "apns": "APNSDevice queryset send_message (django-push-notifications, aioapns), "
            f"{NAIVE_APNS_SLICE} a call, to the same APNs gateway",
    "webpush": "WebPushDevice queryset send_message (django-push-notifications, pywebpush) "
               "to the same push service",
}


@benchmark("send", default_size=10_000,
           help="Deliver N messages through the pipeline (real workers, a loopback provider) vs "
                "django-push-notifications' send_message against the same provider.",
           options={"platform": {"choices": ["fcm", "apns", "webpush"], "default": "fcm",
                                 "help": "the provider: FCM HTTP v1 (default), APNs over "
                                         "HTTP/2, or Web Push"},
                    "profile": PROFILE_OPTION})
def send(*, size: int, log, platform: str = "fcm", profile: str | None = None) -> BenchResult:
    require_postgresql()
    if profile:
        py_spy_executable()  # refused before anything runs
    cpu = {}  # CPU seconds per side: steadier than wall time on a busy machine
    with tempfile.TemporaryDirectory() as scratch, FAKES[platform](Path(scratch)) as fake:
        _devices_ensure(platform, size, fake, log)
        with Workers(SEND_WORKERS, SEND_CONCURRENCY, fake, Path(scratch), log) as workers:
            workers_warm_up(audience_prefix(platform, size), SEND_WORKERS * SEND_CONCURRENCY,
                            log)
            with profiled(workers.pids, profile, log), cpu_spent(cpu, "ours", workers.pids), \
                    cpu_spent(cpu, "fake_ours", [fake.pid]):
                ours, sent = _send_through_pipeline(platform, size, log)
        with cpu_spent(cpu, "naive", [os.getpid()], children=False), \
                cpu_spent(cpu, "fake_naive", [fake.pid]):
            naive = NAIVE[platform](size, fake, log)
        received = fake.summary()["total"]
    if received < sent + size:
        raise AssertionError(f"the fake received {received} messages, expected {sent + size}")
    return BenchResult(
        ours, REFERENCES[platform], naive,
        extra={"platform": platform, "not_sent_ours": size - sent,
               "messages_per_s": round(size / ours),
               "naive_messages_per_s": round(size / naive), **per_message_us(cpu, size),
               "peak_rss_mb": peak_rss_mb(), "workers": SEND_WORKERS,
               "pool_processes": SEND_CONCURRENCY},
    )


def _devices_ensure(platform: str, size: int, fake, log) -> None:
    if platform != "webpush":
        bench_devices_ensure(platform, size, log)
        return
    # One subscription key pair for every device: each push is still encrypted on its own.
    _private_key, p256dh, auth = webpush_subscription_keys()
    bench_devices_ensure("webpush", size, log, endpoint=f"{fake.url}/push/", p256dh=p256dh,
                         auth=auth)
    webpush_endpoints_point_at(f"{fake.url}/push/", size)


def send_template() -> Template:
    template, _ = Template.objects.get_or_create(
        name="bench: send", defaults={"title": "Hi {{ customer.first_name }}",
                                      "body": NAIVE_TEXT})
    return template


def audience_segment(prefix: str) -> Segment:
    segment, _ = Segment.objects.get_or_create(
        name=f"bench: audience {prefix}",
        defaults={"rules": {"profile": {"field": "external_id", "op": "contains",
                                        "value": prefix}}})
    return segment


def _send_through_pipeline(platform: str, size: int, log) -> tuple[float, int]:
    """(seconds, messages sent). A message may be skipped, not sent: a render over its time
    budget on an overloaded machine is one; any other failure stops the benchmark."""
    segment = audience_segment(audience_prefix(platform, size))
    with timed() as ours:
        send = send_create(template=send_template(), segment=segment, cap_exempt=True,
                           respect_quiet_hours=False, source="bench")
        send_wait(send)
    progress = send_progress(send)
    log(f"pipeline: {progress.sent:,} sent in {ours.seconds:.1f}s")
    if progress.sent + progress.reasons.get("render_error", 0) != size:
        raise AssertionError(f"expected {size} sent, got {progress}")
    if progress.sent != size:
        log(f"pipeline: {size - progress.sent} skipped: {progress.reasons}")
    return ours.seconds, progress.sent


def workers_warm_up(prefix: str, sends: int, log) -> None:
    """One-message sends, one per pool process, before the clock starts: a worker's first batch
    imports the providers, signs in and opens its connections (1-2 s), which a running worker
    has long done, and the naive side runs in this already warm process."""
    ids = list(Customer.objects.filter(external_id__startswith=prefix)
               .order_by("pk").values_list("pk", flat=True)[:sends])
    warm_ups = [send_create(template=send_template(), customer_ids=[pk], cap_exempt=True,
                            respect_quiet_hours=False, source="bench warm-up") for pk in ids]
    for warm_up in warm_ups:
        send_wait(warm_up)
    log(f"workers warmed up with {len(warm_ups)} one-message sends")


def send_wait(send: Send, *, poll: float = 0.05) -> None:
    deadline = time.monotonic() + SEND_DEADLINE_SECONDS
    while Send.objects.get(pk=send.pk).status != Send.Status.DONE:
        if time.monotonic() > deadline:
            raise AssertionError(f"the send did not finish: {send_progress(send)}")
        time.sleep(poll)


# --- the naive sides: what a Django developer writes today with django-push-notifications ----

def _send_fcm_naively(size: int, fake: FakeFcmProcess, log) -> float:
    # firebase-admin is heavy and only this side imports it here: listing or running the
    # other benchmarks does not load it.
    import firebase_admin
    from firebase_admin import credentials, messaging

    app = firebase_admin.initialize_app(  # the default app the library uses
        credentials.Certificate(str(fake.credentials)))
    # Only the URL changes: its own client, retries and all, sends to the fake.
    messaging._get_messaging_service(app)._fcm_url = (
        f"{fake.url}/v1/projects/{app.project_id}/messages:send")
    devices = GCMDevice.objects.filter(
        registration_id__startswith=f"token-{audience_prefix('fcm', size)}")
    # The SDK refuses the default 1,000 recipients a call.
    try:
        with _dpn_settings(FIREBASE_APP=app, FCM_MAX_RECIPIENTS=500), timed() as naive:
            devices.send_message(NAIVE_TEXT)
    finally:
        firebase_admin.delete_app(app)
    log(f"naive: {size:,} in {naive.seconds:.1f}s")
    return naive.seconds


def _send_apns_naively(size: int, fake: FakeApnsProcess, log) -> float:
    from tests.fakes.apns_server import route_aioapns_to

    undo = route_aioapns_to(fake.port)
    ids = list(APNSDevice.objects.filter(
        journey_device__customer__external_id__startswith=audience_prefix("apns", size))
        .order_by("pk").values_list("pk", flat=True))
    try:
        with _dpn_settings(APNS_AUTH_KEY_PATH=str(fake.key_file), APNS_AUTH_KEY_ID=fake.KEY_ID,
                           APNS_TEAM_ID=fake.TEAM_ID, APNS_TOPIC=fake.TOPIC,
                           APNS_USE_SANDBOX=False), timed() as naive:
            for lo in range(0, len(ids), NAIVE_APNS_SLICE):
                APNSDevice.objects.filter(pk__in=ids[lo:lo + NAIVE_APNS_SLICE]).send_message(
                    NAIVE_TEXT)
    finally:
        undo()
    log(f"naive: {size:,} in {naive.seconds:.1f}s")
    return naive.seconds


def _send_webpush_naively(size: int, fake: WebPushSinkProcess, log) -> float:
    key_file = fake.scratch / "vapid-private.pem"
    key_file.write_text(fake.private_pem)
    devices = WebPushDevice.objects.filter(
        registration_id__startswith=f"{fake.url}/push/{audience_prefix('webpush', size)}")
    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(fake.cert_file)
    try:
        with _dpn_settings(WP_PRIVATE_KEY=str(key_file), WP_CLAIMS={"sub": fake.SUBJECT},
                           WP_ERROR_TIMEOUT=10), timed() as naive:
            devices.send_message(NAIVE_TEXT)
    finally:
        if saved is None:
            os.environ.pop("REQUESTS_CA_BUNDLE")
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = saved
    log(f"naive: {size:,} in {naive.seconds:.1f}s")
    return naive.seconds


@contextmanager
def _dpn_settings(**values):
    """django-push-notifications' settings for the naive side, as its users configure them."""
    saved = {key: PUSH_NOTIFICATIONS_SETTINGS[key] for key in values
             if key in PUSH_NOTIFICATIONS_SETTINGS}
    PUSH_NOTIFICATIONS_SETTINGS.update(values)
    try:
        yield
    finally:
        for key in values:
            PUSH_NOTIFICATIONS_SETTINGS.pop(key, None)
        PUSH_NOTIFICATIONS_SETTINGS.update(saved)


NAIVE = {"fcm": _send_fcm_naively, "apns": _send_apns_naively, "webpush": _send_webpush_naively}
