"""``manage.py bench``: lists the benchmarks, runs one and ends with one JSON line."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.module_loading import autodiscover_modules

from journeyhub.bench import BENCHMARKS, BenchResult, benchmark

RESULT_KEYS = {"bench", "size", "ours_s", "ref", "ref_s", "ratio"}


@pytest.fixture
def summing_benchmark():
    """A tiny benchmark of the kind apps declare in <app>/benchmarks.py."""

    @benchmark("test-summing", default_size=100, help="Sum a range.\nSecond line not shown.")
    def summing(*, size, log):
        log(f"summing {size} numbers")
        return BenchResult(ours_s=0.5, ref="sum() of a list", ref_s=0.25, extra={"rows": size})

    yield summing
    BENCHMARKS.pop("test-summing")


@pytest.fixture
def colour_benchmark():
    """A benchmark with an option of its own, as ``send --platform``."""

    @benchmark("test-colour", default_size=1,
               options={"colour": {"choices": ["red", "blue"], "default": "red"}})
    def colour(*, size, log, colour):
        return BenchResult(ours_s=1.0, ref=f"{colour} paint", ref_s=1.0)

    yield colour
    BENCHMARKS.pop("test-colour")


def bench(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("bench", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_bench_without_a_name_lists_every_benchmark(summing_benchmark):
    out, _ = bench()

    autodiscover_modules("benchmarks")
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert listed == set(BENCHMARKS)
    assert "test-summing     (default --size 100) Sum a range." in out.splitlines()
    assert "Second line" not in out


def test_bench_prints_the_result_as_its_last_line(summing_benchmark):
    out, err = bench("test-summing", "--size", "7")

    result = json.loads(out.strip().splitlines()[-1])
    assert RESULT_KEYS <= set(result)
    assert result == {"bench": "test-summing", "size": 7, "ours_s": 0.5, "ref": "sum() of a list",
                      "ref_s": 0.25, "ratio": 2.0, "rows": 7}
    assert "summing 7 numbers" in err


def test_bench_uses_the_default_size_when_none_is_given(summing_benchmark):
    out, _ = bench("test-summing")

    assert json.loads(out.strip().splitlines()[-1])["size"] == 100


def test_unknown_benchmark_is_refused_with_the_known_names(summing_benchmark):
    with pytest.raises(CommandError, match=r"Unknown benchmark 'nope'; known: .*test-summing"):
        bench("nope")


def test_size_must_be_positive(summing_benchmark):
    with pytest.raises(CommandError, match="--size must be positive"):
        bench("test-summing", "--size", "-3")


def test_a_benchmark_gets_its_option_or_else_its_default(colour_benchmark):
    chosen, _ = bench("test-colour", "--colour", "blue")
    default, _ = bench("test-colour")

    assert json.loads(chosen.splitlines()[-1])["ref"] == "blue paint"
    assert json.loads(default.splitlines()[-1])["ref"] == "red paint"


def test_an_option_is_listed_with_its_benchmark(colour_benchmark):
    out, _ = bench()

    assert "test-colour      (default --size 1 [--colour red|blue])" in out


def test_an_option_outside_its_choices_is_refused(colour_benchmark):
    with pytest.raises(CommandError, match="invalid choice: 'green'"):
        bench("test-colour", "--colour", "green")


def test_an_option_of_another_benchmark_is_refused(colour_benchmark, summing_benchmark):
    with pytest.raises(CommandError, match="test-summing takes no --colour"):
        bench("test-summing", "--colour", "red")


def test_unknown_benchmark_exits_non_zero_from_the_shell(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "bench", "no-such-benchmark"],
        cwd=Path(settings.BASE_DIR), capture_output=True, text=True, timeout=120,
        env={**os.environ, "JOURNEYHUB_VAR_DIR": str(tmp_path)},
    )

    assert result.returncode != 0
    assert "Unknown benchmark 'no-such-benchmark'" in result.stderr
