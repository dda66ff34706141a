"""A task sent from the web side runs in a real Celery worker process, on every broker here.

Each case starts ``celery -A journeyhub worker`` as a subprocess against one broker and the
test database, sends the inactivity sweep the way the web side would, and waits for its effect
in the database. Each case listens on a queue of its own, so messages left behind by another
run or by a developer's ``make run`` cannot interfere."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from kombu import Connection

from audiences.models import Customer, Stage, StageTransition
from audiences.tasks import stage_rules_apply_inactivity

WORKER_READY_SECONDS = 60  # Django setup + broker connection; seconds on a loaded 2-core box
TASK_DONE_SECONDS = 60
WORKER_STOP_SECONDS = 20

REDIS_URL = "redis://127.0.0.1:6379/13"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class Broker:
    url: str
    transport_options: dict
    worker_env: dict = field(default_factory=dict)


def reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=1):
            return True
    except OSError:
        return False


def filesystem_broker(var_dir: Path) -> Broker:
    """The file broker settings.py configures for JOURNEYHUB_VAR_DIR=var_dir (var_dir/celery)."""
    celery_dir = var_dir / "celery"
    options = {
        "data_folder_in": str(celery_dir / "out"),
        "data_folder_out": str(celery_dir / "out"),
        "processed_folder": str(celery_dir / "processed"),
        "control_folder": str(celery_dir / "control"),
    }
    for folder in ("out", "processed", "control"):
        (celery_dir / folder).mkdir(parents=True, exist_ok=True)
    env = {"CELERY_BROKER_URL": "filesystem://", "JOURNEYHUB_VAR_DIR": str(var_dir)}
    return Broker("filesystem://", options, env)


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


def test_database_url() -> str:
    """A DATABASE_URL naming the database this test runs on (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        assert Path(db["NAME"]).is_absolute(), "a worker can only share a SQLite *file*"
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"], safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, despite its name


class Worker:
    def __init__(self, broker: Broker, queue: str, log_path: Path) -> None:
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "celery", "-A", "journeyhub", "worker",
            "--queues", queue, "--concurrency", "1", "--loglevel", "INFO",
            "--hostname", f"{queue}@%h", "--without-mingle", "--without-gossip",
        ]
        env = {**os.environ, "DATABASE_URL": test_database_url(), **broker.worker_env}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=settings.BASE_DIR, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while " ready." not in self.log():
            assert self.process.poll() is None, f"the worker died:\n{self.log()}"
            assert time.monotonic() < deadline, f"the worker was not ready:\n{self.log()}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(timeout=WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # and any pool process left behind
        except ProcessLookupError:
            pass
        self.process.wait()


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
    # It was the worker, not this process, that ran it.
    assert f"[{sent.id}] succeeded" in worker.log()
