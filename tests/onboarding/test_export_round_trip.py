"""What the customers exports write, import_customers reads back with nothing changed."""

import csv
from io import StringIO

import pytest
from django.core.management import call_command

from audiences.models import Customer, Topic, TopicOptOut
from audiences.resources import CustomerExportResource
from notifications.models import Device
from onboarding.services import customers_batch_upsert

pytestmark = pytest.mark.django_db

APNS = "cd" * 32
FCM = "-starts-with-a-dash:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9"
WEB = "https://push.example.com/send/abc"


@pytest.fixture
def brand_data(db):
    Topic.objects.get_or_create(key="news", defaults={"name": "News"})
    results = customers_batch_upsert(items=[
        {"external_id": "friend", "first_name": "=HYPERLINK(\"http://evil\")",
         "last_name": "-Silva", "email": "friend@example.com", "locale": "pt-PT",
         "time_zone": "Europe/Lisbon", "referral_code": "FRIEND-1",
         "attributes": {"plan": "pro", "address": {"city": "Lisbon", "zip": "1000"},
                        "tags": ["a", "b"], "visits": 7, "vip": True},
         "opted_out_topics": ["news"], "push_opt_out": True,
         "devices": [{"kind": "apns", "token": APNS, "environment": "sandbox",
                      "app_version": "2.1"},
                     {"kind": "fcm", "token": FCM, "platform": "android",
                      "application_id": "brand_b"},
                     {"kind": "webpush", "token": WEB, "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4",
                      "auth": "tBHItJI5svbpez7KI4CCXg", "browser": "firefox"}]},
        {"external_id": "newbie", "referred_by_code": "FRIEND-1"},
        {"external_id": "quiet"},
    ])
    assert {r["status"] for r in results} == {"created"}
    Customer.objects.filter(external_id="quiet").update(stage="retention")


def snapshot() -> tuple:
    customers = list(Customer.objects.order_by("pk").values())
    devices = list(Device.objects.order_by("pk").values())
    return customers, devices, list(TopicOptOut.objects.values_list("customer_id", "topic_id"))


def export(tmp_path, file_format: str):
    path = tmp_path / f"customers.{file_format}"
    call_command("export_customers", "--format", file_format, "--output", str(path),
                 "--no-progress", stderr=StringIO())
    return path


def import_(path) -> str:
    out = StringIO()
    call_command("import_customers", str(path), "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_an_export_imports_back_with_nothing_changed(tmp_path, brand_data, file_format):
    before = snapshot()

    out = import_(export(tmp_path, file_format))

    assert "Customers were: 0 created, 0 updated, 3 unchanged." in out
    assert "Devices were: 0 created, 0 updated (0 moved from another customer), 3 unchanged." \
        in out
    assert "Lines refused: 0" in out
    assert snapshot() == before


def test_an_export_rebuilds_the_same_customers_in_an_empty_database(tmp_path, brand_data):
    path = export(tmp_path, "csv")
    wanted = _comparable()
    Device.objects.all().delete()
    Customer.objects.all().delete()

    out = import_(path)

    assert "3 created" in out and "Devices were: 3 created" in out
    assert _comparable() == wanted


def _comparable():
    customers = {c["external_id"]: {k: v for k, v in c.items()
                                    if k not in ("id", "referred_by_id", "updated_at",
                                                 "stage_changed_at", "last_seen_at")}
                 for c in Customer.objects.values()}
    devices = sorted((d.customer.external_id, d.kind, d.token, d.platform, d.environment,
                      d.app_version, d.provider_device.application_id)
                     for d in Device.objects.all())
    referrals = list(Customer.objects.filter(referred_by__isnull=False)
                     .values_list("external_id", "referred_by__external_id"))
    opt_outs = list(TopicOptOut.objects.values_list("customer__external_id", "topic__key"))
    return customers, devices, referrals, opt_outs


def test_formula_like_text_is_written_as_text(tmp_path, brand_data):
    rows = list(csv.DictReader(export(tmp_path, "csv").open(encoding="utf-8")))

    friend = next(row for row in rows if row["external_id"] == "friend")
    assert friend["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert friend["last_name"] == "'-Silva"
    assert {row["device_token"] for row in rows} >= {"'" + FCM, APNS, WEB}


def test_the_admin_export_imports_back_with_nothing_changed(tmp_path, brand_data):
    before = snapshot()
    dataset = CustomerExportResource().export()
    path = tmp_path / "admin-export.csv"
    path.write_text(dataset.csv, encoding="utf-8")

    out = import_(path)

    assert "0 created, 0 updated, 3 unchanged" in out and "Lines refused: 0" in out
    assert "'=HYPERLINK" in dataset.csv
    assert snapshot() == before
