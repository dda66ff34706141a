"""Plumbing for ``python manage.py bench NAME``: a registry, a timer and the result line.

Each app declares its benchmarks in ``<app>/benchmarks.py`` with ``@benchmark("name")``. A
benchmark gets the requested size and returns a BenchResult; both sides of the ratio must be
measured in the same run, on the same data."""

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection
from django.test import Client

BENCHMARKS: dict[str, "Benchmark"] = {}


@dataclass
class Benchmark:
    name: str
    func: Callable[..., "BenchResult"]
    default_size: int
    help: str
    # --flag -> {"choices": [...], "default": ..., "help": "..."}: options of this benchmark alone
    options: dict = field(default_factory=dict)


@dataclass
class BenchResult:
    ours_s: float
    ref: str
    ref_s: float
    extra: dict = field(default_factory=dict)

    def as_line(self, name: str, size: int) -> dict:
        return {
            "bench": name, "size": size,
            "ours_s": round(self.ours_s, 4), "ref": self.ref, "ref_s": round(self.ref_s, 4),
            "ratio": round(self.ours_s / self.ref_s, 4) if self.ref_s else None,
            **self.extra,
        }


def benchmark(name: str, *, default_size: int, help: str = "", options: dict | None = None):
    """Register ``func(*, size, log, **options)``; ``options`` name its extra command-line flags
    (``{"platform": {"choices": ["fcm", "apns"], "default": "fcm"}}`` is ``--platform``)."""

    def register(func):
        BENCHMARKS[name] = Benchmark(name, func, default_size, help or (func.__doc__ or ""),
                                     options or {})
        return func

    return register


def bench_options() -> dict[str, dict]:
    """Every benchmark's options by flag; a flag two benchmarks share offers both's choices."""
    merged: dict[str, dict] = {}
    for bench in BENCHMARKS.values():
        for flag, spec in bench.options.items():
            known = merged.setdefault(flag, {**spec, "choices": []})
            known["choices"] += [c for c in spec.get("choices", []) if c not in known["choices"]]
    return merged


@dataclass
class Stopwatch:
    seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Stopwatch]:
    watch = Stopwatch()
    start = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def database_url() -> str:
    """This process's PostgreSQL database as a URL, for a child process to use the same one
    (under tests, the test database)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:" \
           f"{db['PORT'] or 5432}/{db['NAME']}"


def api_post_all(url: str, bodies: list[str], key: str) -> None:
    """POST each JSON body to ``url`` with an API key, through Django's request handling as a
    client would (django.test.Client: no network, the whole middleware and view stack)."""
    client = Client()
    for body in bodies:
        response = client.post(url, body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Api-Key {key}")
        if response.status_code != 200:
            raise AssertionError(f"{url} answered {response.status_code}: "
                                 f"{response.content[:500]!r}")
