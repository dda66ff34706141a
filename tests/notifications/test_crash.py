"""Crash tests: real worker processes, real brokers (Redis and RabbitMQ), a loopback FCM.

One of two workers is killed with SIGKILL at random moments of a send, and restarted. The
settings are the defaults. What a kill may cost (notifications.sending.batch_send): nothing is
lost; the requests the killed worker had in flight (their fate unknown) are sent again, at most
FCM_CONCURRENCY per pool process, and every copy of one delivery carries the same collapse
identity, so a device shows it once; and every message the worker held or had reserved goes
out within the lease plus a minute of the kill."""

import json
import os
import random
import signal
import time
from collections import defaultdict
from datetime import time as clock

import pytest
import redis
from django.conf import settings
from kombu import Connection
from push_notifications.models import GCMDevice

from audiences.models import Customer, customer_bucket
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Device, Send, Template
from notifications.providers.fcm import FCM_CONCURRENCY
from notifications.sending.batch_send import SEND_CHUNK
from notifications.services import deliveries_sweep, send_create
from tests.workers import AMQP_URL, REDIS_URL, Broker, Worker, publishing_to, reachable

AUDIENCE = 20_000
KILLS = 3
KILL_BETWEEN = (0.05, 0.6)  # kills happen while this share of the audience has been reached
POOL = 2  # pool processes per worker
BEAT_SECONDS = 60  # the sweeper runs once a minute (journeyhub/schedules.py)
QUEUES = "fanout,send,default"
IN_FLIGHT_PER_KILL = POOL * min(SEND_CHUNK, FCM_CONCURRENCY)

pytestmark = [pytest.mark.broker,
              pytest.mark.postgres(reason="several worker processes share the test database")]


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request) -> Broker:
    """An empty broker of that kind for the workers, and for what this process enqueues."""
    if request.param == "redis":
        if not reachable(REDIS_URL):
            pytest.skip(f"Redis is not reachable at {REDIS_URL.split('@')[-1]} (TEST_REDIS_URL)")
        redis.Redis.from_url(REDIS_URL).flushdb()  # no task left over from another run
        url = REDIS_URL
    else:
        if not reachable(AMQP_URL):
            pytest.skip(f"RabbitMQ is not reachable at {AMQP_URL.split('@')[-1]} (TEST_AMQP_URL)")
        with Connection(AMQP_URL) as conn:
            for queue in settings.CELERY_TASK_QUEUES:
                queue(conn.default_channel).declare()
                queue(conn.default_channel).purge()
        url = AMQP_URL
    with publishing_to(url):
        yield Broker(url, {}, {"CELERY_BROKER_URL": url})


def audience_create(size: int) -> list[int]:
    customers = Customer.objects.bulk_create(
        (Customer(external_id=f"crash-{i}", bucket=customer_bucket(f"crash-{i}"),
                  referral_code=f"CRASH{i:06d}", time_zone="UTC") for i in range(size)),
        batch_size=5000,
    )
    tokens = GCMDevice.objects.bulk_create(
        (GCMDevice(registration_id=f"ok-{i}", cloud_message_type="FCM") for i in range(size)),
        batch_size=5000,
    )
    Device.objects.bulk_create(
        (Device(customer=c, kind="fcm", platform="android", fcm=t)
         for c, t in zip(customers, tokens, strict=True)), batch_size=5000,
    )
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": clock(0), "quiet_hours_end": clock(0),
                        "frequency_cap": 0})
    return [c.pk for c in customers]


def worker_start(broker: Broker, tmp_path, name: str) -> Worker:
    env = {**broker.worker_env, "PUSH_BACKEND": "notifications.providers.real.ProviderBackend",
           "PUSH_APPS_FILE": str(tmp_path / "push-apps.json")}
    return Worker(Broker(broker.url, {}, env), QUEUES, tmp_path / f"{name}.log",
                  concurrency=POOL, name=name)


def kill(worker: Worker) -> None:
    os.killpg(worker.process.pid, signal.SIGKILL)  # the worker and its pool, no goodbye
    worker.process.wait()


def send_with_kills(broker, fcm, tmp_path, customer_ids, rng) -> tuple[Send, list[float]]:
    """Send to everyone while one worker is killed KILLS times and restarted; returns the
    send and the moments of the kills."""
    survivor = worker_start(broker, tmp_path, "survivor")
    victim = worker_start(broker, tmp_path, "victim-0")
    kill_at = sorted(int(AUDIENCE * rng.uniform(*KILL_BETWEEN)) for _ in range(KILLS))
    kills: list[float] = []
    try:
        survivor.wait_until_ready()
        victim.wait_until_ready()
        template = Template.objects.create(name="Crash", title="Hello",
                                           body="{{ customer.external_id }}")
        send = send_create(template=template, customer_ids=customer_ids)
        swept, deadline = time.monotonic(), time.monotonic() + 600
        while Send.objects.get(pk=send.pk).status != Send.Status.DONE:
            assert time.monotonic() < deadline, _logs([survivor, victim])
            if kill_at and victim.is_ready() and len(fcm.received) >= kill_at[0]:
                time.sleep(rng.uniform(0, 0.5))  # any moment: claiming, sending, recording
                kill(victim)
                kills.append(time.monotonic())
                kill_at.pop(0)
                victim = worker_start(broker, tmp_path, f"victim-{len(kills)}")
            if time.monotonic() - swept >= BEAT_SECONDS:
                deliveries_sweep()
                swept = time.monotonic()
            time.sleep(0.1)
    finally:
        for worker in (survivor, victim):
            worker.stop()
    assert not kill_at, f"the send finished before every kill: {kill_at} left"
    return send, kills


