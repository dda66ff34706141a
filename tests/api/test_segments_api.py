"""The segments API: audiences as code, with the admin's rule checks and messages."""

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from audiences.models import Customer, Segment, SegmentMember
from audiences.segments import RULES_REQUIRED, validate_rules
from audiences.services import customer_upsert, segment_create, segment_members_replace
from journeyhub.models import ApiKey
from notifications.models import Template
from notifications.services import send_create

ENGAGED = {"stage": {"in": ["engagement"]}}


def client_with(key_factory, *scopes) -> APIClient:
    _, key = key_factory(scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def customers(db):
    """Ten customers, the even ones engaged."""
    made = []
    for number in range(10):
        customer, _ = customer_upsert(external_id=f"c-{number}")
        if number % 2 == 0:
            Customer.objects.filter(pk=customer.pk).update(stage="engagement")
        made.append(customer)
    return made


def test_a_dynamic_segment_is_created_read_listed_and_counted(brand, customers):
    created = brand.post("/api/v1/segments/", {
        "key": "engaged", "name": "Engaged", "kind": "dynamic", "rules": ENGAGED,
        "description": "Opened the app",
    }, format="json")

    assert created.status_code == 201, created.json()
    assert created.json() == {**created.json(), "key": "engaged", "name": "Engaged",
                              "kind": "dynamic", "rules": ENGAGED}
    assert brand.get("/api/v1/segments/engaged/").json()["name"] == "Engaged"
    listed = brand.get("/api/v1/segments/").json()
    assert [row["key"] for row in listed["results"]] == ["engaged"]
    assert brand.get("/api/v1/segments/engaged/count/").json() == {"count": 5}


def test_invalid_rules_are_refused_with_the_admins_messages(brand, db):
    rules = {"all": [ENGAGED, {"event": {"name": "purchase", "min_count": 0}}]}
    expected = []
    try:
        validate_rules(rules)
    except Exception as error:  # the messages the admin shows for the same rules
        expected = error.messages

    response = brand.post("/api/v1/segments/", {"key": "bad", "name": "Bad", "rules": rules},
                          format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"rules": expected}
    assert expected == ["all[1].event.min_count: must be a positive integer"]
    assert not Segment.objects.exists()


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"key": "x", "name": "X"}, "rules", RULES_REQUIRED),
    ({"key": "x", "name": "X", "rules": {}}, "rules", RULES_REQUIRED),
    ({"key": "x", "name": "X", "kind": "static", "rules": ENGAGED}, "rules",
     "A static segment has no rules: set its members with PUT /segments/{key}/members/."),
    ({"key": "not a slug", "name": "X", "rules": ENGAGED}, "key", None),
    ({"name": "X", "rules": ENGAGED}, "key", "This field is required."),
    ({"key": "x", "name": "X", "rules": ENGAGED, "size": 3}, "size", "Unknown field."),
    ({"key": "x", "name": "X", "rules": ENGAGED, "id": 3}, "id", "This field is read-only."),
])
def test_bad_segment_bodies_are_400s_naming_the_field(brand, db, body, field, message):
    response = brand.post("/api/v1/segments/", body, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors
    if message:
        assert errors[field] == [message]


def test_a_taken_key_or_name_is_a_400(brand, db):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)

    response = brand.post("/api/v1/segments/", {"key": "engaged", "name": "Other",
                                                 "rules": ENGAGED}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["key"]


def test_put_and_patch_change_a_segment_and_a_key_in_the_body_renames_it(brand, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)

    patched = brand.patch("/api/v1/segments/engaged/", {"description": "New"}, format="json")
    renamed = brand.put("/api/v1/segments/engaged/", {
        "key": "awake", "name": "Awake", "rules": {"stage": {"in": ["awareness"]}},
    }, format="json")

    assert patched.status_code == 200 and patched.json()["description"] == "New"
    assert renamed.status_code == 200, renamed.json()
    assert brand.get("/api/v1/segments/engaged/").status_code == 404
    assert brand.get("/api/v1/segments/awake/count/").json() == {"count": 5}


def test_a_key_other_segments_rules_name_cannot_change(brand, db):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    segment_create(name="Engaged buyers", key="buyers", rules={"segment": "engaged"})

    response = brand.patch("/api/v1/segments/engaged/", {"key": "awake"}, format="json")

    assert response.status_code == 400
    assert "'Engaged buyers'" in response.json()["errors"]["key"][0]
    assert Segment.objects.filter(key="engaged").exists()


def test_rules_may_name_another_segment_by_key(brand, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    brand.post("/api/v1/segments/", {"key": "engaged-early", "name": "Engaged early",
                                     "rules": {"all": [{"segment": "engaged"},
                                                       {"bucket": {"max": 9999}}]}},
               format="json")

    assert brand.get("/api/v1/segments/engaged-early/count/").json() == {"count": 5}


def test_an_unused_segment_is_deleted_with_its_members(brand, customers):
    segment = segment_create(name="List", key="list", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["c-1", "c-2"])

    response = brand.delete("/api/v1/segments/list/")

    assert response.status_code == 204
    assert not Segment.objects.exists() and not SegmentMember.objects.exists()


def test_a_segment_in_use_is_not_deleted_and_the_409_names_the_user(brand, db):
    engaged = segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    segment_create(name="Engaged buyers", key="buyers", rules={"segment": engaged.pk})
    template = Template.objects.create(name="Hello", title="Hi", body="There")
    send_create(template=template, segment=segment_create(name="Sent", key="sent",
                                                          rules=ENGAGED))

    by_rules = brand.delete("/api/v1/segments/engaged/")
    by_send = brand.delete("/api/v1/segments/sent/")

    assert by_rules.status_code == 409 and by_rules.json()["code"] == "in_use"
    assert "'Engaged buyers'" in by_rules.json()["detail"]
    assert by_send.status_code == 409 and "send" in by_send.json()["detail"]
    assert Segment.objects.count() == 3


def test_members_come_in_keyset_pages_each_once_in_customer_order(brand, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    seen, url = [], "/api/v1/segments/engaged/members/?limit=2"

    while url:
        page = brand.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["external_id"] for row in page["results"]]
        url = page["next"]

    assert seen == [f"c-{n}" for n in range(0, 10, 2)]
    assert set(page["results"][0]) == {"external_id", "first_name", "last_name", "email",
                                       "locale", "time_zone", "stage", "last_seen_at",
                                       "created_at"}


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "after=x", "after=-1", "page=2",
                                   "after=99999999999999999999"])
