"""Reports as files through django-import-export resources: the campaign report and the
journey map in CSV, XLSX and JSON, with date and campaign filters."""

import csv
import io
import json
from datetime import date

import openpyxl
import pytest

from analytics.exports import ExportError, ExportFilter
from analytics.reports import campaign_report
from analytics.resources import report_export
from analytics.rollups import rollups_rebuild
from tests.analytics.rollup_data import D1, D2, campaign_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = campaign_world()
    rollups_rebuild(since=D1, until=D2)
    return world


def rows_of(name: str, filters: ExportFilter) -> list[dict]:
    text = report_export(name=name, file_format="csv", filters=filters).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_a_campaign_report_has_its_totals_then_days_steps_variants_platforms(world):
    filters = ExportFilter(since=D1, until=D2, campaign_id=world.campaign.pk)
    report = campaign_report(campaign=world.campaign, since=D1, until=D2)

    rows = rows_of("campaign_report", filters)

    total = rows[0]
    assert (total["breakdown"], total["campaign"], total["since"]) == ("total", "Spring offer",
                                                                      str(D1))
    assert int(total["sent"]) == report.totals.sent
    assert int(total["conversions"]) == report.totals.conversions
    assert "dead_token: 1" in total["failed_by_reason"]
    breakdowns = [row["breakdown"] for row in rows]
    assert breakdowns.count("day") == 2
    assert breakdowns.count("step") == len(report.steps)
    assert breakdowns.count("variant") == len(report.variants)
    assert breakdowns.count("platform") == len(report.platforms)
    assert sum(int(r["sent"]) for r in rows if r["breakdown"] == "day") == report.totals.sent


def test_the_date_range_narrows_the_report(world):
    only_d2 = ExportFilter(since=D2, until=D2, campaign_id=world.campaign.pk)

    rows = rows_of("campaign_report", only_d2)

    assert [r["key"] for r in rows if r["breakdown"] == "day"] == [str(D2)]
    assert int(rows[0]["sent"]) == 2  # step 2's two messages


def test_without_a_campaign_every_active_campaign_gets_a_row(world):
    rows = rows_of("campaign_report", ExportFilter(since=D1, until=D2))

    assert [(r["breakdown"], r["campaign"]) for r in rows] == [("campaign", "Spring offer")]


def test_an_unknown_campaign_is_refused(world):
    with pytest.raises(ExportError, match="no campaign 999999"):
        report_export(name="campaign_report", file_format="csv",
                      filters=ExportFilter(since=D1, until=D2, campaign_id=999999))


def test_xlsx_keeps_numbers_as_numbers(world, tmp_path):
    data = report_export(name="campaign_report", file_format="xlsx",
                         filters=ExportFilter(since=D1, until=D2, campaign_id=world.campaign.pk))
    path = tmp_path / "report.xlsx"
    path.write_bytes(data)

    sheet = openpyxl.load_workbook(path).active
    header = [c.value for c in sheet[1]]
    total = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert isinstance(total["sent"], int) and total["breakdown"] == "total"


def test_the_journey_map_exports_stages_days_and_transitions_as_json(world):
    data = report_export(name="journey_map", file_format="json",
                         filters=ExportFilter(since=date(2026, 3, 1), until=date(2026, 3, 3)))

    rows = json.loads(data)
    stages = [r for r in rows if r["section"] == "stage"]
    assert [r["stage"] for r in stages] == ["awareness", "engagement", "conversion",
                                            "retention", "advocacy"]
    assert len([r for r in rows if r["section"] == "day"]) == 5 * 3
    assert all(r["since"] == "2026-03-01" and r["until"] == "2026-03-03" for r in rows)


def test_an_unknown_report_or_format_is_refused():
    with pytest.raises(ExportError, match="Unknown report"):
        report_export(name="sales", file_format="csv", filters=ExportFilter())
    with pytest.raises(ExportError, match="Unknown format"):
        report_export(name="journey_map", file_format="pdf", filters=ExportFilter())
