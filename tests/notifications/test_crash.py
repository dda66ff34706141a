"""Crash test: real worker processes, the real Redis broker, a loopback FCM. Workers are killed
with SIGKILL in the middle of a send and restarted; the send must finish with every eligible
device reached.

What a kill can and cannot cost: a batch is claimed in the database and its results are written
after every chunk of SEND_CHUNK messages, so a worker killed mid-send leaves at most the chunk
it had in flight without a recorded outcome. FCM has no idempotency key, so those messages are
sent again (at-least-once): nothing is lost, and a repeat can only be one of that chunk. Every
payload carries its delivery id, which the app uses to drop a repeat."""

import json
import os
import signal
import time
from collections import Counter
from datetime import time as clock

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import override_settings
from push_notifications.models import GCMDevice

from audiences.models import Customer, customer_bucket
from notifications.models import Delivery, DeliverySettings, Device, Send, Template
from notifications.sending import SEND_CHUNK
from notifications.services import deliveries_sweep, send_create
from tests.fakes.fcm_server import FakeFcm
from tests.workers import Broker, Worker, reachable

AUDIENCE = 5_000
KILLS_AT = (1_000, 2_500, 4_000)  # messages accepted by FCM when a worker is killed
LEASE_SECONDS = 8  # a dead worker's batch goes back to the queue after this
SEND_DEADLINE_SECONDS = 240


