"""The delivery benchmarks run end to end at a tiny size (real workers, a loopback provider in a
process of its own) and print their JSON line with the CPU each side spent per message."""

import json
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from notifications.models import Delivery

pytestmark = [
    pytest.mark.postgres(reason="the benchmarks write their audience with PostgreSQL SQL, and "
                                "their workers need the committed test database"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
CPU_KEYS = {"cpu_us_per_msg_ours", "cpu_us_per_msg_fake_ours"}


def bench(*args: str) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("bench", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


@pytest.mark.parametrize("platform", ["fcm", "apns", "webpush"])
def test_send_bench_sends_through_the_pipeline_and_naively_to_the_same_provider(platform):
    line, err = bench("send", "--size", "50", "--platform", platform)

    assert (line["bench"], line["size"], line["platform"]) == ("send", 50, platform)
    assert line["ours_s"] > 0 and line["ref_s"] > 0
    assert CPU_KEYS | {"cpu_us_per_msg_naive", "cpu_us_per_msg_fake_naive"} <= set(line)
    assert "pipeline: 50 sent" in err and "naive: 50 in" in err
    # Every message reached the provider; on an overloaded machine a render may be skipped for
    # overrunning its time budget, which the line counts.
    sent = Delivery.objects.filter(kind=platform, status="sent").count()
    assert sent == 50 + 4 - line["not_sent_ours"]  # and the warm-ups


def test_send_bench_sends_fcm_by_default():
    line, _ = bench("send", "--size", "20")

    assert line["platform"] == "fcm" and "cpu_us_per_msg_naive" in line


def test_broadcast_bench_times_each_stage_to_the_last_message():
    line, err = bench("broadcast", "--size", "50")

    assert (line["bench"], line["size"]) == ("broadcast", 50)
    stages = [line[key] for key in ("segment_s", "fanout_s", "send_s")]
    assert all(seconds > 0 for seconds in stages)
    assert line["to_last_message_s"] == pytest.approx(line["fanout_s"] + line["send_s"],
                                                      abs=0.002)
    assert line["ours_s"] == pytest.approx(line["segment_s"] + line["to_last_message_s"],
                                           abs=0.002)
    assert CPU_KEYS | {"cpu_us_per_msg_ref", "cpu_us_per_msg_fake_ref"} <= set(line)
    assert "reference: 50 POSTs" in err


def test_profile_without_py_spy_is_refused_before_anything_runs(monkeypatch, tmp_path):
    # A machine without py-spy: none beside this Python, none on PATH.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CommandError, match="--profile needs py-spy"):
        bench("send", "--size", "20", "--profile", "/nowhere/profile")
    assert not Delivery.objects.exists()


def test_profile_samples_each_worker_into_a_file_of_its_own(tmp_path):
    line, err = bench("send", "--size", "50", "--profile", str(tmp_path / "worker"))

    files = sorted(tmp_path.glob("worker.*"))
    assert len(files) == line["workers"] == 2
    assert f"profile: {files[0]}" in err and "py-spy:" not in err