def test_bad_member_page_parameters_are_400s(brand, db, query):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)

    response = brand.get(f"/api/v1/segments/engaged/members/?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_static_segments_members_are_replaced_added_and_removed(brand, customers):
    segment_create(name="List", key="list", kind=Segment.Kind.STATIC)

    replaced = brand.put("/api/v1/segments/list/members/",
                         {"external_ids": ["c-1", "c-2", "c-3", "c-1"]}, format="json")
    changed = brand.patch("/api/v1/segments/list/members/",
                          {"add": ["c-4", "c-1"], "remove": ["c-2", "c-9", "nobody"]},
                          format="json")

    assert replaced.json() == {"count": 3}
    assert changed.json() == {"added": 1, "removed": 1, "count": 3}
    members = brand.get("/api/v1/segments/list/members/").json()["results"]
    assert [row["external_id"] for row in members] == ["c-1", "c-3", "c-4"]


def test_an_unknown_id_to_add_changes_nothing_and_is_named(brand, customers):
    segment = segment_create(name="List", key="list", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["c-1"])

    response = brand.patch("/api/v1/segments/list/members/",
                           {"add": ["c-2", "ghost"], "remove": ["c-1"]}, format="json")

    assert response.status_code == 400
    assert "'ghost'" in response.json()["errors"]["add"][0]
    assert list(SegmentMember.objects.values_list("customer__external_id", flat=True)) == ["c-1"]


@pytest.mark.parametrize(("body", "field"), [
    ({"external_ids": ["ok", ""]}, "external_ids"),
    ({"external_ids": ["x" * 256]}, "external_ids"),
    ({"external_ids": "c-1"}, "external_ids"),
    ({"external_ids": [f"c-{n}" for n in range(10_001)]}, "external_ids"),
    ({}, "external_ids"),
])
def test_bad_member_lists_are_400s(brand, db, body, field):
    segment_create(name="List", key="list", kind=Segment.Kind.STATIC)

    response = brand.put("/api/v1/segments/list/members/", body, format="json")

    assert response.status_code == 400
    messages = response.json()["errors"][field]
    assert all(isinstance(message, str) for message in messages)


def test_an_empty_change_or_one_too_big_is_refused(brand, db):
    segment_create(name="List", key="list", kind=Segment.Kind.STATIC)
    half = [f"c-{n}" for n in range(5001)]

    empty = brand.patch("/api/v1/segments/list/members/", {}, format="json")
    too_big = brand.patch("/api/v1/segments/list/members/", {"add": half, "remove": half},
                          format="json")

    assert empty.status_code == too_big.status_code == 400
    assert "non_field_errors" in too_big.json()["errors"]


def test_a_dynamic_segment_takes_no_member_list(brand, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)

    response = brand.put("/api/v1/segments/engaged/members/", {"external_ids": ["c-1"]},
                         format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "non_field_errors": ["Only a static segment takes an uploaded member list."]}


def test_a_segment_whose_rules_broke_answers_409_on_reads(brand, db):
    inner = segment_create(name="Inner", key="inner", rules=ENGAGED)
    outer = segment_create(name="Outer", key="outer", rules={"segment": "inner"})
    Segment.objects.filter(pk=outer.pk).update(rules={"segment": "gone"})
    inner.delete()

    response = brand.get("/api/v1/segments/outer/count/")

    assert response.status_code == 409
    assert response.json()["code"] == "rules_invalid"
    assert "no segment with key 'gone'" in response.json()["detail"]


@pytest.mark.parametrize("key", ["nope", "a%00b", "x" * 51, "caf%C3%A9"])
def test_unknown_or_impossible_keys_are_the_apis_404(brand, db, key):
    response = brand.get(f"/api/v1/segments/{key}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_campaigns_key_reads_segments_but_not_members_nor_writes(key_factory, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    campaigns = client_with(key_factory, ApiKey.Scope.CAMPAIGNS)

    assert campaigns.get("/api/v1/segments/engaged/").status_code == 200
    assert campaigns.get("/api/v1/segments/engaged/count/").status_code == 200
    members = campaigns.get("/api/v1/segments/engaged/members/")
    assert members.status_code == 403
    assert members.json()["detail"] == "This API key lacks the scope 'segments:read'."
    created = campaigns.post("/api/v1/segments/", {"key": "x", "name": "X", "rules": ENGAGED},
                             format="json")
    assert created.status_code == 403
    assert "segments:write" in created.json()["detail"]


def test_segments_read_reads_and_the_message_names_both_scopes(key_factory, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    reader = client_with(key_factory, ApiKey.Scope.SEGMENTS_READ)
    other = client_with(key_factory, ApiKey.Scope.CUSTOMERS_READ)

    assert reader.get("/api/v1/segments/engaged/members/").status_code == 200
    assert reader.delete("/api/v1/segments/engaged/").status_code == 403
    refused = other.get("/api/v1/segments/")
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "This API key lacks the scope 'segments:read' (or 'campaigns').")


def test_a_staff_session_uses_the_segment_permissions(db, customers):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    user = User.objects.create_user("marketer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_segment"))
    client = APIClient()
    client.force_login(user)

    assert client.get("/api/v1/segments/engaged/count/").json() == {"count": 5}
    assert client.delete("/api/v1/segments/engaged/").status_code == 403


def test_a_campaign_names_its_segment_by_key(brand, db):
    segment_create(name="Engaged", key="engaged", rules=ENGAGED)
    body = {"name": "Weekly", "kind": "broadcast", "segment": "engaged"}

    created = brand.post("/api/v1/campaigns/", body, format="json")
    unknown = brand.post("/api/v1/campaigns/", {**body, "name": "B", "segment": "ghost"},
                         format="json")
    by_id = brand.post("/api/v1/campaigns/", {**body, "name": "C", "segment": 1}, format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["segment"] == "engaged"
    assert brand.get("/api/v1/campaigns/").json()["results"][0]["segment"] == "engaged"
    assert unknown.json()["errors"] == {"segment": ["No segment with key 'ghost'."]}
    assert by_id.json()["errors"] == {"segment": ["Not a valid string."]}  # a key, not an id
