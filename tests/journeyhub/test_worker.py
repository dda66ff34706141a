"""A task sent from the web side runs in a real Celery worker process, on every broker here.

Each case starts ``celery -A journeyhub worker`` as a subprocess against one broker and the
test database, sends the inactivity sweep the way the web side would, and waits for its effect
in the database. Each case listens on a queue of its own, so messages left behind by another
run or by a developer's ``make run`` cannot interfere."""

import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from audiences.models import Customer, Stage, StageTransition
from audiences.tasks import stage_rules_apply_inactivity
from tests.workers import (
    AMQP_URL,
    REDIS_URL,
    TASK_DONE_SECONDS,
    Broker,
    Worker,
    filesystem_broker,
    reachable,
)


@pytest.fixture(params=["configured", "filesystem", "redis", "amqp"])
def broker(request, tmp_path) -> Broker:
    if request.param == "configured":
        if settings.CELERY_BROKER_URL.startswith("memory://"):
            pytest.skip("CELERY_BROKER_URL is memory://, which no other process can share")
        return Broker(settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if request.param == "filesystem":
        return filesystem_broker(tmp_path / "var")
    if request.param == "redis":
        if not reachable(REDIS_URL):
            pytest.skip("Redis is not reachable on 127.0.0.1:6379")
        return Broker(REDIS_URL, {}, {"CELERY_BROKER_URL": REDIS_URL})
    if not reachable(AMQP_URL):
        pytest.skip("RabbitMQ is not reachable on 127.0.0.1:5672")
    return Broker(AMQP_URL, {}, {"CELERY_BROKER_URL": AMQP_URL})


@pytest.fixture
def queue() -> str:
    return f"jh-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def worker(broker, queue, tmp_path):
    worker = Worker(broker, queue, tmp_path / "worker.log")
    try:
        worker.wait_until_ready()
        yield worker
    finally:
        worker.stop()


def wait_for_transition(customer: Customer, worker: Worker) -> StageTransition:
    deadline = time.monotonic() + TASK_DONE_SECONDS
    while True:
        transition = StageTransition.objects.filter(customer=customer).first()
        if transition:
            return transition
        assert worker.process.poll() is None, f"the worker died:\n{worker.log()}"
        assert time.monotonic() < deadline, f"nothing in {TASK_DONE_SECONDS}s:\n{worker.log()}"
        time.sleep(0.2)


# serialized_rollback: the "Churn risk" rule comes from a data migration, and an earlier
# transactional test may have flushed it away.
@pytest.mark.broker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_inactivity_sweep_sent_from_web_runs_in_worker_process(broker, queue, worker):
    now = timezone.now()
    idle = Customer.objects.create(
        external_id=f"idle-{queue}", stage=Stage.ENGAGEMENT,
        created_at=now - timedelta(days=60), last_seen_at=now - timedelta(days=40),
    )
    active = Customer.objects.create(
        external_id=f"active-{queue}", stage=Stage.ENGAGEMENT,
        created_at=now - timedelta(days=60), last_seen_at=now - timedelta(days=1),
    )

    with Connection(broker.url, transport_options=broker.transport_options) as conn:
        sent = stage_rules_apply_inactivity.apply_async(queue=queue, connection=conn)

    transition = wait_for_transition(idle, worker)
    assert (transition.from_stage, transition.to_stage) == (Stage.ENGAGEMENT, Stage.RETENTION)
    assert transition.rule.name == "Churn risk"
    idle.refresh_from_db()
    active.refresh_from_db()
    assert idle.stage == Stage.RETENTION
    assert active.stage == Stage.ENGAGEMENT
    # It was the worker, not this process, that ran it. The worker logs the success after
    # the task's transaction has committed, so the line may come a moment after the row.
    deadline = time.monotonic() + TASK_DONE_SECONDS
    while f"[{sent.id}] succeeded" not in worker.log():
        assert time.monotonic() < deadline, f"no success logged:\n{worker.log()}"
        time.sleep(0.1)
