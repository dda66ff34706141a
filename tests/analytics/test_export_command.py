"""python manage.py export_report: data on stdout or in a file, progress on stderr, clear
errors for bad arguments."""

import io
import json
import os

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from tests.analytics.export_data import export_history

pytestmark = pytest.mark.django_db

MARCH = ["--since", "2026-03-01", "--until", "2026-03-31"]


@pytest.fixture
def history():
    return export_history()


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_csv_goes_to_stdout_and_the_progress_bar_to_stderr(history):
    out, err = run("deliveries", "--format", "csv", *MARCH)

    lines = out.splitlines()
    assert lines[0].startswith("id,send_id,campaign_id,campaign,")
    assert sorted(int(line.split(",")[0]) for line in lines[1:]) == [
        d.pk for d in history.deliveries]
    assert "3 / ~" in err and "rows" in err and "[" in err
    assert "id,send_id" not in err


def test_csv_is_the_default_format(history):
    out, _ = run("events", *MARCH)

    assert out.startswith("id,customer,name,properties,occurred_at,received_at")


def test_json_with_a_campaign_to_a_file(history, tmp_path):
    target = tmp_path / "out.json"

    out, err = run("deliveries", "--format", "json", *MARCH,
                   "--campaign", str(history.campaign.pk), "--output", str(target))

    assert out == ""
    assert sorted(r["id"] for r in json.loads(target.read_text())) == [
        history.deliveries[0].pk, history.deliveries[1].pk]
    assert f"to {target}" in err
    assert not os.path.exists(f"{target}.part")


def test_xlsx_to_a_file(history, tmp_path):
    target = tmp_path / "events.xlsx"

    run("events", "--format", "xlsx", *MARCH, "--output", str(target))

    sheet = openpyxl.load_workbook(target).active
    assert [c.value for c in sheet[1]][:3] == ["id", "customer", "name"]
    assert sheet.max_row == 4


def test_a_device_as_output_is_written_to_not_replaced(history):
    run("deliveries", *MARCH, "--output", os.devnull, "--no-progress")

    assert not os.path.isfile(os.devnull)  # still the device


def test_no_progress_bar_when_asked(history):
    _, err = run("deliveries", *MARCH, "--no-progress")

    assert "rows" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["orders", *MARCH], "Unknown export 'orders'; choose one of: deliveries, events"),
    (["deliveries", "--format", "pdf", *MARCH], "Unknown --format 'pdf'"),
    (["deliveries", "--until", "2026-03-31"], "--since YYYY-MM-DD is required"),
    (["deliveries", "--since", "2026-03-01"], "--until YYYY-MM-DD is required"),
    (["deliveries", "--since", "March", "--until", "2026-03-31"],
     "--since 'March' is not a date: use YYYY-MM-DD"),
    (["deliveries", "--since", "2026-03-31", "--until", "2026-03-01"],
     "--until 2026-03-01 is before --since 2026-03-31"),
    (["deliveries", *MARCH, "--campaign", "spring"], "--campaign must be a campaign id"),
    (["deliveries", *MARCH, "--campaign", "999999"], "--campaign 999999: no such campaign"),
    (["journey_map", *MARCH, "--campaign", "{campaign}"], "takes no campaign"),
])
def test_bad_arguments_name_the_problem(history, args, message):
    args = [a.format(campaign=history.campaign.pk) for a in args]

    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)


def test_a_file_that_cannot_be_written_is_a_command_error(history, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        run("deliveries", *MARCH, "--output", str(tmp_path / "missing-dir" / "x.csv"))


def test_a_report_exports_through_the_same_command(history):
    out, _ = run("journey_map", "--format", "json", *MARCH)

    rows = json.loads(out)
    assert {row["section"] for row in rows} >= {"stage", "day"}
    assert rows[0]["since"] == "2026-03-01"
