"""POST /sends/: a brand's backend sends a message now; progress, deliveries, pause, cancel."""

from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from audiences.models import Segment
from notifications.models import Delivery, Send, Template
from notifications.providers import locmem
from notifications.services import device_register, template_save
from tests.notifications.sending_kit import quiet_hours_off, run
from tests.threads_kit import in_threads

pytestmark = pytest.mark.django_db
FCM_TOKEN = "f" * 40


@pytest.fixture(autouse=True)
def locmem_backend(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    quiet_hours_off()
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def order_update(db):
    return template_save(fields={
        "name": "order-update", "title": "Your order from {{ data.restaurant }}",
        "body": "{{ customer.first_name }}, it arrives at {{ data.eta|default:'soon' }}.",
    })


@pytest.fixture
def ana(customer_factory):
    person = customer_factory("ana-1", first_name="Ana")
    device_register(customer=person, kind="fcm", token=f"{FCM_TOKEN}-ana", platform="android")
    return person


@pytest.fixture
def ben(customer_factory):
    person = customer_factory("ben-2", first_name="Ben")
    device_register(customer=person, kind="fcm", token=f"{FCM_TOKEN}-ben", platform="android")
    return person


def post(client, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post("/api/v1/sends/", body, format="json", **headers)


def test_a_send_to_external_ids_personalises_with_the_posted_data(brand, order_update, ana, ben,
                                                                   locmem_backend):
    answer = post(brand, {"template": "order-update", "external_ids": ["ana-1", "ben-2", "zed"],
                          "data": {"restaurant": "Luigi's", "eta": "19:40"},
                          "transactional": True})

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["template"] == "order-update"
    assert body["audience_size"] == 2
    assert body["unknown_external_ids"] == ["zed"]
    assert body["transactional"] is True and body["respect_quiet_hours"] is False
    send = Send.objects.get(pk=body["id"])
    assert send.cap_exempt and send.source == "api" and send.data["restaurant"] == "Luigi's"

    run(send)
    sent = sorted((m.title, m.body) for m in locmem_backend)
    assert sent == [("Your order from Luigi's", "Ana, it arrives at 19:40."),
                    ("Your order from Luigi's", "Ben, it arrives at 19:40.")]


def test_a_local_time_send_with_its_own_quiet_window(brand, order_update, ana, ben,
                                                     locmem_backend):
    ben.time_zone = "Asia/Tokyo"
    ben.save()
    answer = post(brand, {"template": "order-update", "external_ids": ["ana-1", "ben-2"],
                          "local_time": "09:30", "quiet_hours_start": "23:00",
                          "quiet_hours_end": "06:00"})

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["local_time"], body["local_time_passed"]) == ("09:30:00", "next_day")
    assert (body["quiet_hours_start"], body["quiet_hours_end"]) == ("23:00:00", "06:00:00")
    run(Send.objects.get(pk=body["id"]))
    due = {row.customer.external_id: row.not_before.astimezone(ZoneInfo(row.customer.time_zone))
           for row in Delivery.objects.filter(send_id=body["id"]).select_related("customer")}
    assert {external_id: (at.hour, at.minute) for external_id, at in due.items()} == {
        "ana-1": (9, 30), "ben-2": (9, 30)}  # each in their own zone, not sent yet
    assert locmem_backend == []


def test_progress_and_deliveries_after_sending(brand, order_update, ana, ben, customer_factory):
    customer_factory("cid-3")  # no device: skipped
    created = post(brand, {"template": "order-update", "external_ids": ["ana-1", "ben-2", "cid-3"],
                           "data": {"restaurant": "Luigi's"}}).json()
    run(Send.objects.get(pk=created["id"]))

    progress = brand.get(f"/api/v1/sends/{created['id']}/").json()
    assert progress["status"] == "done"
    assert progress["progress"] == {"total": 3, "queued": 0, "sending": 0, "sent": 2, "failed": 0,
                                    "skipped": 1, "finished": 3, "percent": 100.0}
    assert progress["reasons"] == {"no_active_device": 1}

    first = brand.get(f"/api/v1/sends/{created['id']}/deliveries/?limit=2").json()
    assert len(first["results"]) == 2
    assert first["next"] is not None
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=brand._credentials["HTTP_AUTHORIZATION"])
    second = rest.get(first["next"]).json()
    rows = first["results"] + second["results"]
    assert second["next"] is None
    assert sorted(row["external_id"] for row in rows) == ["ana-1", "ben-2", "cid-3"]
    assert {row["external_id"]: row["reason"] for row in rows}["cid-3"] == "no_active_device"
    sent_only = brand.get(f"/api/v1/sends/{created['id']}/deliveries/?status=sent").json()
    assert sorted(row["external_id"] for row in sent_only["results"]) == ["ana-1", "ben-2"]


