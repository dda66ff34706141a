"""``make run``'s supervisor: web, worker and beat come up together and go down together."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.workers import test_database_url

START_SECONDS = 90  # three Django processes starting at once on a 2-core machine
STOP_SECONDS = 40  # the supervisor's own grace period (10 s) plus a margin

# serialized_rollback like every transactional test here: a plain flush re-creates content types
# with new ids, and the next serialized_rollback test then fails to restore its own.
pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gone(pid: int) -> bool:
    """No process is left in the child's process group (pool processes included)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Devserver:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log_path = tmp_path / "devserver.log"
        env = {
            **os.environ, "PORT": str(self.port), "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": "filesystem://", "JOURNEYHUB_VAR_DIR": str(tmp_path / "var"),
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "journeyhub.devserver"], cwd=settings.BASE_DIR, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_running(self) -> dict[str, int]:
        deadline = time.monotonic() + START_SECONDS
        while "JourneyHub is running" not in self.log():
            assert self.process.poll() is None, f"the supervisor exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"not running in {START_SECONDS}s:\n{self.log()}"
            time.sleep(0.3)
        return {name: int(pid) for name, pid in re.findall(r"^(\w+)\s+\| started \(pid (\d+)\)",
                                                             self.log(), re.MULTILINE)}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def devserver(tmp_path):
    server = Devserver(tmp_path)
    yield server
    server.kill()


def test_web_worker_and_beat_start_and_the_admin_answers(devserver):
    pids = devserver.wait_until_running()

    assert set(pids) == {"web", "worker", "beat"}
    with urllib.request.urlopen(f"http://127.0.0.1:{devserver.port}/login/", timeout=10) as page:
        assert page.status == 200
        assert b"JourneyHub" in page.read()
    log = devserver.log()
    assert "admin login: admin / journeyhub" in log
    assert "celery@" in log and " ready." in log  # the worker
    assert "beat: Starting..." in log


def test_ctrl_c_stops_all_three_cleanly(devserver):
    pids = devserver.wait_until_running()

    devserver.process.send_signal(signal.SIGINT)

    assert devserver.process.wait(timeout=STOP_SECONDS) == 0, devserver.log()
    assert all(gone(pid) for pid in pids.values()), devserver.log()
    for name in pids:
        assert re.search(rf"^{name}\s+\| stopped", devserver.log(), re.MULTILINE)


def test_when_one_process_dies_the_others_are_stopped(devserver):
    pids = devserver.wait_until_running()

    os.kill(pids["beat"], signal.SIGKILL)

    assert devserver.process.wait(timeout=STOP_SECONDS) == 1, devserver.log()
    assert "beat   | exited with status -9; stopping the others" in devserver.log()
    assert gone(pids["web"]) and gone(pids["worker"]), devserver.log()
