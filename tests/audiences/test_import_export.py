import csv
import io
import json

import openpyxl
import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from import_export.tmp_storages import TempFolderStorage

from audiences.admin import customers as customers_admin
from audiences.models import Customer, StageTransition, customer_bucket
from audiences.services import customer_upsert

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:audiences_customer_import"
CONFIRM_URL = "admin:audiences_customer_process_import"
EXPORT_URL = "admin:audiences_customer_export"
HEADER = ["external_id", "first_name", "last_name", "email", "locale", "time_zone", "stage",
          "attributes", "push_opt_out"]
ANA = ["ana-1", "Ana", "Silva", "ana@example.com", "pt-PT", "Europe/Lisbon", "engagement",
       '{"city": "Lisbon", "plan": "pro"}', "0"]
BEN = ["ben-1", "Ben", "Okafor", "ben@example.com", "en-GB", "Europe/London", "conversion",
       '{"city": "London"}', "yes"]


def _csv(*rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows([HEADER, *rows])
    return buffer.getvalue().encode()


def _xlsx(*rows) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [HEADER, *rows]:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _format_index(response, name: str) -> str:
    for value, label in response.context["form"].fields["format"].choices:
        if label.lower() == name:
            return value
    raise AssertionError(f"no {name} import format")


def _upload(client, content: bytes, name: str):
    """Step 1 of the admin import: upload, get the dry-run preview."""
    page = client.get(reverse(IMPORT_URL))
    upload = SimpleUploadedFile(name, content)
    return client.post(reverse(IMPORT_URL), {
        "import_file": upload, "format": _format_index(page, name.rsplit(".", 1)[1]),
        "resource": "0",
    })


def _confirm(client, preview):
    """Step 2: confirm the previewed import."""
    form = preview.context["confirm_form"]
    return client.post(reverse(CONFIRM_URL), {
        name: form.initial.get(name, "") for name in form.fields
    })


@pytest.mark.parametrize(("build", "name"), [(_csv, "customers.csv"), (_xlsx, "customers.xlsx")])
def test_admin_import_previews_then_creates_customers(admin_client, build, name):
    preview = _upload(admin_client, build(ANA, BEN), name)

    assert preview.status_code == 200
    assert preview.context["result"].totals["new"] == 2
    assert not Customer.objects.exists()  # a preview writes nothing

    response = _confirm(admin_client, preview)

    assert response.status_code == 302
    ana = Customer.objects.get(external_id="ana-1")
    assert (ana.first_name, ana.email, ana.time_zone, ana.stage) == (
        "Ana", "ana@example.com", "Europe/Lisbon", "engagement",
    )
    assert ana.attributes == {"city": "Lisbon", "plan": "pro"}
    assert ana.bucket == customer_bucket("ana-1")
    assert len(ana.referral_code) == 10
    ben = Customer.objects.get(external_id="ben-1")
    assert ben.push_opt_out is True and ben.stage == "conversion"
    assert ben.referral_code != ana.referral_code


def test_import_updates_an_existing_customer_by_external_id(admin_client):
    existing, _ = customer_upsert(external_id="ana-1", first_name="Anna",
                                  email="old@example.com")
    code, bucket = existing.referral_code, existing.bucket

    _confirm(admin_client, _upload(admin_client, _csv(ANA), "customers.csv"))

    assert Customer.objects.count() == 1
    existing.refresh_from_db()
    assert (existing.first_name, existing.email) == ("Ana", "ana@example.com")
    assert (existing.referral_code, existing.bucket) == (code, bucket)


def test_a_stage_changed_by_import_is_recorded_as_a_transition(admin_client):
    customer, _ = customer_upsert(external_id="ana-1")

    _confirm(admin_client, _upload(admin_client, _csv(ANA), "customers.csv"))

    customer.refresh_from_db()
    assert customer.stage == "engagement" and customer.stage_changed_at is not None
    transition = StageTransition.objects.get(customer=customer)
    assert (transition.from_stage, transition.to_stage) == ("awareness", "engagement")
    assert "Imported" in transition.cause


def test_empty_cells_keep_locale_time_zone_and_stage(admin_client):
    customer, _ = customer_upsert(external_id="ana-1", locale="pt-PT",
                                  time_zone="Europe/Lisbon")
    row = ["ana-1", "Ana", "", "", "", "", "", "", ""]

    _confirm(admin_client, _upload(admin_client, _csv(row), "customers.csv"))

    customer.refresh_from_db()
    assert (customer.locale, customer.time_zone, customer.stage) == (
        "pt-PT", "Europe/Lisbon", "awareness",
    )
    assert customer.first_name == "Ana"


@pytest.mark.parametrize(("column", "bad_value", "reason"), [
    ("time_zone", "Mars/Olympus", "is not an IANA time zone"),
    ("stage", "delighted", "is not a valid choice"),
    ("attributes", '{"city": "Lisbon"', "Not valid JSON"),
    ("attributes", '["Lisbon"]', "Give a JSON object"),
    ("first_name", "A\x00na", "Must not contain NUL characters or lone surrogates"),
    ("external_id", "ana\x00", "Must not contain NUL characters or lone surrogates"),
    ("attributes", '{"price": 1e999}', "price: Numbers must be finite"),
    ("attributes", '{"n": 99999999999999999999}', "n: Integers must fit in 64 bits"),
    ("attributes", '{"city": "Lis\\u0000bon"}', "city: Must not contain NUL characters"),
    ("attributes", '{"deep": ' + "[" * 1000 + "]" * 1000 + "}", "Nested more than 32 levels"),
    ("email", "ana-at-example", "valid email"),
    ("push_opt_out", "maybe", "is not a yes/no value"),
])
def test_a_bad_row_shows_its_number_and_reason_and_nothing_is_imported(
    admin_client, column, bad_value, reason
):
    bad = list(BEN)
    bad[HEADER.index(column)] = bad_value

    preview = _upload(admin_client, _csv(ANA, bad), "customers.csv")

    assert preview.status_code == 200
    assert "confirm_form" not in preview.context  # no way to go on with a bad file
    invalid = preview.context["result"].invalid_rows
    assert [row.number for row in invalid] == [2]
    assert reason in str(invalid[0].error_dict[column])
    body = preview.content.decode()
    assert reason in body.replace("&#x27;", "'")
    assert not Customer.objects.exists()


def test_a_bad_row_in_an_xlsx_file_is_reported_too(admin_client):
    bad = list(BEN)
    bad[HEADER.index("time_zone")] = "Europe/Atlantis"

    preview = _upload(admin_client, _xlsx(bad, ANA), "customers.xlsx")

    assert [row.number for row in preview.context["result"].invalid_rows] == [1]
    assert not Customer.objects.exists()


def test_a_file_without_the_external_id_column_is_refused_with_the_reason(admin_client):
    preview = _upload(admin_client, b"first_name,email\nAna,ana@example.com\n", "customers.csv")

    assert preview.status_code == 200
    assert "confirm_form" not in preview.context
    body = preview.content.decode()
    assert "not present in the file headers: external_id" in body
    assert "Traceback" not in body
    assert not Customer.objects.exists()


def test_a_file_gone_bad_between_preview_and_confirm_imports_nothing(admin_client):
    """The confirm step reads the stored file again: one bad row there rolls back them all."""
    preview = _upload(admin_client, _csv(ANA, BEN), "customers.csv")
    bad = list(BEN)
    bad[HEADER.index("stage")] = "delighted"
    stored = preview.context["confirm_form"].initial["import_file_name"]
    TempFolderStorage(name=stored, encoding="utf-8").save(_csv(ANA, bad).decode())

    response = _confirm(admin_client, preview)

    assert response.status_code == 302
    assert not Customer.objects.exists()
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1 and "Nothing was imported. row 2:" in messages[0]
    assert "delighted" in messages[0]


def _export(client, file_format: str, **filters):
    page = client.get(reverse(EXPORT_URL))
    form = page.context["form"]
    choice = next(value for value, label in form.fields["format"].choices
                  if label.lower() == file_format)
    data = {"format": choice, "resource": "0"}
    data.update({name: "on" for name in form.fields if name.startswith("customerexportresource_")})
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return client.post(f"{reverse(EXPORT_URL)}?{query}", data)


@pytest.fixture
def two_customers():
    customer_upsert(external_id="ana-1", first_name="Ana", attributes={"city": "Lisbon"})
    customer_upsert(external_id="ben-1", first_name="Ben", push_opt_out=True)


def test_export_csv_has_the_customers(admin_client, two_customers):
    response = _export(admin_client, "csv")

    assert response.status_code == 200
    lines = response.content.decode().lstrip("\ufeff").splitlines()
    assert lines[0].startswith("external_id,first_name,last_name,email")
    assert "referral_code" in lines[0]
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["ana-1", "ben-1"]


def test_export_xlsx_has_the_customers(admin_client, two_customers):
    response = _export(admin_client, "xlsx")

    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("external_id", "first_name", "last_name")
    by_id = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert set(by_id) == {"ana-1", "ben-1"}
    assert json.loads(by_id["ana-1"]["attributes"]) == {"city": "Lisbon"}


def test_export_json_has_the_customers(admin_client, two_customers):
    response = _export(admin_client, "json")

    rows = json.loads(response.content)
    by_id = {row["external_id"]: row for row in rows}
    assert set(by_id) == {"ana-1", "ben-1"}
    assert by_id["ben-1"]["push_opt_out"] in ("1", 1, True)
    assert by_id["ana-1"]["first_name"] == "Ana"


def test_an_exported_file_imports_back_unchanged(admin_client, two_customers):
    exported = _export(admin_client, "csv").content

    preview = _upload(admin_client, exported, "customers.csv")

    totals = preview.context["result"].totals
    assert (totals["new"], totals["update"], totals["skip"], totals["invalid"]) == (0, 0, 2, 0)


def test_an_export_too_big_for_one_file_asks_to_filter_first(admin_client, two_customers,
                                                              monkeypatch):
    monkeypatch.setattr(customers_admin, "EXPORT_MAX_ROWS", 1)

    response = _export(admin_client, "csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("2 customers is more than one export can hold" in m for m in messages)

    filtered = _export(admin_client, "csv", stage__exact="awareness", first_name="Ana")
    assert filtered["Content-Type"].startswith("text/csv")