def test_an_inline_message_to_a_segment(brand, ana, ben, locmem_backend):
    Segment.objects.create(name="Everyone", key="everyone", rules={"stage": {"in": ["awareness"]}})
    answer = post(brand, {"message": {"title": "Hi {{ customer.first_name }}",
                                      "body": "{{ data.news }}"},
                          "segment": "everyone", "data": {"news": "We moved"}})

    assert answer.status_code == 201, answer.json()
    assert answer.json()["template"] is None and answer.json()["segment"] == "everyone"
    run(Send.objects.get(pk=answer.json()["id"]))
    assert sorted(m.title for m in locmem_backend) == ["Hi Ana", "Hi Ben"]
    assert not brand.get("/api/v1/templates/").json()["results"]  # inline ones are not listed


def test_a_retry_under_the_same_key_creates_nothing(brand, order_update, ana):
    body = {"template": "order-update", "external_ids": ["ana-1"], "data": {"restaurant": "L"}}
    first = post(brand, body, key="order-981-shipped")
    again = post(brand, {"data": {"restaurant": "L"}, "external_ids": ["ana-1"],
                         "template": "order-update"}, key="order-981-shipped")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Send.objects.count() == 1


def test_the_same_key_with_another_body_is_a_conflict(brand, order_update, ana):
    post(brand, {"template": "order-update", "external_ids": ["ana-1"]}, key="k-1")
    answer = post(brand, {"template": "order-update", "external_ids": ["ana-1", "ben-2"]},
                  key="k-1")

    assert answer.status_code == 409
    assert answer.json()["code"] == "idempotency_key_reused"
    assert Send.objects.count() == 1


def test_keys_are_per_api_key(brand, key_factory, order_update, ana):
    _, other_key = key_factory(scopes=["sends"], name="Other backend")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_key}")
    body = {"template": "order-update", "external_ids": ["ana-1"]}
    assert post(brand, body, key="same").status_code == 201
    assert post(other, body, key="same").status_code == 201


@pytest.mark.postgres(reason="SQLite serialises writers, so two requests never race there")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_retries_racing_from_two_threads_make_one_send(key_factory, order_update, ana):
    _, key = key_factory(scopes=["sends"])
    body = {"template": "order-update", "external_ids": ["ana-1"], "data": {"restaurant": "L"}}

    def retry():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        answer = post(client, body, key="race-1")
        return answer.status_code, answer.json()["id"]

    answers = in_threads(retry, count=2)

    assert sorted(status for status, _ in answers) == [200, 201]
    assert len({send_id for _, send_id in answers}) == 1
    assert Send.objects.count() == 1


