"""adopt_dpn_devices: rows a django-push-notifications project left behind get a Device and a
customer, by their user or a mapping file, without their tokens being copied."""

import uuid
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.models import Customer
from notifications.models import Device
from onboarding.adoption import INACTIVE_REASON

FCM = "fcm-token-{}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9"
APNS = "{:064x}"
WEBPUSH = "https://fcm.googleapis.com/fcm/send/endpoint-{}"


def adopt(*args) -> str:
    out = StringIO()
    call_command("adopt_dpn_devices", *args, stdout=out)
    return out.getvalue()


def row_counts(output: str) -> dict[str, list[int]]:
    """The per-kind table: label -> [linked, inactive, no user, no customer, already]."""
    table = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["linked"])
    for line in lines[start + 1:start + 4]:
        label, *numbers = line.rsplit(maxsplit=5)
        table[label.strip()] = [int(n.replace(",", "")) for n in numbers]
    return table


@pytest.fixture
def users(db):
    return {name: User.objects.create(username=name, email=f"{name}@example.com")
            for name in ("ana", "ben", "cy")}


@pytest.fixture
def dpn_rows(users):
    """What a brand on django-push-notifications has: devices of its users, one without a
    user, and an inactive one."""
    ana, ben, cy = users["ana"], users["ben"], users["cy"]
    return {
        "ana_android": GCMDevice.objects.create(user=ana, registration_id=FCM.format(1),
                                                cloud_message_type="FCM"),
        "ana_iphone": APNSDevice.objects.create(user=ana, registration_id=APNS.format(1),
                                                device_id=uuid.uuid4()),
        "ben_browser": WebPushDevice.objects.create(user=ben, registration_id=WEBPUSH.format(2),
                                                    p256dh="BNcR", auth="tBHI",
                                                    browser="CHROME"),
        "cy_old_phone": GCMDevice.objects.create(user=cy, registration_id=FCM.format(3),
                                                 cloud_message_type="GCM", active=False),
        "anonymous": GCMDevice.objects.create(registration_id=FCM.format(4),
                                              device_id="1a2b3c4d5e6f7a8b"),
    }


def test_rows_with_users_become_devices_of_customers_named_by_user_id(dpn_rows, users):
    output = adopt()

    ana = Customer.objects.get(external_id=str(users["ana"].pk))
    android = Device.objects.get(fcm=dpn_rows["ana_android"])
    iphone = Device.objects.get(apns=dpn_rows["ana_iphone"])
    assert (android.customer, android.kind, android.platform) == (ana, "fcm", "android")
    assert (iphone.customer, iphone.kind, iphone.platform) == (ana, "apns", "ios")
    assert android.token == FCM.format(1) and android.is_active
    browser = Device.objects.get(webpush=dpn_rows["ben_browser"])
    assert browser.customer.external_id == str(users["ben"].pk) and browser.platform == "web"
    assert Customer.objects.count() == 3
    assert row_counts(output) == {"APNs": [1, 0, 0, 0, 0], "FCM": [2, 1, 1, 0, 0],
                                  "Web Push": [1, 0, 0, 0, 0]}
    assert "customers were created: 3" in output


def test_no_token_is_copied(dpn_rows):
    before = {model: model.objects.count() for model in (GCMDevice, APNSDevice, WebPushDevice)}

    adopt()

    assert {model: model.objects.count() for model in before} == before
    assert Device.objects.get(fcm=dpn_rows["ana_android"]).fcm_id == dpn_rows["ana_android"].pk


def test_an_inactive_row_becomes_an_inactive_device(dpn_rows):
    adopt()

    device = Device.objects.get(fcm=dpn_rows["cy_old_phone"])
    assert not device.is_active and device.deactivated_reason == INACTIVE_REASON
    assert not device.can_receive


def test_a_device_keeps_the_date_dpn_created_it(dpn_rows):
    adopt()

    device = Device.objects.get(apns=dpn_rows["ana_iphone"])
    assert device.created_at == APNSDevice.objects.get(pk=dpn_rows["ana_iphone"].pk).date_created


def test_by_email_and_by_username_name_the_customer(dpn_rows, users):
    adopt("--by", "email")
    assert Device.objects.get(fcm=dpn_rows["ana_android"]).customer.external_id == \
        "ana@example.com"

    Device.objects.all().delete()
    adopt("--by", "username")
    assert Device.objects.get(fcm=dpn_rows["ana_android"]).customer.external_id == "ana"


def test_existing_customers_are_linked_and_left_unchanged(dpn_rows, users, customer_factory):
    ana = customer_factory(str(users["ana"].pk), first_name="Ana", time_zone="Europe/Lisbon")

    adopt()

    assert Device.objects.filter(customer=ana).count() == 2
    ana.refresh_from_db()
    assert (ana.first_name, ana.time_zone) == ("Ana", "Europe/Lisbon")


def test_created_customers_are_whole_customers(dpn_rows, users):
    adopt()

    ben = Customer.objects.get(external_id=str(users["ben"].pk))
    assert len(ben.referral_code) == 10 and 0 <= ben.bucket < 10_000
    assert (ben.locale, ben.time_zone, ben.stage) == ("en", "UTC", "awareness")


def test_without_creating_customers_only_existing_ones_get_devices(dpn_rows, users,
                                                                   customer_factory):
    customer_factory(str(users["ana"].pk))

    output = adopt("--no-create-customers")

    assert Customer.objects.count() == 1
    assert set(Device.objects.values_list("kind", flat=True)) == {"fcm", "apns"}
    assert row_counts(output)["Web Push"] == [0, 0, 0, 1, 0]
    assert row_counts(output)["FCM"] == [1, 0, 1, 1, 0]


