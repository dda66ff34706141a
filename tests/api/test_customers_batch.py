"""POST /api/v1/customers/batch/: up to 1000 customers with their devices, per-item results."""

import pytest
from rest_framework.test import APIClient

from audiences.models import Customer, Event, Topic, TopicOptOut
from notifications.models import Device

URL = "/api/v1/customers/batch/"
FCM = "fcm-token-{}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9"
APNS = "ab" * 32


def batch(client, customers, **extra):
    return client.post(URL, {"customers": customers, **extra}, format="json")


@pytest.fixture
def news(db):
    return Topic.objects.get_or_create(key="news", defaults={"name": "News"})[0]


def test_a_batch_creates_customers_with_their_devices(brand):
    response = batch(brand, [
        {"external_id": "u-1", "first_name": "Ana", "email": "ana@example.com",
         "time_zone": "Europe/Lisbon", "attributes": {"plan": "pro", "visits": 3},
         "devices": [{"kind": "fcm", "token": FCM.format(1), "platform": "android",
                      "app_version": "4.2.0"},
                     {"kind": "apns", "token": APNS.upper(), "environment": "sandbox"}]},
        {"external_id": "u-2"},
    ])

    assert response.status_code == 200
    assert response.json()["results"] == [
        {"index": 0, "external_id": "u-1", "status": "created"},
        {"index": 1, "external_id": "u-2", "status": "created"},
    ]
    ana = Customer.objects.get(external_id="u-1")
    assert (ana.first_name, ana.email, ana.time_zone) == ("Ana", "ana@example.com",
                                                           "Europe/Lisbon")
    assert ana.attributes == {"plan": "pro", "visits": 3}
    assert len(ana.referral_code) == 10 and ana.bucket is not None
    devices = {d.kind: d for d in Device.objects.filter(customer=ana)}
    assert devices["fcm"].token == FCM.format(1) and devices["fcm"].app_version == "4.2.0"
    assert devices["apns"].token == APNS and devices["apns"].platform == "ios"
    assert devices["apns"].environment == "sandbox" and devices["apns"].is_active


def test_the_same_batch_twice_changes_nothing(brand, news):
    customers = [{"external_id": "u-1", "first_name": "Ana", "attributes": {"plan": "pro"},
                  "opted_out_topics": ["news"], "push_opt_out": False,
                  "devices": [{"kind": "fcm", "token": FCM.format(1), "platform": "android"}]}]
    batch(brand, customers)
    before = Customer.objects.values().get(external_id="u-1")

    again = batch(brand, customers)

    assert [r["status"] for r in again.json()["results"]] == ["unchanged"]
    assert Customer.objects.values().get(external_id="u-1") == before
    assert Device.objects.count() == 1 and TopicOptOut.objects.count() == 1


def test_only_what_is_sent_changes_and_null_deletes_an_attribute(brand, customer_factory):
    customer_factory("u-1", first_name="Ana", last_name="Silva",
                     attributes={"plan": "pro", "city": "Lisbon"})

    response = batch(brand, [{"external_id": "u-1", "attributes": {"city": None, "vip": True}}])

    assert response.json()["results"][0]["status"] == "updated"
    ana = Customer.objects.get(external_id="u-1")
    assert (ana.first_name, ana.last_name) == ("Ana", "Silva")
    assert ana.attributes == {"plan": "pro", "vip": True}


def test_invalid_items_are_reported_and_the_others_saved(brand):
    response = batch(brand, [
        {"external_id": "u-1", "time_zone": "Mars/Base"},
        {"external_id": "u-2", "first_name": "Ben"},
        {"external_id": "u-3", "devices": [{"kind": "apns", "token": "nothex"}]},
        "not an object",
        {"first_name": "Nobody", "emial": "x"},
    ])

    results = response.json()["results"]
    assert response.status_code == 200
    assert results[0]["status"] == "invalid" and "time_zone" in results[0]["errors"]
    assert results[1] == {"index": 1, "external_id": "u-2", "status": "created"}
    assert results[2]["errors"] == {
        "devices[0].token": [
            "An APNs token is at least 64 hexadecimal digits (0-9, a-f; at most 200)."]}
    assert results[3]["errors"] == {"non_field_errors": ["Expected an object."]}
    assert set(results[4]["errors"]) == {"external_id", "emial"}
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["u-2"]


def test_a_known_token_moves_to_the_customer_of_the_batch(brand, customer_factory):
    batch(brand, [{"external_id": "old", "devices": [{"kind": "apns", "token": APNS}]}])

    response = batch(brand, [{"external_id": "new", "devices": [{"kind": "apns",
                                                                 "token": APNS}]}])

    assert response.json()["results"][0]["status"] == "created"
    device = Device.objects.get()
    assert device.customer.external_id == "new"


