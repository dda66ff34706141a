"""What the delivery benchmarks run beside this process: loopback providers (tests/fakes, each in
a process of its own, as the real service would be), Celery workers, and the CPU each spends."""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from journeyhub.bench import database_url

WORKER_READY_SECONDS = 120  # Django setup and the broker, on a loaded 2-core machine
PROFILE_RATE = 200  # py-spy samples a second: about 5% more CPU in the processes it samples


@contextmanager
def cpu_spent(into: dict, side: str, pids: list[int], *, children: bool = True):
    """CPU seconds used by these processes (and their children) while the block runs (Linux)."""
    before = cpu_seconds(pids, children)
    yield
    if before is not None and (after := cpu_seconds(pids, children)) is not None:
        into[side] = after - before


def cpu_seconds(pids: list[int], children: bool = True) -> float | None:
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


def per_message_us(cpu: dict, messages: int) -> dict:
    """{"cpu_us_per_msg_<side>": microseconds} for each side measured."""
    return {f"cpu_us_per_msg_{side}": round(1e6 * seconds / messages)
            for side, seconds in cpu.items()}


def py_spy_executable() -> str:
    """py-spy beside this Python (the virtualenv's) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise CommandError("--profile needs py-spy (requirements.txt).")
    return found


@contextmanager
def profiled(pids: list[int], path: str | None, log):
    """py-spy samples these processes and their children while the block runs, one raw
    (collapsed stacks) file per process: ``path``.<pid>. Nothing happens without a path."""
    if not path:
        yield
        return
    py_spy = py_spy_executable()
    recorders = [subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
         "--rate", str(PROFILE_RATE), "--format", "raw", "--output", f"{path}.{pid}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for pid in pids]
    time.sleep(1)  # py-spy attaches
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
        for recorder in recorders:
            _out, err = recorder.communicate()
            if recorder.returncode:
                log(f"py-spy: {err.decode(errors='replace').strip()[-500:]}")
        log(f"profile: {', '.join(f'{path}.{pid}' for pid in pids)}")


class FakeProcess:
    """A loopback provider from tests/fakes: its first line on stdout is its port, and it
    answers each line on stdin with its summary (``total`` accepted, ``last_at`` monotonic)."""

    module = ""
    kind = ""
    tls = False

    def __init__(self, scratch: Path):
        self.scratch = scratch

    def arguments(self) -> list[str]:
        return []

    def app_config(self) -> dict:
        raise NotImplementedError

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", "0", *self.arguments()],
            cwd=settings.BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.pid = self.process.pid
        self.apps_file = self.scratch / "push-apps.json"
        self.apps_file.write_text(json.dumps({self.kind: {"default": self.app_config()}}))
        return self

    def summary(self) -> dict:
        self.process.stdin.write("summary\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def worker_command(self) -> list[str]:
        """How a Celery worker sending to this fake starts."""
        return [sys.executable, "-m", "celery"]

    def worker_env(self) -> dict:
        return {}

    def __exit__(self, *exc_info):
        self.process.terminate()
        self.process.wait()


class FakeFcmProcess(FakeProcess):
    """tests/fakes/fcm_server.py (HTTP/1.1, FCM HTTP v1 and Google's token endpoint)."""

    module, kind = "tests.fakes.fcm_server", "fcm"

    def arguments(self) -> list[str]:
        self.credentials = self.scratch / "service-account.json"
        return ["--credentials", str(self.credentials), "--count-only"]

    def app_config(self) -> dict:
        return {"credentials_file": str(self.credentials), "endpoint": self.url}

    def summary(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_received") as response:
            return json.load(response)


class FakeApnsProcess(FakeProcess):
    """tests/fakes/apns_server.py (HTTP/2 in clear); aioapns is routed to it in each process
    that sends (the workers through tests/fakes/celery_to_fake_apns.py)."""

    module, kind = "tests.fakes.apns_server", "apns"
    KEY_ID, TEAM_ID, TOPIC = "FAKEKEY001", "FAKETEAM01", "com.example.bench"

    def arguments(self) -> list[str]:
        self.key_file = self.scratch / "AuthKey_FAKEKEY001.p8"
        return ["--key-file", str(self.key_file), "--key-id", self.KEY_ID,
                "--team-id", self.TEAM_ID]

    def app_config(self) -> dict:
        return {"key_file": str(self.key_file), "key_id": self.KEY_ID,
                "team_id": self.TEAM_ID, "topic": self.TOPIC, "use_sandbox": False}

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "tests.fakes.celery_to_fake_apns", str(self.port)]


class WebPushSinkProcess(FakeProcess):
    """tests/fakes/webpush_sink.py (HTTP/1.1 over TLS, as push services are; VAPID checked,
    the body not decrypted). Senders trust its certificate through REQUESTS_CA_BUNDLE."""

    module, kind, tls = "tests.fakes.webpush_sink", "webpush", True
    SUBJECT = "mailto:bench@example.com"

    def arguments(self) -> list[str]:
        self.cert_file = self.scratch / "push-service.pem"
        return ["--cert-file", str(self.cert_file)]

    def worker_env(self) -> dict:
        return {"REQUESTS_CA_BUNDLE": str(self.cert_file)}

    def __enter__(self):
        from py_vapid import Vapid

        from notifications.providers.webpush import vapid_public_key

        self.vapid = Vapid()
        self.vapid.generate_keys()
        self.private_pem = self.vapid.private_pem().decode()
        self.public_key = vapid_public_key(self.vapid)
        return super().__enter__()

    def app_config(self) -> dict:
        return {"vapid_private_key": self.private_pem, "vapid_public_key": self.public_key,
                "vapid_subject": self.SUBJECT}


class Workers:
    """Celery workers on the configured broker and this process's database, sending to a fake
    with the real provider backend."""

    def __init__(self, count: int, concurrency: int, fake: FakeProcess, scratch: Path, log):
        self.count, self.concurrency, self.fake = count, concurrency, fake
        self.scratch, self.log = scratch, log

    def __enter__(self):
        # Configured as in production: with DEBUG on, Django keeps every query it runs.
        env = {**os.environ, "DEBUG": "0",
               "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
               "PUSH_APPS_FILE": str(self.fake.apps_file),
               "PUSH_BACKEND": "notifications.providers.real.ProviderBackend",
               "DATABASE_URL": database_url(), **self.fake.worker_env()}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        self.processes, self.logs = [], []
        for n in range(self.count):
            log_path = self.scratch / f"worker-{n}.log"
            self.logs.append(log_path)
            self.processes.append(subprocess.Popen(
                [*self.fake.worker_command(), "-A", "journeyhub", "worker", "-Q",
                 "fanout,send,default", "--concurrency", str(self.concurrency),
                 "--hostname", f"bench{n}@%h",
                 "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
                cwd=settings.BASE_DIR, env=env, stdout=open(log_path, "wb"),  # noqa: SIM115
                stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while not all(" ready." in p.read_text(errors="replace") for p in self.logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                self.__exit__()
                raise AssertionError("workers did not start: " + self.logs[0].read_text())
            time.sleep(0.2)
        self.log(f"{self.count} workers ready")
        return self

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def __exit__(self, *exc_info):
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes:
            process.wait()
