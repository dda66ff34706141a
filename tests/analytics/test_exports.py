"""Raw exports of deliveries and events: exact content in every format, filters, limits."""

import csv
import io
import json
from datetime import date, datetime

import openpyxl
import pytest

from analytics import exports
from analytics.exports import DELIVERIES, EVENTS, ExportError, ExportFilter, export_stream
from tests.analytics.export_data import export_history

pytestmark = pytest.mark.django_db

MARCH = ExportFilter(since=date(2026, 3, 1), until=date(2026, 3, 31))


@pytest.fixture
def history():
    return export_history()


def read(dataset, file_format, filters=MARCH) -> bytes:
    return b"".join(export_stream(dataset=dataset, file_format=file_format, filters=filters))


def ids(dataset, filters) -> list[int]:
    return sorted(r["id"] for r in json.loads(read(dataset, "json", filters)))


def by_id(lines: list[str]) -> list[str]:
    """PostgreSQL streams rows in no particular order: compare them sorted by id."""
    return sorted(lines, key=lambda line: int(line.split(",")[0]))


def test_deliveries_csv_holds_every_column_of_every_row(history):
    d1, d2, d3 = history.deliveries
    s1, s2 = history.campaign_send.pk, history.other_send.pk
    c, st = history.campaign.pk, history.step.pk

    header, *lines = read(DELIVERIES, "csv").decode().split("\n")

    assert header == ("id,send_id,campaign_id,campaign,step_id,variant,customer,kind,"
                      "application_id,status,reason,error,created_at,sent_at,received_at,"
                      "opened_at")
    assert lines[-1] == ""  # every line ends in \n
    assert by_id(lines[:-1]) == [
        f"{d1.pk},{s1},{c},Spring offer,{st},A,ana-1,fcm,shop,sent,,,2026-03-01 10:00:00+00,"
        "2026-03-01 10:00:01+00,2026-03-01 10:00:02.5+00,2026-03-01 11:00:00+00",
        f"{d2.pk},{s1},{c},Spring offer,{st},A,bo-2,,,skipped,opted_out,,"
        "2026-03-02 10:00:00+00,,,",
        f"{d3.pk},{s2},,,,,ana-1,apns,,failed,dead_token,\"Unregistered, \"\"gone\"\"\","
        "2026-03-05 10:00:00+00,,,",
    ]


def test_events_csv_writes_properties_as_json_text(history):
    e1, e2, e3 = history.events

    header, *rows = list(csv.reader(io.StringIO(read(EVENTS, "csv").decode())))

    assert header == ["id", "customer", "name", "properties", "occurred_at", "received_at"]
    # The database's JSON text: key order is its own (PostgreSQL sorts, SQLite keeps).
    rows = [row[:3] + [json.loads(row[3])] + row[4:] for row in rows]
    assert sorted(rows, key=lambda row: int(row[0])) == [
        [str(e1.pk), "ana-1", "purchase", {"sku": "A1", "total": 12.5},
         "2026-03-01 09:00:00+00", "2026-03-01 09:00:01+00"],
        [str(e2.pk), "bo-2", "app_open", {}, "2026-03-03 10:00:00+00",
         "2026-03-03 10:00:00+00"],
        [str(e3.pk), "ana-1", "note", {"text": "=1+1"}, "2026-03-06 10:00:00+00",
         "2026-03-06 10:00:00+00"],
    ]


def test_json_is_one_array_with_an_object_per_line(history):
    d1, d2, d3 = history.deliveries

    text = read(DELIVERIES, "json").decode()

    lines = text.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 5
    records = sorted(json.loads(text), key=lambda r: r["id"])
    assert [r["id"] for r in records] == [d1.pk, d2.pk, d3.pk]
    assert records[0] == {
        "id": d1.pk, "send_id": history.campaign_send.pk, "campaign_id": history.campaign.pk,
        "campaign": "Spring offer", "step_id": history.step.pk, "variant": "A",
        "customer": "ana-1", "kind": "fcm", "application_id": "shop", "status": "sent",
        "reason": "", "error": "", "created_at": "2026-03-01 10:00:00+00",
        "sent_at": "2026-03-01 10:00:01+00", "received_at": "2026-03-01 10:00:02.5+00",
        "opened_at": "2026-03-01 11:00:00+00",
    }
    assert records[2]["campaign_id"] is None and records[2]["sent_at"] is None


