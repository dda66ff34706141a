import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audiences.models import Customer, Event
from audiences.services import customer_upsert, event_track


def track(client, body, url="/api/v1/events/"):
    return client.post(url, body, format="json")


def test_an_event_is_stored_with_201(brand, ana):
    response = track(brand, {
        "customer_id": "ana-1", "name": "purchase", "properties": {"sku": "A1"},
        "occurred_at": "2026-01-02T03:04:05+01:00", "event_id": "e-1",
    })

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "created"
    event = Event.objects.get(pk=body["id"])
    assert (event.customer, event.name, event.properties, event.client_event_id) == (
        ana, "purchase", {"sku": "A1"}, "e-1")
    assert event.occurred_at == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)


def test_the_same_event_id_again_is_a_200_duplicate(brand, ana):
    body = {"customer_id": "ana-1", "name": "purchase", "event_id": "e-1"}
    first = track(brand, body)

    again = track(brand, body)

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert Event.objects.count() == 1


def test_occurred_at_defaults_to_now(brand, ana):
    before = timezone.now()

    response = track(brand, {"customer_id": "ana-1", "name": "app_open"})

    assert before <= Event.objects.get(pk=response.json()["id"]).occurred_at <= timezone.now()


@pytest.mark.django_db
def test_an_event_for_an_unknown_customer_creates_them(brand):
    response = track(brand, {"customer_id": "new-9", "name": "signup"})

    assert response.status_code == 201
    assert Customer.objects.get(external_id="new-9").events.count() == 1


# Each bad item, and the field its error must name. Sent alone to /events/ and inside a batch to
# /events/batch/, which validate by different code: both must agree.
BAD_ITEMS = [
    ({"name": "x"}, "customer_id"),
    ({"customer_id": "ana-1"}, "name"),
    ({"customer_id": "ana-1", "name": ""}, "name"),
    ({"customer_id": "ana-1", "name": "n" * 101}, "name"),
    ({"customer_id": True, "name": "x"}, "customer_id"),
    ({"customer_id": ["ana-1"], "name": "x"}, "customer_id"),
    ({"customer_id": "c" * 256, "name": "x"}, "customer_id"),
    ({"customer_id": "ana-1", "name": "x", "properties": [1]}, "properties"),
    ({"customer_id": "ana-1", "name": "x", "properties": None}, "properties"),
    ({"customer_id": "ana-1", "name": "x", "occurred_at": "yesterday"}, "occurred_at"),
    ({"customer_id": "ana-1", "name": "x", "occurred_at": 1700000000}, "occurred_at"),
    ({"customer_id": "ana-1", "name": "x", "occurred_at": None}, "occurred_at"),
    ({"customer_id": "ana-1", "name": "x", "occurred_at": "2026-13-01T00:00:00Z"},
     "occurred_at"),
    ({"customer_id": "ana-1", "name": "x", "occurred_at": "0001-01-01T00:00:00+01:00"},
     "occurred_at"),
    ({"customer_id": "ana-1", "name": "x", "event_id": ""}, "event_id"),
    ({"customer_id": "ana-1", "name": "x", "event_id": "e" * 101}, "event_id"),
    ({"customer_id": "ana-1", "name": "x", "event_id": {"a": 1}}, "event_id"),
    ({"customer_id": "ana-1", "name": "x", "colour": "red"}, "colour"),
]


@pytest.mark.parametrize("item, field", BAD_ITEMS)
def test_a_bad_event_is_400_naming_the_field(brand, ana, item, field):
    response = track(brand, item)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not Event.objects.exists()


@pytest.mark.parametrize("item, field", BAD_ITEMS)
def test_a_bad_event_in_a_batch_is_invalid_naming_the_same_field(brand, ana, item, field):
    response = track(brand, {"events": [item]}, url="/api/v1/events/batch/")

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["status"] == "invalid"
    assert list(result["errors"]) == [field]
    assert not Event.objects.exists()


def test_an_event_more_than_a_day_ahead_is_refused_in_both_paths(brand, ana):
    too_late = (timezone.now() + timedelta(days=1, minutes=5)).isoformat()
    fine = (timezone.now() + timedelta(hours=23)).isoformat()
    item = {"customer_id": "ana-1", "name": "x", "occurred_at": too_late}

    assert track(brand, item).status_code == 400
    batch = track(brand, {"events": [item, {**item, "occurred_at": fine}]},
                  url="/api/v1/events/batch/").json()["results"]
    assert [r["status"] for r in batch] == ["invalid", "created"]


def test_numbers_become_strings_in_both_paths(brand):
    single = track(brand, {"customer_id": 42, "name": "x", "event_id": 7})
    batch = track(brand, {"events": [{"customer_id": 43, "name": "x", "event_id": 7}]},
                  url="/api/v1/events/batch/")

    assert single.status_code == 201
    assert batch.json()["results"][0]["status"] == "created"
    assert set(Event.objects.values_list("customer__external_id", "client_event_id")) == {
        ("42", "7"), ("43", "7")}


