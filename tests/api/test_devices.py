import pytest
from django.urls import URLResolver, get_resolver
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from notifications.models import Device

APNS_TOKEN = "ab" * 32
FCM_TOKEN = "dGVzdC10b2tlbi0x:APA91b" + "Fq3x_-9" * 20
WEBPUSH = {
    "kind": "webpush", "token": "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
    "p256dh": "B" + "q" * 86, "auth": "a" * 22, "browser": "firefox",
}


def register(client, body):
    return client.post("/api/v1/me/devices/", body, format="json")


@pytest.fixture
def anas_phone(app_for, ana) -> dict:
    return register(app_for(ana), {"kind": "apns", "token": APNS_TOKEN, "app_version": "1.0"}
                    ).json()


def test_an_apns_device_is_registered_with_201(app_for, ana):
    response = register(app_for(ana), {
        "kind": "apns", "token": APNS_TOKEN.upper(), "app_version": "2.3.1", "locale": "pt-PT",
        "time_zone": "Europe/Lisbon", "environment": "sandbox", "permission": "provisional",
        "application_id": "com.example.app",
    })

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["platform"], body["token"]) == ("apns", "ios", APNS_TOKEN)
    assert body["application_id"] == "com.example.app"
    device = Device.objects.get(pk=body["id"])
    assert device.customer == ana
    assert (device.environment, device.permission) == ("sandbox", "provisional")


def test_an_fcm_device_needs_its_platform(app_for, ana):
    client = app_for(ana)

    missing = register(client, {"kind": "fcm", "token": FCM_TOKEN})
    given = register(client, {"kind": "fcm", "token": FCM_TOKEN, "platform": "android"})

    assert missing.status_code == 400
    assert "platform" in missing.json()["errors"]
    assert given.status_code == 201
    assert GCMDevice.objects.get().cloud_message_type == "FCM"


def test_a_webpush_device_keeps_its_keys(app_for, ana):
    response = register(app_for(ana), WEBPUSH)

    assert response.status_code == 201
    assert response.json()["browser"] == "firefox"
    row = WebPushDevice.objects.get()
    assert (row.p256dh, row.auth, row.browser) == (WEBPUSH["p256dh"], WEBPUSH["auth"], "FIREFOX")