def test_json_events_keep_properties_as_objects(history):
    records = sorted(json.loads(read(EVENTS, "json")), key=lambda r: r["id"])

    assert records[0]["properties"] == {"total": 12.5, "sku": "A1"}


def test_an_empty_export_is_an_empty_array_and_a_header():
    assert json.loads(read(DELIVERIES, "json")) == []
    assert read(DELIVERIES, "csv").decode().count("\n") == 1


def test_xlsx_has_a_header_then_typed_cells(history, tmp_path):
    path = tmp_path / "deliveries.xlsx"
    path.write_bytes(read(DELIVERIES, "xlsx"))

    sheet = openpyxl.load_workbook(path).active
    header, *rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    rows = [header, *sorted(rows, key=lambda row: row[0])]
    assert sheet.title == "deliveries"
    assert rows[0][:7] == ["id", "send_id", "campaign_id", "campaign", "step_id", "variant",
                           "customer"]
    assert rows[1][0] == history.deliveries[0].pk
    assert rows[1][6:10] == ["ana-1", "fcm", "shop", "sent"]
    assert rows[1][12:] == [datetime(2026, 3, 1, 10), datetime(2026, 3, 1, 10, 0, 1),
                            datetime(2026, 3, 1, 10, 0, 2, 500000), datetime(2026, 3, 1, 11)]
    assert len(rows) == 4


def test_xlsx_keeps_a_customers_formula_as_text(history, tmp_path):
    path = tmp_path / "events.xlsx"
    path.write_bytes(read(EVENTS, "xlsx"))

    sheet = openpyxl.load_workbook(path).active
    cell = next(row[3] for row in sheet.iter_rows() if row[2].value == "note")
    assert json.loads(cell.value) == {"text": "=1+1"}
    assert cell.data_type == "s"


def test_xlsx_beyond_excels_rows_is_refused_before_any_output(history, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)  # Excel's 1,048,575 rows, made small

    with pytest.raises(ExportError, match="3 rows do not fit in an Excel sheet"):
        export_stream(dataset=DELIVERIES, file_format="xlsx", filters=MARCH)


def test_the_date_range_takes_whole_utc_days_both_included(history):
    d1, d2, d3 = history.deliveries

    only_the_2nd = ExportFilter(since=date(2026, 3, 2), until=date(2026, 3, 2))
    from_the_2nd = ExportFilter(since=date(2026, 3, 2), until=date(2026, 3, 5))

    assert ids(DELIVERIES, only_the_2nd) == [d2.pk]
    assert ids(DELIVERIES, from_the_2nd) == [d2.pk, d3.pk]


def test_events_are_filtered_by_when_they_occurred(history):
    e1, e2, e3 = history.events

    early = ExportFilter(since=date(2026, 3, 1), until=date(2026, 3, 3))

    assert ids(EVENTS, early) == [e1.pk, e2.pk]


def test_the_campaign_filter_keeps_its_deliveries_and_its_enrolled_customers_events(history):
    d1, d2, _ = history.deliveries
    e1, _, e3 = history.events
    campaign = ExportFilter(since=date(2026, 3, 1), until=date(2026, 3, 31),
                            campaign_id=history.campaign.pk)

    assert ids(DELIVERIES, campaign) == [d1.pk, d2.pk]
    assert ids(EVENTS, campaign) == [e1.pk, e3.pk]


def test_rows_stream_in_pages(history, monkeypatch):
    monkeypatch.setattr(exports, "PAGE_SIZE", 2)  # more pages than rows would make

    pages = list(DELIVERIES.pages(MARCH))

    assert [len(page) for page in pages] == [2, 1]
    assert sorted(row[0] for page in pages for row in page) == [d.pk for d in history.deliveries]


def test_a_reader_who_stops_early_ends_the_export_cleanly(history, monkeypatch):
    monkeypatch.setattr(exports, "PAGE_SIZE", 1)
    pieces = export_stream(dataset=DELIVERIES, file_format="csv", filters=MARCH)

    next(pieces)
    pieces.close()  # the client went away

    assert len(list(DELIVERIES.rows(MARCH))) == 3  # the connection still works


def test_an_unknown_format_is_refused():
    with pytest.raises(ExportError, match="Unknown format 'pdf'"):
        export_stream(dataset=DELIVERIES, file_format="pdf", filters=MARCH)


def test_the_estimate_is_about_the_number_of_rows(history):
    estimate = exports.export_estimate(dataset=DELIVERIES, filters=MARCH)

    assert 1 <= estimate <= 100