def test_a_batch_reports_each_item_and_stores_the_valid_ones(brand, ana):
    track(brand, {"customer_id": "ana-1", "name": "purchase", "event_id": "old"})

    response = track(brand, {"events": [
        {"customer_id": "ana-1", "name": "purchase", "event_id": "new"},
        {"customer_id": "ana-1", "name": "purchase", "event_id": "old"},
        {"customer_id": "ana-1"},
        "not an object",
        {"customer_id": "brand-new", "name": "signup"},
        {"customer_id": "ana-1", "name": "purchase", "event_id": "new"},
    ]}, url="/api/v1/events/batch/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == [
        "created", "duplicate", "invalid", "invalid", "created", "duplicate"]
    assert results[2]["errors"] == {"name": ["This field is required."]}
    assert results[5]["id"] == results[0]["id"]
    assert Event.objects.count() == 3
    assert Customer.objects.filter(external_id="brand-new").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"events": []},
    {"events": [{"customer_id": "a", "name": "x"}] * 1001},
    {"events": {"customer_id": "a", "name": "x"}},
    {},
    [],
])
def test_a_batch_outside_1_to_1000_events_is_400_naming_the_limit(brand, body):
    response = track(brand, body, url="/api/v1/events/batch/")

    assert response.status_code == 400
    assert "1 to 1000" in str(response.json()["errors"])
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_batch_with_unknown_top_level_fields_is_400(brand):
    response = track(brand, {"events": [{"customer_id": "a", "name": "x"}], "dry_run": True},
                     url="/api/v1/events/batch/")

    assert response.status_code == 400
    assert response.json()["errors"] == {"dry_run": ["Unknown field."]}


@pytest.mark.django_db
def test_a_full_batch_of_1000_is_accepted(brand):
    events = [{"customer_id": f"c-{i % 50}", "name": "view", "event_id": str(i)}
              for i in range(1000)]

    response = track(brand, {"events": events}, url="/api/v1/events/batch/")

    assert response.status_code == 200
    assert Event.objects.count() == 1000
    assert Customer.objects.count() == 50


def test_the_app_tracks_its_own_events(app_for, ana):
    response = track(app_for(ana), {"name": "app_open", "event_id": "a-1"}, "/api/v1/me/events/")

    assert response.status_code == 201
    assert Event.objects.get(pk=response.json()["id"]).customer == ana


def test_the_app_cannot_name_another_customer(app_for, ana, ben):
    client = app_for(ana)

    single = track(client, {"customer_id": "ben-2", "name": "x"}, "/api/v1/me/events/")
    batch = track(client, {"events": [{"customer_id": "ben-2", "name": "x"}]},
                  "/api/v1/me/events/batch/")

    assert single.status_code == 400
    assert single.json()["errors"] == {"customer_id": ["Unknown field."]}
    assert batch.json()["results"][0]["errors"] == {"customer_id": ["Unknown field."]}
    assert not ben.events.exists()


def test_the_app_batch_stores_events_for_its_customer_only(app_for, ana, ben):
    response = track(app_for(ana), {"events": [{"name": "a"}, {"name": "b"}]},
                     "/api/v1/me/events/batch/")

    assert [r["status"] for r in response.json()["results"]] == ["created", "created"]
    assert ana.events.count() == 2
    assert not ben.events.exists()


def test_event_ids_are_per_customer(app_for, ana, ben):
    """Ben's app sending Ana's event id does not reveal or touch Ana's event."""
    track(app_for(ana), {"name": "a", "event_id": "same"}, "/api/v1/me/events/")

    response = track(app_for(ben), {"name": "b", "event_id": "same"}, "/api/v1/me/events/")

    assert response.status_code == 201
    assert ben.events.get().name == "b"
    assert ana.events.get().name == "a"


# serialized_rollback: keep the topics and stage rules that data migrations create.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_retry_racing_its_original_is_a_duplicate_not_an_error(brand):
    """The original request has stored the event but not committed when the retry arrives: the
    retry cannot see it, its insert waits on the unique index, then fails and is tried again."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises all writers, so there is no race to test")
    customer, _ = customer_upsert(external_id="racer")
    stored, original_commits = threading.Event(), 1.5  # seconds the original stays open

    def original():
        try:
            with transaction.atomic():
                event_track(customer=customer, name="purchase", client_event_id="e-1")
                stored.set()
                time.sleep(original_commits)
        finally:
            connection.close()

    thread = threading.Thread(target=original)
    thread.start()
    stored.wait(timeout=10)
    retry = track(brand, {"events": [{"customer_id": "racer", "name": "purchase",
                                      "event_id": "e-1"}]}, url="/api/v1/events/batch/")
    thread.join()

    assert retry.status_code == 200
    assert retry.json()["results"][0]["status"] == "duplicate"
    assert Event.objects.filter(client_event_id="e-1").count() == 1


def test_last_seen_follows_events_to_the_minute(brand, ana):
    start = timezone.now() - timedelta(hours=1)

    def send(offset: timedelta) -> datetime:
        track(brand, {"customer_id": "ana-1", "name": "x",
                      "occurred_at": (start + offset).isoformat()})
        ana.refresh_from_db()
        return ana.last_seen_at

    assert send(timedelta(0)) == start
    assert send(timedelta(seconds=30)) == start  # within the minute: the row is not rewritten
    assert send(timedelta(minutes=2)) == start + timedelta(minutes=2)
    assert send(timedelta(minutes=1)) == start + timedelta(minutes=2)  # never backwards


def test_an_event_from_the_first_minute_of_year_1_is_stored(brand, ana):
    response = track(brand, {"customer_id": "ana-1", "name": "x",
                             "occurred_at": "0001-01-01T00:00:00Z"})

    assert response.status_code == 201