@pytest.mark.parametrize("body, field", [
    ({"template": "nope", "external_ids": ["ana-1"]}, "template"),
    ({"template": "order-update", "segment": "nope"}, "segment"),
    ({"template": "order-update", "external_ids": [f"c{i}" for i in range(10_001)]},
     "external_ids"),
    ({"template": "order-update", "external_ids": ["ana-1"], "data": {"restaurant": "x" * 5000}},
     "data"),
    ({"template": "order-update"}, "segment"),
    ({"template": "order-update", "message": {"title": "a"}, "segment": "s"}, "template"),
    ({"message": {"title": "", "body": ""}, "external_ids": ["ana-1"]}, "message.body"),
    ({"template": "order-update", "external_ids": ["ana-1"], "ttl_seconds": -1}, "ttl_seconds"),
    ({"template": "order-update", "external_ids": ["ana-1"], "quiet_hours_start": "22:00"},
     "quiet_hours_end"),
    ({"template": "order-update", "external_ids": ["ana-1"], "local_time": "09:00",
      "local_time_passed": "later"}, "local_time_passed"),
])
def test_bad_input_is_a_400_naming_the_field_and_creates_nothing(brand, order_update, ana, body,
                                                                  field):
    answer = post(brand, body, key="bad-1")

    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["errors"], answer.json()
    assert Send.objects.count() == 0
    assert Template.objects.count() == 1


def test_pause_resume_and_cancel(brand, order_update, ana):
    send_id = post(brand, {"template": "order-update", "external_ids": ["ana-1"]}).json()["id"]

    assert brand.post(f"/api/v1/sends/{send_id}/pause/").json()["status"] == "paused"
    assert brand.post(f"/api/v1/sends/{send_id}/resume/").json()["status"] == "queued"
    cancelled = brand.post(f"/api/v1/sends/{send_id}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    again = brand.post(f"/api/v1/sends/{send_id}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"


def test_the_sends_scope_is_needed(key_factory, order_update, ana):
    _, key = key_factory(scopes=["campaigns"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    answer = post(client, {"template": "order-update", "external_ids": ["ana-1"]})
    assert answer.status_code == 403 and "sends" in answer.json()["detail"]
    assert client.get("/api/v1/sends/1/").status_code == 403


def test_unknown_sends_are_404(brand):
    assert brand.get("/api/v1/sends/999/").status_code == 404
    assert brand.get("/api/v1/sends/abc/deliveries/").status_code == 404


def test_deliveries_of_an_erased_customer_keep_their_row(brand, order_update, ana):
    send_id = post(brand, {"template": "order-update", "external_ids": ["ana-1"]}).json()["id"]
    run(Send.objects.get(pk=send_id))
    Delivery.objects.filter(send_id=send_id).update(customer=None)
    rows = brand.get(f"/api/v1/sends/{send_id}/deliveries/").json()["results"]
    assert rows[0]["external_id"] is None and rows[0]["status"] == "sent"


def test_an_inline_message_with_buttons_and_the_open_of_one(brand, app_for, ana, locmem_backend):
    actions = [{"id": "track", "title": "Track order", "url": "app://orders/1"}]
    answer = post(brand, {"message": {"title": "On its way", "body": "19:40", "actions": actions,
                                      "sound": "default", "badge_mode": "set", "badge": 1},
                          "external_ids": ["ana-1"]})
    assert answer.status_code == 201, answer.json()
    run(Send.objects.get(pk=answer.json()["id"]))
    [message] = locmem_backend
    assert [a.id for a in message.presentation.actions] == ["track"]
    assert (message.presentation.sound, message.presentation.badge) == ("default", 1)

    app = app_for(ana)
    token = message.data["jh_token"]
    unknown = app.post("/api/v1/me/deliveries/opened/", {"token": token, "action_id": "dance"},
                       format="json")
    opened = app.post("/api/v1/me/deliveries/opened/", {"token": token, "action_id": "track"},
                      format="json")

    assert unknown.status_code == 400 and "action_id" in unknown.json()["errors"]
    assert opened.status_code == 200
    assert Delivery.objects.get(pk=message.delivery_id).opened_action == "track"


def test_an_inline_silent_message_needs_data(brand, ana):
    answer = post(brand, {"message": {"kind": "silent", "title": "x"},
                          "external_ids": ["ana-1"]})
    assert answer.status_code == 400
    assert {"message.title", "message.data"} <= set(answer.json()["errors"])
    assert Send.objects.count() == 0
