import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.services import customer_upsert
from notifications.models import Device
from notifications.services import (
    device_deactivate,
    device_delete,
    device_register,
    device_update,
)

WEBPUSH_KEYS = {
    "p256dh": (
        "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    ),
    "auth": "tBHItJI5svbpez7KI4CCXg",
    "browser": "FIREFOX",
}


@pytest.fixture
def ana(db):
    return customer_upsert(external_id="ana")[0]


@pytest.fixture
def ben(db):
    return customer_upsert(external_id="ben")[0]


@pytest.mark.parametrize(("kind", "token", "platform", "model", "extra"), [
    ("apns", "a" * 64, "ios", APNSDevice, {}),
    ("fcm", "fcm-token-1", "android", GCMDevice, {}),
    ("webpush", "https://push.example.test/send/abc", "web", WebPushDevice, WEBPUSH_KEYS),
])
def test_each_kind_registers_a_provider_row_and_our_metadata(ana, kind, token, platform, model,
                                                             extra):
    device, created = device_register(
        customer=ana, kind=kind, token=token, platform=platform, app_version="3.2.1",
        locale="pt-PT", time_zone="Europe/Lisbon", environment="sandbox", **extra,
    )

    assert created
    provider_row = model.objects.get(registration_id=token)
    assert device.provider_device == provider_row and device.token == token
    assert (device.customer, device.app_version, device.environment) == (ana, "3.2.1", "sandbox")


def test_registering_the_same_token_again_updates_the_row(ana):
    first, _ = device_register(customer=ana, kind="fcm", token="t1", platform="android",
                               app_version="1.0")
    again, created = device_register(customer=ana, kind="fcm", token="t1", platform="android",
                                     app_version="1.1")

    assert not created and again.pk == first.pk
    assert Device.objects.get().app_version == "1.1"
    assert GCMDevice.objects.count() == 1


def test_a_token_moves_to_the_customer_who_registers_it_last(ana, ben):
    device_register(customer=ana, kind="apns", token="b" * 64, platform="ios")
    moved, created = device_register(customer=ben, kind="apns", token="b" * 64, platform="ios")

    assert not created
    assert list(Device.objects.values_list("customer__external_id", flat=True)) == ["ben"]
    assert APNSDevice.objects.count() == 1


def test_re_registering_reactivates_a_deactivated_device(ana):
    device, _ = device_register(customer=ana, kind="fcm", token="t1", platform="android")
    device_deactivate(device=device, reason="unregistered")

    device, _ = device_register(customer=ana, kind="fcm", token="t1", platform="android")

    assert device.is_active and device.deactivated_reason == ""
    assert GCMDevice.objects.get().active


def test_bad_time_zone_is_refused(ana):
    with pytest.raises(ValidationError):
        device_register(customer=ana, kind="fcm", token="t1", platform="android",
                        time_zone="Nowhere/Land")
    assert not GCMDevice.objects.exists()


def test_update_and_delete(ana):
    device, _ = device_register(customer=ana, kind="fcm", token="t1", platform="android")

    device_update(device=device, permission="denied")
    assert Device.objects.get().permission == "denied"

    device_delete(device=device)
    assert not Device.objects.exists() and not GCMDevice.objects.exists()


# serialized_rollback: keep the topics and stage rules that data migrations create.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_registrations_of_one_token_leave_one_row():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises all writers, so there is no race to test")
    customers = [customer_upsert(external_id=f"c{i}")[0] for i in range(8)]
    barrier = threading.Barrier(len(customers))
    errors = []

    def register(customer):
        try:
            barrier.wait()
            device_register(customer=customer, kind="fcm", token="same-token", platform="android")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert GCMDevice.objects.filter(registration_id="same-token").count() == 1
    assert Device.objects.count() == 1