@pytest.mark.parametrize("body, field", [
    ({"kind": "apns", "token": "xyz"}, "token"),
    ({"kind": "apns", "token": "ab" * 31}, "token"),
    ({"kind": "apns", "token": APNS_TOKEN, "platform": "android"}, "platform"),
    ({"kind": "fcm", "token": "short", "platform": "android"}, "token"),
    ({"kind": "fcm", "token": FCM_TOKEN, "platform": "android", "auth": "a" * 22}, "auth"),
    ({"kind": "blackberry", "token": "x"}, "kind"),
    ({"token": APNS_TOKEN}, "kind"),
    ({"kind": "apns"}, "token"),
    ({"kind": "apns", "token": APNS_TOKEN, "time_zone": "Moon/Base"}, "time_zone"),
    ({"kind": "apns", "token": APNS_TOKEN, "environment": "staging"}, "environment"),
    ({"kind": "apns", "token": APNS_TOKEN, "permission": "maybe"}, "permission"),
    ({"kind": "apns", "token": APNS_TOKEN, "application_id": "a" * 65}, "application_id"),
    ({"kind": "apns", "token": APNS_TOKEN, "customer": 1}, "customer"),
    ({**WEBPUSH, "token": "http://insecure.example.com/push"}, "token"),
    ({**WEBPUSH, "token": "https://[::1"}, "token"),
    ({**WEBPUSH, "token": "https://push.example.com/" + "é" * 1000}, "token"),
    ({**WEBPUSH, "token": "https://push.example.com/" + "a" * 2048}, "token"),
    ({"kind": "fcm", "token": "a" * 1025, "platform": "android"}, "token"),
    ({k: v for k, v in WEBPUSH.items() if k != "p256dh"}, "p256dh"),
    ({**WEBPUSH, "auth": "not base64!"}, "auth"),
    ({**WEBPUSH, "browser": "lynx"}, "browser"),
    ({**WEBPUSH, "platform": "ios"}, "platform"),
])
def test_bad_registrations_are_400_naming_the_field(app_for, ana, body, field):
    response = register(app_for(ana), body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Device.objects.exists()


@pytest.mark.parametrize("body, message", [
    ({"kind": "blackberry", "token": "x"},
     '"blackberry" is not a valid choice. Choose one of: apns, fcm, webpush.'),
    ({"kind": "apns", "token": APNS_TOKEN, "environment": "staging"},
     '"staging" is not a valid choice. Choose one of: sandbox, production.'),
    ({"kind": "apns", "token": "xyz"},
     "An APNs token is at least 64 hexadecimal digits (0-9, a-f; at most 200)."),
    ({"kind": "fcm", "token": "short", "platform": "android"},
     "This is not an FCM registration token: one is 32 to 1,024 characters of letters, "
     "digits, '_', ':' and '-'."),
    ({**WEBPUSH, "token": "http://insecure.example.com/push"},
     "A Web Push token is the subscription's https endpoint URL (https://..., ASCII, at most "
     "2,048 characters)."),
])
def test_a_400_says_what_is_valid(app_for, ana, body, message):
    response = register(app_for(ana), body)

    assert response.status_code == 400
    assert message in [m for ms in response.json()["errors"].values() for m in ms]


def test_registering_the_same_token_again_updates_it(app_for, ana, anas_phone):
    response = register(app_for(ana), {"kind": "apns", "token": APNS_TOKEN, "app_version": "1.1"})

    assert response.status_code == 200
    assert response.json()["id"] == anas_phone["id"]
    assert Device.objects.get().app_version == "1.1"
    assert APNSDevice.objects.count() == 1


def test_a_token_moves_to_the_customer_who_registers_it(app_for, ana, ben, anas_phone):
    """Ana logs out, Ben logs in on the same phone: the phone is Ben's now, and only Ben's."""
    response = register(app_for(ben), {"kind": "apns", "token": APNS_TOKEN})

    assert response.status_code == 200
    assert response.json()["id"] == anas_phone["id"]
    assert Device.objects.get().customer == ben
    assert app_for(ana).get("/api/v1/me/devices/").json()["results"] == []
    assert app_for(ana).get(f"/api/v1/me/devices/{anas_phone['id']}/").status_code == 404


def test_my_devices_are_listed_newest_first(app_for, ana, ben, anas_phone):
    register(app_for(ben), {"kind": "fcm", "token": FCM_TOKEN, "platform": "android"})
    laptop = register(app_for(ana), WEBPUSH).json()

    response = app_for(ana).get("/api/v1/me/devices/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [d["id"] for d in body["results"]] == [laptop["id"], anas_phone["id"]]


def test_the_device_list_is_paginated(app_for, ana):
    client = app_for(ana)
    for digit in "0123":
        register(client, {"kind": "apns", "token": digit * 64})

    page = client.get("/api/v1/me/devices/?limit=3").json()

    assert page["count"] == 4
    assert len(page["results"]) == 3
    assert "offset=3" in page["next"]


def test_i_can_read_update_and_delete_my_device(app_for, ana, anas_phone):
    client = app_for(ana)
    url = f"/api/v1/me/devices/{anas_phone['id']}/"

    assert client.get(url).json()["token"] == APNS_TOKEN
    patched = client.patch(url, {"permission": "denied", "app_version": "1.2"}, format="json")
    assert patched.status_code == 200
    assert (patched.json()["permission"], patched.json()["app_version"]) == ("denied", "1.2")
    assert client.delete(url).status_code == 204
    assert not Device.objects.exists()
    assert not APNSDevice.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"token": "cd" * 32}, "token"),
    ({"kind": "fcm"}, "kind"),
    ({"platform": "web"}, "platform"),
    ({"permission": "maybe"}, "permission"),
    ({"time_zone": "Atlantis/Capital"}, "time_zone"),
])
def test_a_device_patch_refuses_bad_fields(app_for, ana, anas_phone, body, field):
    response = app_for(ana).patch(f"/api/v1/me/devices/{anas_phone['id']}/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Device.objects.get().token == APNS_TOKEN


def test_another_customers_device_is_404_for_every_method(app_for, ana, ben, anas_phone):
    bens_app = app_for(ben)
    url = f"/api/v1/me/devices/{anas_phone['id']}/"

    responses = [bens_app.get(url), bens_app.patch(url, {"permission": "denied"}, format="json"),
                 bens_app.delete(url)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert responses[0].json() == {"detail": "No such device.", "code": "not_found"}
    device = Device.objects.get()
    assert (device.customer, device.permission) == (ana, "granted")
    assert bens_app.get("/api/v1/me/devices/").json()["results"] == []


@pytest.mark.parametrize("device_id", ["0", "-1", "abc", "1.5", str(2**63), "9" * 40, "١٢"])
def test_impossible_device_ids_are_404(app_for, ana, device_id):
    response = app_for(ana).get(f"/api/v1/me/devices/{device_id}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_an_api_key_cannot_reach_devices(brand):
    assert brand.get("/api/v1/me/devices/").status_code == 401


def test_the_library_device_viewsets_are_not_routed():
    """django-push-notifications ships its own device viewsets; they would bypass our
    ownership rules, so no URL may lead to them."""
    views = [pattern.lookup_str for pattern in _all_patterns(get_resolver())]

    assert views
    assert not [view for view in views if view.startswith("push_notifications")]


def _all_patterns(resolver):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _all_patterns(pattern)
        else:
            yield pattern


@pytest.mark.parametrize("url", ["/api/v1/device/apns/", "/api/v1/devices/", "/api/v2/me/"])
def test_an_unknown_api_path_is_a_json_404(app_for, ana, url):
    response = app_for(ana).get(url)

    assert response.status_code == 404
    assert response.json() == {"detail": "No such endpoint.", "code": "not_found"}
