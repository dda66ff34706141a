"""``bench broadcast --size N``: one send to a segment of N FCM devices, end to end (segment,
fan-out, send through two workers to the loopback FCM), vs a load generator that POSTs as many
HTTP v1 messages of the same shape (from one prebuilt template) to the same FCM as fast as it
can with the same client (aiohttp keep-alive, as the FCM provider), in as many processes as
there are workers: the ceiling of this machine."""

import asyncio
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from audiences.selectors import segment_count
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from notifications.models import Send
from notifications.selectors import send_progress
from notifications.services import send_create

from .devices import audience_prefix, bench_devices_ensure, require_postgresql
from .processes import (
    FakeFcmProcess,
    Workers,
    cpu_spent,
    per_message_us,
    profiled,
    py_spy_executable,
)
from .send import (
    PROFILE_OPTION,
    SEND_CONCURRENCY,
    SEND_WORKERS,
    audience_segment,
    send_template,
    send_wait,
    workers_warm_up,
)

LOAD_CONCURRENCY = 100  # requests in flight per load process: FCM_CONCURRENCY of the provider
TTL_SECONDS = 2_419_200  # a template's default TTL (28 days), as ours sends it


@benchmark("broadcast", default_size=100_000,
           help="Segment, fan out and send to N FCM devices (two workers, loopback FCM) vs a "
                "load generator POSTing the same messages to the same FCM.",
           options={"profile": PROFILE_OPTION})
def broadcast(*, size: int, log, profile: str | None = None) -> BenchResult:
    require_postgresql()
    if profile:
        py_spy_executable()  # refused before anything runs
    bench_devices_ensure("fcm", size, log)
    prefix = audience_prefix("fcm", size)
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch, FakeFcmProcess(Path(scratch)) as fcm:
        with Workers(SEND_WORKERS, SEND_CONCURRENCY, fcm, Path(scratch), log) as workers:
            workers_warm_up(prefix, SEND_WORKERS * SEND_CONCURRENCY, log)
            with profiled(workers.pids, profile, log), cpu_spent(cpu, "ours", workers.pids), \
                    cpu_spent(cpu, "fake_ours", [fcm.pid]):
                stages = _broadcast(prefix, size, fcm, log)
        with cpu_spent(cpu, "fake_ref", [fcm.pid]):
            ref_s, cpu["ref"] = _load(fcm, size, SEND_WORKERS)
        received = fcm.summary()["total"]
    log(f"reference: {size:,} POSTs in {ref_s:.1f}s")
    if received < 2 * size - stages["not_sent_ours"]:
        raise AssertionError(f"the fake received {received} messages, expected "
                             f"{2 * size - stages['not_sent_ours']}")
    ours_s = stages["segment_s"] + stages["to_last_message_s"]
    return BenchResult(
        ours_s, f"{SEND_WORKERS} processes POSTing messages of the same shape (one prebuilt "
                "template) with aiohttp to the same FCM", ref_s,
        extra={**{k: round(v, 3) for k, v in stages.items()},
               "messages_per_s": round(size / stages["send_s"]), "ref_messages_per_s":
               round(size / ref_s), **per_message_us(cpu, size), "peak_rss_mb": peak_rss_mb(),
               "workers": SEND_WORKERS, "pool_processes": SEND_CONCURRENCY},
    )