def test_an_import_does_not_revive_a_device_a_provider_reported_dead(brand):
    batch(brand, [{"external_id": "u-1", "devices": [{"kind": "apns", "token": APNS}]}])
    Device.objects.update(is_active=False, deactivated_reason="Unregistered")

    response = batch(brand, [{"external_id": "u-1", "devices": [{"kind": "apns",
                                                                 "token": APNS}]}])

    assert response.json()["results"][0]["status"] == "unchanged"
    assert not Device.objects.get().is_active


def test_consent_is_replaced_as_put_replaces_it(brand, news, customer_factory):
    promos = Topic.objects.create(key="promos", name="Promos")
    customer_factory("u-1", opted_out_topics=["promos"])

    batch(brand, [{"external_id": "u-1", "opted_out_topics": ["news"], "push_opt_out": True}])

    ana = Customer.objects.get(external_id="u-1")
    assert list(ana.topic_opt_outs.values_list("topic__key", flat=True)) == ["news"]
    assert ana.push_opt_out and not TopicOptOut.objects.filter(topic=promos).exists()
    unknown = batch(brand, [{"external_id": "u-1", "opted_out_topics": ["nope"]}])
    assert unknown.json()["results"][0]["errors"] == {
        "opted_out_topics": ["Unknown topics: 'nope'."]}


def test_referral_codes_link_the_referee_and_record_the_sign_up_once(brand):
    response = batch(brand, [
        {"external_id": "friend", "referral_code": "lisbon-42"},
        {"external_id": "newbie", "referred_by_code": "LISBON-42"},
    ])
    assert [r["status"] for r in response.json()["results"]] == ["created", "created"]
    batch(brand, [{"external_id": "newbie", "referred_by_code": "LISBON-42"}])

    friend = Customer.objects.get(external_id="friend")
    assert friend.referral_code == "LISBON-42"
    assert Customer.objects.get(external_id="newbie").referred_by == friend
    signups = Event.objects.filter(customer=friend, name="referral_signup")
    assert [e.properties for e in signups] == [{"referred_customer": "newbie"}]


def test_referral_problems_are_field_errors(brand, customer_factory):
    taken = customer_factory("taken").referral_code
    response = batch(brand, [
        {"external_id": "a", "referral_code": taken},
        {"external_id": "b", "referred_by_code": "NOSUCHCODE"},
        {"external_id": "c", "referral_code": "SELF1", "referred_by_code": "SELF1"},
    ])

    errors = [r.get("errors") for r in response.json()["results"]]
    assert errors == [
        {"referral_code": ["Another customer has this code."]},
        {"referred_by_code": ["No customer has this referral code."]},
        {"referred_by_code": ["A customer cannot refer themselves."]},
    ]
    assert not Customer.objects.filter(external_id__in=["a", "b", "c"]).exists()


def test_one_customer_twice_in_a_batch(brand):
    response = batch(brand, [
        {"external_id": "u-1", "first_name": "Ana"},
        {"external_id": "u-1", "devices": [{"kind": "apns", "token": APNS}]},
        {"external_id": "u-1", "first_name": "Other"},
    ])

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "created", "invalid"]
    assert results[2]["errors"] == {"external_id": [
        "This customer is on item 0 with other values; further items of a customer may only "
        "add devices."]}
    assert Customer.objects.get().first_name == "Ana"
    assert Device.objects.get().customer.external_id == "u-1"


@pytest.mark.parametrize("body", [
    {"customers": []}, {"customers": [{}] * 1001}, {"customers": "u-1"}, [], {"people": []},
])
def test_the_batch_itself_must_hold_1_to_1000_customers(brand, body):
    response = brand.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not Customer.objects.exists()


def test_the_batch_needs_the_customers_write_scope(key_factory):
    _, key = key_factory(scopes=["customers:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    response = batch(client, [{"external_id": "u-1"}])

    assert response.status_code == 403
    assert not Customer.objects.exists()


def test_no_customer_may_be_called_batch_the_name_of_the_endpoint(brand):
    response = batch(brand, [{"external_id": "batch"}])
    by_event = brand.post("/api/v1/events/", {"customer_id": "batch", "name": "x"},
                          format="json")

    assert response.json()["results"][0]["errors"] == {"external_id": [
        "'batch' may not be an external id: /customers/batch/ is an endpoint of its own."]}
    assert by_event.status_code == 400 and "customer_id" in by_event.json()["errors"]
    assert brand.get(URL).status_code == 405
    assert not Customer.objects.exists()
