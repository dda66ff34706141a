"""The mapping presets shipped for import_customers --map: a OneSignal subscriptions export and
a Firebase-only app's own device table, each imported from a sample file."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from audiences.models import Customer
from notifications.models import Device

SAMPLES = Path(__file__).parent / "samples"
PRESETS = Path(__file__).parents[2] / "onboarding" / "maps"


def import_file(name: str, mapping: str) -> str:
    out = StringIO()
    call_command("import_customers", str(SAMPLES / name), "--map", mapping, "--no-progress",
                 stdout=out)
    return out.getvalue()


def devices_of(external_id: str) -> dict[str, Device]:
    return {d.token: d for d in Device.objects.filter(customer__external_id=external_id)}


@pytest.fixture
def onesignal(db) -> str:
    return import_file("onesignal_subscriptions.csv", "onesignal")


def test_onesignal_users_arrive_with_their_app_devices(onesignal):
    devices = devices_of("u-1001")
    assert {(d.kind, d.platform) for d in devices.values()} == {("apns", "ios"),
                                                                 ("fcm", "android")}
    iphone = devices["7abcd558f29d0b1f048083e2834ad8ea4b3d87d8ad9c088b33c132706ff445f0"]
    assert (iphone.app_version, iphone.locale, iphone.time_zone) == ("4.2.0", "en",
                                                                     "Europe/Lisbon")
    assert iphone.permission == "granted" and iphone.can_receive


def test_onesignal_tags_language_and_time_zone_land_on_the_customer(onesignal):
    customer = Customer.objects.get(external_id="u-1001")
    assert customer.attributes == {"plan": "pro", "city": "Lisbon"}
    assert (customer.locale, customer.time_zone) == ("en", "Europe/Lisbon")


def test_onesignal_web_push_and_email_subscriptions_bring_their_customer_only(onesignal):
    assert set(devices_of("u-1002")) == {
        "eXq3Jz1_R0mF1a2b3c4d5e:APA91bHB2qZx-9Tk2Lm8Nw4Rv7Yp1Qs3Ud6Wf0Xh5Zj"}
    for external_id in ("u-1003", "u-1005"):  # Firefox web push; an e-mail subscription
        assert Customer.objects.filter(external_id=external_id).exists()
        assert devices_of(external_id) == {}
    assert not Device.objects.filter(kind="webpush").exists()


def test_an_unsubscribed_onesignal_device_is_not_notified(onesignal):
    (iphone,) = devices_of("u-1004").values()
    assert iphone.permission == "denied" and not iphone.can_receive


def test_an_onesignal_subscription_without_an_external_id_is_refused_with_its_line(onesignal):
    assert "line 7: external_id: This field is required." in onesignal
    assert "Customers were: 5 created" in onesignal
    assert "Lines refused: 1 of 8." in onesignal
    assert Device.objects.count() == 4


def test_an_onesignal_export_imported_twice_changes_nothing(onesignal):
    customers = list(Customer.objects.order_by("pk").values())
    devices = list(Device.objects.order_by("pk").values())

    again = import_file("onesignal_subscriptions.csv", "onesignal")

    assert "5 unchanged" in again and "4 unchanged" in again
    assert list(Customer.objects.order_by("pk").values()) == customers
    assert list(Device.objects.order_by("pk").values()) == devices


def test_a_firebase_table_imports_customers_and_fcm_devices(db):
    output = import_file("firebase_devices.csv", "firebase")

    assert "Customers were: 3 created" in output and "Lines refused: 0 of 4." in output
    ana = Customer.objects.get(external_id="usr_81f2")
    assert (ana.email, ana.first_name, ana.locale, ana.time_zone) == (
        "ana@example.com", "Ana", "pt-PT", "Europe/Lisbon")
    assert ana.attributes == {"plan": "gold"}
    assert sorted((d.kind, d.platform, d.app_version) for d in ana.devices.all()) == [
        ("fcm", "android", "3.1.0"), ("fcm", "ios", "3.1.0")]
    assert [d.platform for d in devices_of("usr_93c0").values()] == ["web"]
    assert [d.platform for d in devices_of("usr_a417").values()] == ["android"]


def test_a_preset_is_found_by_name_or_by_path(db):
    by_path = import_file("firebase_devices.csv", str(PRESETS / "firebase.json"))

    assert "3 unchanged" not in by_path and Customer.objects.count() == 3
    assert "3 unchanged" in import_file("firebase_devices.csv", "firebase")
