import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.services import customer_upsert
from notifications import admin as devices_admin
from notifications.models import Device
from notifications.services import device_register

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_device_changelist"


@pytest.fixture
def devices():
    ana, _ = customer_upsert(external_id="ana")
    apns, _ = device_register(customer=ana, kind="apns", token="ab" * 32, platform="ios",
                              app_version="4.2.0")
    fcm, _ = device_register(customer=ana, kind="fcm", token="fcm-token-1", platform="android")
    web, _ = device_register(
        customer=ana, kind="webpush", token="https://push.example.test/send/1", platform="web",
        p256dh="B" + "a" * 86, auth="b" * 22, browser="FIREFOX",
    )
    return apns, fcm, web


def test_device_list_shows_devices_of_every_kind(admin_client, devices):
    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    listed = {device.kind for device in response.context["cl"].result_list}
    assert listed == {"apns", "fcm", "webpush"}


def test_device_list_filters_by_kind_and_finds_by_customer(admin_client, devices):
    response = admin_client.get(reverse(CHANGELIST), {"kind__exact": "fcm"})
    assert [d.kind for d in response.context["cl"].result_list] == ["fcm"]

    response = admin_client.get(reverse(CHANGELIST), {"q": "ana"})
    assert len(response.context["cl"].result_list) == 3


def test_deactivate_action_turns_off_device_and_token_and_says_so(admin_client, devices):
    apns, fcm, web = devices

    response = admin_client.post(reverse(CHANGELIST), {
        "action": "deactivate", "_selected_action": [apns.pk, web.pk],
    })

    assert response.status_code == 302
    assert set(Device.objects.filter(is_active=False).values_list("pk", flat=True)) == {
        apns.pk, web.pk,
    }
    assert not APNSDevice.objects.get(pk=apns.apns_id).active
    assert not WebPushDevice.objects.get(pk=web.webpush_id).active
    assert GCMDevice.objects.get(pk=fcm.fcm_id).active
    assert Device.objects.get(pk=apns.pk).deactivated_reason
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Deactivated 2 device(s)."]


def test_deactivating_inactive_devices_warns_instead(admin_client, devices):
    apns, _, _ = devices
    admin_client.post(reverse(CHANGELIST), {"action": "deactivate", "_selected_action": [apns.pk]},
                      follow=True)  # the first message is read on the page it redirects to

    response = admin_client.post(reverse(CHANGELIST), {
        "action": "deactivate", "_selected_action": [apns.pk],
    })

    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["The selected devices were already inactive."]


def test_device_page_renders(admin_client, devices):
    url = reverse("admin:notifications_device_change", args=[devices[0].pk])
    assert admin_client.get(url).status_code == 200


def test_deactivating_more_than_the_limit_is_refused_whole(admin_client, devices, monkeypatch):
    monkeypatch.setattr(devices_admin, "DEACTIVATE_MAX", 2)

    response = admin_client.post(reverse(CHANGELIST), {
        "action": "deactivate", "_selected_action": [device.pk for device in devices],
    })

    assert Device.objects.filter(is_active=True).count() == 3
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["Select at most 2 active devices at a time (filter the list first)."]
