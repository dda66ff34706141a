"""Run the whole platform on one machine for development: ``python -m journeyhub.devserver``.

Starts three processes and keeps them together:

- web: ``manage.py runserver 127.0.0.1:$PORT`` (PORT defaults to 8000),
- worker: a Celery worker consuming the queues default, fanout, send and analytics,
- beat: Celery beat with the DatabaseScheduler (the schedules live in the database).

Their output is interleaved line by line, each line prefixed with the process name. Ctrl-C
(SIGINT) or SIGTERM stops all three; if one of them exits on its own, the others are stopped
too and the exit status is non-zero. ``make run`` migrates and seeds the demo data first.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WORKER_QUEUES = "default,fanout,send,analytics"
DEMO_LOGIN = ("admin", "journeyhub")  # created by `manage.py seed_demo`
STOP_GRACE_SECONDS = 10  # a Celery warm shutdown waits for running tasks; then we kill
POLL_SECONDS = 0.2
SECOND_SIGNAL_AFTER = 1.0  # seconds; an earlier repeat is the same signal delivered twice
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def commands(port: int) -> list[Child]:
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "journeyhub"]
    return [
        Child("web", [python, "manage.py", "runserver", f"{HOST}:{port}"]),
        # Mingle and gossip only matter between several workers; alone they just add chatter.
        Child("worker", [*celery, "worker", "--queues", WORKER_QUEUES, "--loglevel", "INFO",
                         "--without-mingle", "--without-gossip"]),
        Child("beat", [*celery, "beat", "--loglevel", "INFO"]),
    ]


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor itself is killed, so nothing is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: Ctrl-C still stops everything
        pass


class Supervisor:
    def __init__(self, children: list[Child], *, out=sys.stdout) -> None:
        self.children = children
        self.out = out
        self.out_lock = threading.Lock()
        self.stop_requested = threading.Event()
        self.first_signal_at: float | None = None
        self.width = max(len(child.name) for child in children)

    def say(self, name: str, line: str) -> None:
        with self.out_lock:
            try:
                self.out.write(f"{name:<{self.width}} | {line.rstrip()}\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the terminal or pipe is gone: keep going,
                pass  # so that the children are still stopped in order

    def request_stop(self, signum, frame) -> None:
        """SIGINT/SIGTERM handler. A second Ctrl-C means "no more patience"; but one signal
        often arrives twice at once (make forwards SIGTERM, and so does a process-group kill),
        so only a repeat SECOND_SIGNAL_AFTER later counts."""
        now = time.monotonic()
        if self.first_signal_at is None:
            self.first_signal_at = now
        elif now - self.first_signal_at > SECOND_SIGNAL_AFTER:
            for child in self.started():
                _kill_group(child.process.pid)
        self.stop_requested.set()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for child in self.children:
            if self.stop_requested.is_set():
                break
            # A session of its own: the terminal's Ctrl-C reaches only us, and we stop the
            # children in order instead of all of them racing at once.
            child.process = subprocess.Popen(
                child.argv, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
            self.say(child.name, f"started (pid {child.process.pid}): {' '.join(child.argv[1:])}")
        # Readers start after the last fork: preexec_fn is only safe while we have one thread.
        for child in self.started():
            child.reader = threading.Thread(target=self._relay, args=(child,), daemon=True)
            child.reader.start()

    def started(self) -> list[Child]:
        return [child for child in self.children if child.process is not None]

    def _relay(self, child: Child) -> None:
        for line in child.process.stdout:
            self.say(child.name, line)

    def watch(self, port: int) -> Child | None:
        """Wait for a stop request or for a child to exit (returned). Announce the web server
        once it answers."""
        announced = False
        while not self.stop_requested.is_set():
            exited = next((c for c in self.started() if c.process.poll() is not None), None)
            if exited:
                self.say(exited.name, f"exited with status {exited.process.returncode}; "
                                      "stopping the others")
                return exited
            if not announced and port_open(port):
                for line in banner(port):
                    self.say("web", line)
                announced = True
            time.sleep(POLL_SECONDS)
        return None

    def stop(self) -> None:
        """SIGTERM each child (a warm shutdown for Celery), then kill what is left."""
        for child in self.started():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in self.started():
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(child.name, f"did not stop in {STOP_GRACE_SECONDS}s; killing it")
            _kill_group(child.process.pid)  # pool processes, the autoreloader's child
            child.process.wait()
            if child.reader:
                child.reader.join(timeout=1)
            self.say(child.name, f"stopped (exit status {child.process.returncode})")


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((HOST, port)) == 0


def banner(port: int) -> list[str]:
    username, password = DEMO_LOGIN
    login = ("your superuser's login" if os.environ.get("DEMO") == "0"
             else f"admin login: {username} / {password}")
    return [
        "",
        f"JourneyHub is running: http://{HOST}:{port}/  ({login})",
        f"  API docs: http://{HOST}:{port}/api/docs/",
        f"  processes: web (runserver), worker (queues {WORKER_QUEUES}), beat (DatabaseScheduler)",
        "  Ctrl-C stops all three.",
        "",
    ]


def run(port: int) -> int:
    """Run until Ctrl-C (exit status 0) or until one process exits (exit status 1)."""
    supervisor = Supervisor(commands(port))
    if port_open(port):
        supervisor.say("web", f"port {port} on {HOST} is already in use; set PORT=...")
        return 1
    signal.signal(signal.SIGINT, supervisor.request_stop)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    supervisor.start()
    exited = supervisor.watch(port)
    supervisor.stop()
    return 1 if exited else 0


def main() -> None:
    sys.exit(run(int(os.environ.get("PORT") or 8000)))


if __name__ == "__main__":
    main()