def test_a_user_without_the_chosen_field_is_skipped(dpn_rows, users):
    User.objects.filter(pk=users["ben"].pk).update(email="")

    output = adopt("--by", "email")

    assert not Device.objects.filter(webpush=dpn_rows["ben_browser"]).exists()
    assert row_counts(output)["Web Push"] == [0, 0, 0, 1, 0]


def test_fcm_rows_take_the_platform_given(dpn_rows):
    adopt("--fcm-platform", "ios")

    assert Device.objects.get(fcm=dpn_rows["ana_android"]).platform == "ios"


def test_a_second_run_changes_nothing(dpn_rows):
    adopt()
    devices = list(Device.objects.order_by("pk").values())
    customers = list(Customer.objects.order_by("pk").values())

    output = adopt()

    assert list(Device.objects.order_by("pk").values()) == devices
    assert list(Customer.objects.order_by("pk").values()) == customers
    assert row_counts(output) == {"APNs": [0, 0, 0, 0, 1], "FCM": [0, 0, 1, 0, 2],
                                  "Web Push": [0, 0, 0, 0, 1]}


def test_a_dry_run_reports_and_writes_nothing(dpn_rows):
    output = adopt("--dry-run")

    assert Device.objects.count() == 0 and Customer.objects.count() == 0
    assert row_counts(output)["FCM"] == [2, 1, 1, 0, 0]
    assert "customers would be created: 3" in output and "Dry run" in output


def test_a_mapping_file_names_the_customers_of_rows_without_users(dpn_rows, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"registration_id,external_id\n{FCM.format(4)},shopper-4\n"
                       f"{FCM.format(99)},shopper-99\n")

    output = adopt("--mapping", str(mapping))

    device = Device.objects.get(fcm=dpn_rows["anonymous"])
    assert device.customer.external_id == "shopper-4"
    assert row_counts(output)["FCM"] == [3, 1, 0, 0, 0]
    assert "2 lines, 1 naming no device, 0 refused" in output


def test_a_mapping_file_by_device_id(dpn_rows, tmp_path):
    iphone = dpn_rows["ana_iphone"]
    big_id = GCMDevice.objects.create(registration_id=FCM.format(5), device_id="f0000000000000ab")
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"device_id,external_id\n1A2B3C4D5E6F7A8B,shopper-4\n"
                       f"{iphone.device_id},ana-from-crm\n0xf0000000000000ab,shopper-5\n")

    adopt("--mapping", str(mapping))

    assert Device.objects.get(fcm=dpn_rows["anonymous"]).customer.external_id == "shopper-4"
    assert Device.objects.get(fcm=big_id).customer.external_id == "shopper-5"  # over 2**63
    # the mapping file wins over the row's user
    assert Device.objects.get(apns=iphone).customer.external_id == "ana-from-crm"


def test_bad_mapping_lines_are_reported_and_skipped(dpn_rows, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text(f"registration_id,external_id\n{FCM.format(4)},\n"
                       f"{FCM.format(4)},ok/token\n{FCM.format(4)},shopper-4\n"
                       f"{FCM.format(4)},shopper-5\n,x\n")

    output = adopt("--mapping", str(mapping))

    assert "mapping line 2: external_id: This field may not be blank." in output
    assert "mapping line 3: external_id: An external id may not end in /token" in output
    assert "mapping line 5: registration_id: already on line 4." in output
    assert "mapping line 6: registration_id: This field may not be blank." in output
    assert Device.objects.get(fcm=dpn_rows["anonymous"]).customer.external_id == "shopper-4"


def test_a_mapping_file_with_another_header_is_refused_whole(dpn_rows, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text("token,user\nabc,1\n")

    with pytest.raises(CommandError, match="registration_id,external_id or device_id"):
        adopt("--mapping", str(mapping))
    assert Device.objects.count() == 0


def test_a_missing_mapping_file_is_refused(db):
    with pytest.raises(CommandError, match="No file at"):
        adopt("--mapping", "/nonexistent/map.csv")


def test_a_row_a_registration_already_linked_is_left_alone(dpn_rows, customer_factory):
    someone = customer_factory("someone")
    Device.objects.create(customer=someone, kind="fcm", platform="android",
                          fcm=dpn_rows["ana_android"])

    output = adopt()

    assert Device.objects.get(fcm=dpn_rows["ana_android"]).customer == someone
    assert row_counts(output)["FCM"] == [1, 1, 1, 0, 1]


def test_a_user_field_that_cannot_be_an_external_id_is_reported_and_skipped(dpn_rows, users):
    User.objects.filter(pk=users["ben"].pk).update(username="ben/token")

    output = adopt("--by", "username")

    assert "external id 'ben/token': An external id may not end in" in output
    assert row_counts(output)["Web Push"] == [0, 0, 0, 1, 0]
    assert not Customer.objects.filter(external_id="ben/token").exists()


@pytest.mark.parametrize("good_lines", [0, 2000], ids=["in the first block", "further on"])
def test_a_mapping_file_that_is_not_utf8_writes_nothing(dpn_rows, tmp_path, good_lines):
    mapping = tmp_path / "map.csv"
    lines = b"".join(b"%d,shopper-%d\n" % (n, n) for n in range(good_lines))
    mapping.write_bytes(b"registration_id,external_id\n" + FCM.format(4).encode()
                        + b",shopper-4\n" + lines + b"x,caf\xe9\n")

    with pytest.raises(CommandError, match="not a UTF-8 CSV file"):
        adopt("--mapping", str(mapping))
    assert Device.objects.count() == 0 and Customer.objects.count() == 0