def copies_by_delivery(fcm) -> dict[str, list[dict]]:
    copies = defaultdict(list)
    for message in fcm.received:
        copies[message["data"]["delivery_id"]].append(message["message"])
    return copies


def visible_twice(copies: list[dict]) -> bool:
    """A device shows two copies when they do not share one tag (or carry none)."""
    tags = {copy.get("android", {}).get("notification", {}).get("tag") for copy in copies}
    return len(copies) > 1 and (len(tags) > 1 or None in tags)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_crash_of_a_worker_loses_nothing_and_shows_nothing_twice(broker, workers_fcm, tmp_path):
    fcm = workers_fcm
    seed = random.randrange(1 << 30)
    started = time.monotonic()
    customer_ids = audience_create(AUDIENCE)
    made = time.monotonic()

    send, kills = send_with_kills(broker, fcm, tmp_path, customer_ids, random.Random(seed))

    deliveries = dict(Delivery.objects.filter(send=send).values_list("pk", "status"))
    copies = copies_by_delivery(fcm)
    lost = [pk for pk in deliveries if str(pk) not in copies]
    figures = {
        "broker": "redis" if broker.url.startswith("redis") else "rabbitmq",
        "kills": len(kills), "lost": len(lost),
        "duplicates": sum(len(c) - 1 for c in copies.values()),
        "visible_duplicates": sum(visible_twice(c) for c in copies.values()),
        "recovery_s": round(max(m["at"] for m in fcm.received) - kills[-1], 1),
        "lease_s": settings.DELIVERY_BATCH_LEASE_SECONDS,
    }
    print(f"\n{json.dumps(figures)}")
    print(f"seed {seed}; audience made in {made - started:.0f} s, kills at "
          f"{', '.join(f'{k - made:.0f}' for k in kills)} s, last message at "
          f"{max(m['at'] for m in fcm.received) - made:.0f} s")
    skipped = list(Delivery.objects.filter(send=send).exclude(status="sent").values_list(
        "pk", "status", "reason", "error")[:5])
    assert len(deliveries) == AUDIENCE and set(deliveries.values()) == {"sent"}, skipped
    assert set(DeliveryBatch.objects.filter(send=send).values_list("status", flat=True)) == {
        "done"}
    assert figures["kills"] == KILLS and figures["lost"] == 0
    assert figures["duplicates"] <= KILLS * IN_FLIGHT_PER_KILL
    assert figures["visible_duplicates"] == 0
    assert all(c[0]["android"]["notification"]["tag"] == f"jh-{pk}" for pk, c in copies.items())
    assert figures["recovery_s"] <= settings.DELIVERY_BATCH_LEASE_SECONDS + 60


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_crash_of_the_broker_loses_no_send(broker, workers_fcm, tmp_path, settings):
    fcm = workers_fcm
    """A broker restarted without its queues (Redis keeping nothing on disk) loses the tasks of
    a send, twice: the fan-out, then its batches. The sweeper enqueues them again."""
    if not broker.url.startswith("redis"):
        pytest.skip("RabbitMQ keeps its queues across a restart; this is about Redis")
    settings.DELIVERY_REENQUEUE_AFTER_SECONDS = 0
    flush = redis.Redis.from_url(broker.url).flushdb
    customer_ids = audience_create(2_000)
    template = Template.objects.create(name="Restart", title="Hello", body="Again")
    send = send_create(template=template, customer_ids=customer_ids)
    flush()  # the fan-out task is gone
    workers = [worker_start(broker, tmp_path, "restart-0")]
    try:
        workers[0].wait_until_ready()
        deliveries_sweep()  # beat's sweep finds the send still queued and enqueues it again
        _wait(lambda: Send.objects.get(pk=send.pk).status == Send.Status.SENDING, workers)
        kill(workers[0])  # stop consuming, so the batch tasks wait in the broker...
        flush()  # ...and are lost
        workers.append(worker_start(broker, tmp_path, "restart-1"))
        _wait(lambda: _swept_and(send, Send.Status.DONE), workers)
    finally:
        for worker in workers:
            worker.stop()

    copies = copies_by_delivery(fcm)
    assert Delivery.objects.filter(send=send, status="sent").count() == 2_000
    assert all(str(pk) in copies
               for pk in Delivery.objects.filter(send=send).values_list("pk", flat=True))


def _swept_and(send, status) -> bool:
    deliveries_sweep()
    return Send.objects.get(pk=send.pk).status == status


def _wait(condition, workers, seconds=240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, _logs(workers)
        time.sleep(0.5)


def _logs(workers) -> str:
    return "\n".join(w.log()[-3000:] for w in workers)