def _broadcast(prefix: str, size: int, fcm: FakeFcmProcess, log) -> dict:
    """Seconds per stage: the segment counted (what the admin shows before sending), the send
    created until its deliveries and batches exist, then until the fake has the last message."""
    segment = audience_segment(prefix)
    with timed() as counting:
        audience = segment_count(segment)
    if audience != size:
        raise AssertionError(f"the segment holds {audience} customers, expected {size}")
    started = time.monotonic()
    send = send_create(template=send_template(), segment=segment, cap_exempt=True,
                       respect_quiet_hours=False, source="bench broadcast")
    while Send.objects.get(pk=send.pk).status in (Send.Status.QUEUED, Send.Status.FANNING_OUT):
        time.sleep(0.02)
    fanned_out = time.monotonic()
    log(f"fan-out: {fanned_out - started:.1f}s")
    send_wait(send, poll=0.02)
    last_at = fcm.summary()["last_at"]  # the fake's monotonic clock is this machine's
    log(f"sent: the last message {last_at - started:.1f}s after the send was created")
    progress = send_progress(send)
    if progress.sent != size:
        log(f"not sent: {size - progress.sent} ({progress.reasons})")
    return {"not_sent_ours": size - progress.sent, "segment_s": counting.seconds,
            "fanout_s": fanned_out - started, "send_s": last_at - fanned_out,
            "to_last_message_s": last_at - started}


def _message_template() -> str:
    """An HTTP v1 body of the shape ours sends (title, body, data with the delivery id and a
    tracking token, Android TTL, priority and tag, APNs and Web Push headers), encoded once
    as a ``str.format`` template: only the token and the delivery's number are formatted in
    per message (about a microsecond), so a million bodies need no memory."""
    expires = str(int(time.time()) + TTL_SECONDS)
    body = json.dumps({"message": {
        "token": "@TOKEN@",
        "notification": {"title": "Hi Bench", "body": "A limited-time offer"},
        "data": {"delivery_id": "@N@", "jh_token": "@TRACKING@"},
        "android": {"priority": "normal", "ttl": f"{TTL_SECONDS}s",
                    "collapse_key": "jh-@N@", "notification": {"tag": "jh-@N@"}},
        "apns": {"headers": {"apns-priority": "5", "apns-expiration": expires,
                             "apns-collapse-id": "jh-@N@"}},
        "webpush": {"headers": {"TTL": str(TTL_SECONDS), "Urgency": "normal",
                                "Topic": "jh-@N@"}, "notification": {"tag": "jh-@N@"}},
    }}, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
    for slot, field in _SLOTS.items():
        body = body.replace(slot, field)
    return body


_SLOTS = {"@TOKEN@": "token-{prefix}{n:08d}", "@N@": "{n}", "@TRACKING@": "{n:011d}.{sig}"}


def _load(fcm: FakeFcmProcess, size: int, processes: int) -> tuple[float, float]:
    """(wall seconds from the first process's start to the last one's end, CPU seconds of the
    load processes), each process sending every ``processes``-th message."""
    token = _access_token(fcm)
    url = f"{fcm.url}/v1/projects/journeyhub-test/messages:send"
    template = _message_template()
    prefix = audience_prefix("fcm", size)
    context = multiprocessing.get_context("fork")
    with context.Pool(processes) as pool:
        spans = pool.starmap(_load_part, [(url, token, template, prefix, range(n, size, processes))
                                          for n in range(processes)])
    return (max(end for _, end, _ in spans) - min(start for start, _, _ in spans),
            sum(cpu for _, _, cpu in spans))


def _access_token(fcm: FakeFcmProcess) -> str:
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    credentials = service_account.Credentials.from_service_account_file(
        str(fcm.credentials), scopes=["https://www.googleapis.com/auth/firebase.messaging"])
    credentials.refresh(Request())
    return credentials.token


def _load_part(url: str, token: str, template: str, prefix: str,
               numbers: range) -> tuple[float, float, float]:
    import aiohttp

    async def post_all() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=LOAD_CONCURRENCY)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
            pending = iter(numbers)
            sig = "x" * 32

            async def post_some() -> None:
                for n in pending:
                    body = template.format(prefix=prefix, n=n, sig=sig).encode()
                    async with session.post(url, data=body) as response:
                        await response.read()
                        if response.status != 200:
                            raise AssertionError(f"the fake answered {response.status}")

            await asyncio.gather(*(post_some() for _ in range(LOAD_CONCURRENCY)))

    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    asyncio.run(post_all())
    end = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return start, end, (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
