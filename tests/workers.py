"""Real Celery worker processes for tests: started against a broker and the test database,
stopped (or killed) by the test."""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

from django.conf import settings
from django.db import connection

from journeyhub.celery import app as celery_app

WORKER_READY_SECONDS = 60  # Django setup + broker connection; seconds on a loaded 2-core box
TASK_DONE_SECONDS = 60
WORKER_STOP_SECONDS = 20

# Brokers of the worker tests; a run beside another on the same machine names its own.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


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
    def __init__(self, broker: Broker, queue: str, log_path: Path, concurrency: int = 1,
                 name: str = "") -> None:
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "celery", "-A", "journeyhub", "worker",
            "--queues", queue, "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--hostname", f"{name or queue}@%h", "--without-mingle", "--without-gossip",
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

    def is_ready(self) -> bool:
        return " ready." in self.log()

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


@contextmanager
def publishing_to(url: str):
    """Tasks this process enqueues go to ``url`` meanwhile (the workers' broker), instead of
    the configured one."""
    names = ("broker_url", "broker_write_url", "broker_read_url")
    saved = {name: celery_app.conf[name] for name in names}

    def switch(to: dict) -> None:
        # kombu keeps one pool per broker URL for the process: drop only our references.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        celery_app.conf.update(to)

    switch(dict.fromkeys(names, url))
    try:
        yield
    finally:
        switch(saved)