@pytest.fixture
def redis_broker():
    """The configured broker, which this process sends to and the workers consume from."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://") or not reachable(url):
        pytest.skip("the crash test needs CELERY_BROKER_URL to name a reachable Redis "
                    f"(it is {url.split('@')[-1]!r})")
    redis.Redis.from_url(url).flushdb()  # no task left over from another run
    return Broker(url, {}, {"CELERY_BROKER_URL": url})


@pytest.fixture
def fcm(tmp_path):
    with FakeFcm(latency=0.002) as fake:
        credentials = fake.write_service_account(tmp_path / "service-account.json")
        apps = {"fcm": {"default": {"credentials_file": str(credentials), "endpoint": fake.url}}}
        (tmp_path / "push-apps.json").write_text(json.dumps(apps))
        yield fake


@pytest.fixture
def audience():
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"crash-{i}", bucket=customer_bucket(f"crash-{i}"),
                 referral_code=f"CRASH{i:06d}", time_zone="UTC")
        for i in range(AUDIENCE)
    )
    tokens = GCMDevice.objects.bulk_create(
        GCMDevice(registration_id=f"ok-{i}", cloud_message_type="FCM") for i in range(AUDIENCE)
    )
    Device.objects.bulk_create(
        Device(customer=c, kind="fcm", platform="android", fcm=t)
        for c, t in zip(customers, tokens, strict=True)
    )
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": clock(0), "quiet_hours_end": clock(0),
                        "frequency_cap": 0})
    return customers


def start_workers(count, broker, tmp_path, generation):
    env = {**broker.worker_env, "PUSH_BACKEND": "notifications.providers.real.ProviderBackend",
           "PUSH_APPS_FILE": str(tmp_path / "push-apps.json"),
           "DELIVERY_BATCH_LEASE_SECONDS": str(LEASE_SECONDS)}
    workers = []
    for n in range(count):
        worker = Worker(Broker(broker.url, {}, env), "fanout,send,default",
                        tmp_path / f"worker-{generation}-{n}.log", concurrency=2)
        workers.append(worker)
    for worker in workers:
        worker.wait_until_ready()
    return workers


def kill(workers):
    for worker in workers:
        os.killpg(worker.process.pid, signal.SIGKILL)  # the worker and its pool, no goodbye
        worker.process.wait()


def run_with_kills(fcm, broker, tmp_path, template, workers_at_once):
    workers = start_workers(workers_at_once, broker, tmp_path, generation=0)
    send = send_create(template=template, segment=None,
                       customer_ids=list(Customer.objects.values_list("pk", flat=True)))
    kills, deadline = list(KILLS_AT), time.monotonic() + SEND_DEADLINE_SECONDS
    try:
        while Send.objects.get(pk=send.pk).status != Send.Status.DONE:
            assert time.monotonic() < deadline, _logs(workers)
            if kills and fcm.summary()["total"] >= kills[0]:
                kills.pop(0)
                kill(workers)
                workers = start_workers(workers_at_once, broker, tmp_path,
                                        generation=len(KILLS_AT) - len(kills))
            deliveries_sweep()  # what beat does every minute
            time.sleep(0.5)
    finally:
        for worker in workers:
            worker.stop()
    assert not kills, f"the send finished before every kill: {kills} left"
    return send


def _logs(workers):
    return "\n".join(w.log()[-3000:] for w in workers)


@pytest.mark.broker
@pytest.mark.parametrize("workers_at_once", [1, 2])
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_killed_workers_lose_nothing(redis_broker, fcm, audience, tmp_path, workers_at_once):
    if connection.vendor != "postgresql":
        pytest.skip("the crash test runs several worker processes on one database: PostgreSQL")
    template = Template.objects.create(name="Crash", title="Hello",
                                       body="{{ customer.external_id }}")

    # A task a killed worker had reserved stays invisible in Redis until its visibility timeout
    # (an hour); the sweeper re-enqueues such work after DELIVERY_REENQUEUE_AFTER_SECONDS.
    with override_settings(DELIVERY_BATCH_LEASE_SECONDS=LEASE_SECONDS,
                           DELIVERY_REENQUEUE_AFTER_SECONDS=LEASE_SECONDS):
        send = run_with_kills(fcm, redis_broker, tmp_path, template, workers_at_once)

    deliveries = dict(Delivery.objects.filter(send=send).values_list("pk", "status"))
    received = fcm.summary()["by_delivery_id"]
    assert len(deliveries) == AUDIENCE
    assert set(deliveries.values()) == {"sent"}
    lost = [pk for pk in deliveries if str(pk) not in received]
    assert lost == [], f"{len(lost)} devices never got their message"
    repeats = {pk: n for pk, n in received.items() if n > 1}
    # Only the chunk a worker had in flight when it died can repeat (see the module docstring).
    assert len(repeats) <= len(KILLS_AT) * workers_at_once * 2 * SEND_CHUNK
    print(f"\n{workers_at_once} worker(s), {len(KILLS_AT)} kills: 0 lost, "
          f"{len(repeats)} repeated of {AUDIENCE}, {dict(Counter(repeats.values()))}")


@pytest.mark.broker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_broker_restart_loses_no_send(redis_broker, fcm, audience, tmp_path):
    """Redis here keeps nothing on disk: a restart empties its queues. Flushing the broker's
    database does the same to the tasks of a send, twice: the fan-out, then its batches."""
    if connection.vendor != "postgresql":
        pytest.skip("real workers share the test database: PostgreSQL")
    broker = redis.Redis.from_url(redis_broker.url)
    template = Template.objects.create(name="Restart", title="Hello", body="Again")
    send = send_create(template=template,
                       customer_ids=list(Customer.objects.values_list("pk", flat=True)))
    broker.flushdb()  # the fan-out task is gone
    workers = start_workers(1, redis_broker, tmp_path, generation=0)
    try:
        with override_settings(DELIVERY_REENQUEUE_AFTER_SECONDS=0,
                               DELIVERY_BATCH_LEASE_SECONDS=LEASE_SECONDS):
            deliveries_sweep()  # beat's sweep finds the send still queued and enqueues it again
            _wait(lambda: Send.objects.get(pk=send.pk).status == Send.Status.SENDING, workers)
            kill(workers)  # stop consuming, so the batch tasks wait in the broker...
            broker.flushdb()  # ...and are lost
            workers = start_workers(1, redis_broker, tmp_path, generation=1)
            _wait(lambda: _swept_and(send, Send.Status.DONE), workers)
    finally:
        for worker in workers:
            worker.stop()

    received = fcm.summary()["by_delivery_id"]
    assert Delivery.objects.filter(send=send, status="sent").count() == AUDIENCE
    assert all(str(pk) in received
               for pk in Delivery.objects.filter(send=send).values_list("pk", flat=True))


def _swept_and(send, status) -> bool:
    deliveries_sweep()
    return Send.objects.get(pk=send.pk).status == status


def _wait(condition, workers, seconds=SEND_DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, _logs(workers)
        time.sleep(0.5)
