"""Faults outside the workers, with real worker processes on Redis and the loopback FCM: a
provider outage, and the database dropping every connection mid-send."""

import time

import pytest
import redis
from django.db import connection
from django.urls import reverse

from notifications.models import Delivery, DeliveryBatch, ProviderOutage, Send, Template
from notifications.sending.batch_send import SEND_CHUNK
from notifications.services import deliveries_sweep, send_create
from tests.notifications.test_crash import POOL, audience_create, worker_start
from tests.workers import REDIS_URL, Broker, publishing_to, reachable

pytestmark = [pytest.mark.broker,
              pytest.mark.postgres(reason="worker processes share the test database")]

# Five minutes of outage, compressed: the same mechanism with shorter waits.
OUTAGE = ((8, "unavailable-"), (8, "quota-"))  # 503, then 429 with Retry-After: 1
BACKOFF = {"DELIVERY_OUTAGE_BACKOFF_SECONDS": 1, "DELIVERY_OUTAGE_BACKOFF_MAX_SECONDS": 3}


@pytest.fixture
def redis_broker():
    if not reachable(REDIS_URL):
        pytest.skip(f"Redis is not reachable at {REDIS_URL.split('@')[-1]} (TEST_REDIS_URL)")
    redis.Redis.from_url(REDIS_URL).flushdb()
    with publishing_to(REDIS_URL):
        yield Broker(REDIS_URL, {}, {"CELERY_BROKER_URL": REDIS_URL})


def wait_until_done(send, workers, seconds, each=None) -> float:
    started = deadline = time.monotonic()
    deadline += seconds
    while Send.objects.get(pk=send.pk).status != Send.Status.DONE:
        assert time.monotonic() < deadline, "\n".join(w.log()[-3000:] for w in workers)
        if each:
            each()
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_provider_outage_holds_the_send_and_it_resumes_by_itself(
        redis_broker, workers_fcm, tmp_path, admin_client):
    fcm = workers_fcm
    broker = Broker(redis_broker.url, {}, {**redis_broker.worker_env,
                                           **{k: str(v) for k, v in BACKOFF.items()}})
    customer_ids = audience_create(2_000)
    worker = worker_start(broker, tmp_path, "outage")
    seen, send = [], None

    def look():
        deliveries_sweep()  # beat, every minute; here every half second, like the waits
        page = admin_client.get(reverse("admin:notifications_send_change", args=[send.pk]))
        if "FCM provider unavailable, retrying at" in page.content.decode():
            seen.append(time.monotonic())

    try:
        worker.wait_until_ready()
        fcm.outage(*OUTAGE)
        outage_ends = time.monotonic() + sum(seconds for seconds, _ in OUTAGE)
        send = send_create(template=Template.objects.create(name="Out", title="Hi", body="T"),
                           customer_ids=customer_ids)
        wait_until_done(send, [worker], 120, each=look)
    finally:
        worker.stop()

    during = fcm.summary()["attempts"] - len(fcm.received)  # every refused request
    rows = Delivery.objects.filter(send=send)
    print(f"\noutage: {during} requests refused, resumed "
          f"{max(m['at'] for m in fcm.received) - outage_ends:.1f} s after it ended")
    assert set(rows.values_list("status", flat=True)) == {"sent"}
    assert set(rows.values_list("attempts", flat=True)) == {0}  # no attempt spent on it
    assert seen and min(seen) < outage_ends
    # At most one chunk per pool process per try, and a try after each wait (1 s at least).
    tries = sum(seconds for seconds, _ in OUTAGE) // BACKOFF["DELIVERY_OUTAGE_BACKOFF_SECONDS"]
    assert during <= (tries + 1) * POOL * SEND_CHUNK
    assert not ProviderOutage.objects.exists()


def terminate_workers_connections() -> int:
    """What a PostgreSQL restart looks like to its clients: every other connection to this
    database is closed by the server (without stopping the cluster, which others share)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_workers_reconnect_after_the_database_drops_them_and_finish(redis_broker, workers_fcm,
                                                                      tmp_path):
    fcm = workers_fcm
    customer_ids = audience_create(5_000)
    workers = [worker_start(redis_broker, tmp_path, f"db-{n}") for n in range(2)]
    dropped = []
    try:
        for worker in workers:
            worker.wait_until_ready()
        send = send_create(template=Template.objects.create(name="Db", title="Hi", body="T"),
                           customer_ids=customer_ids)
        for share in (0.2, 0.5, 0.8):
            while len(fcm.received) < share * 5_000:
                assert Send.objects.get(pk=send.pk).status != Send.Status.DONE
                time.sleep(0.05)
            dropped.append(terminate_workers_connections())
        # No sweeper here: the workers themselves must pick up where they were.
        wait_until_done(send, workers, 90)
    finally:
        for worker in workers:
            worker.stop()

    received = fcm.summary()["by_delivery_id"]
    ids = list(Delivery.objects.filter(send=send).values_list("pk", flat=True))
    print(f"\nconnections dropped {dropped}; "
          f"{sum(n - 1 for n in received.values())} sent twice")
    assert all(dropped)
    assert all(str(pk) in received for pk in ids)
    assert set(Delivery.objects.filter(send=send).values_list("status", flat=True)) == {"sent"}
    assert set(DeliveryBatch.objects.filter(send=send).values_list("status", flat=True)) == {
        "done"}
