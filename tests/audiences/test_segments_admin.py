"""The segment admin: rules editor, saved count and sample, live preview, static upload."""

import json
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences.models import Customer, Segment, SegmentMember
from audiences.services import customer_upsert, segment_create, segment_members_replace

pytestmark = pytest.mark.django_db

ADD_URL = "admin:audiences_segment_add"
PREVIEW_URL = "admin:audiences_segment_preview"


def change_url(segment) -> str:
    return reverse("admin:audiences_segment_change", args=[segment.pk])


def form_data(**fields) -> dict:
    data = {"name": "Buyers", "description": "", "kind": "dynamic", "rules": '{"all": []}'}
    return {**data, **fields}


def preview(client, rules, **params):
    body = rules if isinstance(rules, str) else json.dumps(rules)
    url = reverse(PREVIEW_URL) + (f"?{urlencode(params)}" if params else "")
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def lisbon():
    customer_upsert(external_id="ana", first_name="Ana", attributes={"city": "Lisbon"})
    customer_upsert(external_id="ben", attributes={"city": "Porto"})
    return {"attribute": {"key": "city", "op": "eq", "value": "Lisbon"}}


# --- list -------------------------------------------------------------------------------------

def test_list_shows_name_and_kind_and_searches_by_name(admin_client):
    segment_create(name="Lisbon buyers", rules={"all": []})
    segment_create(name="Uploaded VIPs", kind=Segment.Kind.STATIC)

    response = admin_client.get(reverse("admin:audiences_segment_changelist"), {"q": "lisbon"})

    body = response.content.decode()
    assert response.status_code == 200
    assert "Lisbon buyers" in body and "Dynamic (rules)" in body
    assert "Uploaded VIPs" not in body


# --- rules editor -----------------------------------------------------------------------------

def test_saving_invalid_rules_shows_the_rule_path_and_saves_nothing(admin_client):
    rules = json.dumps({"all": [{"stage": {"in": ["engagement"]}}, {"stgae": {}}]})

    response = admin_client.post(reverse(ADD_URL), form_data(rules=rules))

    assert response.status_code == 200
    assert "all[1]: unknown rule type &#x27;stgae&#x27;" in response.content.decode()
    assert not Segment.objects.exists()


def test_saving_malformed_json_says_where(admin_client):
    response = admin_client.post(reverse(ADD_URL), form_data(rules='{"all": [}'))

    assert response.status_code == 200
    assert "Invalid JSON at line 1, column 10" in response.content.decode()
    assert not Segment.objects.exists()


def test_saving_a_cycle_through_another_segment_is_a_form_error(admin_client):
    first = segment_create(name="First", rules={"all": []})
    second = segment_create(name="Second", rules={"segment": first.pk})

    response = admin_client.post(change_url(first), form_data(
        name="First", rules=json.dumps({"segment": second.pk})))

    assert response.status_code == 200
    assert "refers back to itself" in response.content.decode()
    first.refresh_from_db()
    assert first.rules == {"all": []}


def test_valid_save_then_the_page_shows_count_and_linked_sample(admin_client, lisbon):
    response = admin_client.post(reverse(ADD_URL), form_data(rules=json.dumps(lisbon)))
    assert response.status_code == 302
    segment = Segment.objects.get(name="Buyers")
    assert segment.rules == lisbon

    body = admin_client.get(change_url(segment)).content.decode()

    ana = Customer.objects.get(external_id="ana")
    assert '<strong>1</strong> customer</p>' in body
    assert f'href="{reverse("admin:audiences_customer_change", args=[ana.pk])}"' in body
    assert ">ana</a>" in body and ">ben</a>" not in body
    assert '&quot;key&quot;: &quot;city&quot;' in body  # the rules, indented JSON
    assert '\n  &quot;attribute&quot;: {' in body
    assert "audiences/segment_preview.js" in body


# --- live preview -----------------------------------------------------------------------------

def test_preview_returns_count_and_sample(admin_client, lisbon):
    response = preview(admin_client, lisbon)

    assert response.status_code == 200
    ana = Customer.objects.get(external_id="ana")
    assert response.json() == {"count": 1, "sample": [{
        "id": ana.pk, "external_id": "ana", "name": "Ana", "stage": "awareness",
        "url": reverse("admin:audiences_customer_change", args=[ana.pk]),
    }]}


def test_preview_of_malformed_json_is_a_400_with_the_error(admin_client):
    response = preview(admin_client, '{"all": ')

    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid JSON at line 1")


@pytest.mark.parametrize("body", ["[" * 100_000, '{"bucket": {"min": NaN}}'])
def test_preview_of_hostile_json_is_a_400(admin_client, body):
    response = preview(admin_client, body)

    assert response.status_code == 400
    assert response.json()["error"]


UNSTORABLE_RULES = [
    ({"event": {"name": "purchase\x00"}}, "event.name"),
    ({"all": [{"profile": {"field": "first_name", "op": "contains", "value": "\x00"}}]},
     "all[0].profile.value"),
    ({"attribute": {"key": "city", "op": "eq", "value": "Lisb\ud800on"}}, "attribute.value"),
    ({"event": {"name": "purchase", "where": {"\udfff": 1}}}, "event.where"),
    ({"segment": "vip\x00"}, "segment"),
]


@pytest.mark.parametrize(("rules", "path"), UNSTORABLE_RULES)
def test_preview_of_text_the_database_cannot_hold_is_a_400_naming_the_path(admin_client, rules,
                                                                           path):
    response = preview(admin_client, json.dumps(rules))

    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"{path}: " + ("A key holds a NUL character or a lone surrogate." if "where" in path
                       else "Must not contain NUL characters or lone surrogates.")]


@pytest.mark.parametrize(("rules", "path"), UNSTORABLE_RULES)
def test_saving_text_the_database_cannot_hold_is_a_form_error(admin_client, rules, path):
    response = admin_client.post(reverse(ADD_URL), form_data(rules=json.dumps(rules)))

    assert response.status_code == 200
    assert f"{path}: " in response.content.decode()
    assert not Segment.objects.exists()


def test_preview_of_invalid_rules_is_a_400_naming_the_path(admin_client):
    response = preview(admin_client, {"any": [{"event": {"name": "purchase", "min_count": 0}}]})

    assert response.status_code == 400
    assert response.json()["error"] == "any[0].event.min_count: must be a positive integer"


def test_preview_knows_the_segment_being_edited_and_refuses_a_cycle(admin_client):
    own = segment_create(name="Own", rules={"all": []})

    response = preview(admin_client, {"segment": own.pk}, segment=own.pk)

    assert response.status_code == 400
    assert "refers back to itself" in response.json()["error"]


def test_preview_refuses_get(admin_client):
    assert admin_client.get(reverse(PREVIEW_URL)).status_code == 405


def test_preview_refuses_non_staff(client, django_user_model, lisbon):
    client.force_login(django_user_model.objects.create_user("shopper", password="x" * 12))

    response = preview(client, lisbon)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_preview_refuses_staff_without_view_permission(client, django_user_model, lisbon):
    client.force_login(django_user_model.objects.create_user(
        "intern", password="x" * 12, is_staff=True))

    response = preview(client, lisbon)

    assert response.status_code == 403
    assert "error" in response.json()


# --- static upload ----------------------------------------------------------------------------

def upload(name: str, content: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


@pytest.fixture
def three():
    for external_id in ("ana", "ben", "cat"):
        customer_upsert(external_id=external_id)


def test_static_upload_of_a_csv_with_header_sets_the_members(admin_client, three):
    csv_file = upload("vips.csv", "email,external_id\na@x.com,ana\n\nc@x.com,cat\n")

    response = admin_client.post(reverse(ADD_URL), form_data(
        name="VIPs", kind="static", member_file=csv_file), follow=True)

    segment = Segment.objects.get(name="VIPs")
    members = SegmentMember.objects.filter(segment=segment)
    assert set(members.values_list("customer__external_id", flat=True)) == {"ana", "cat"}
    assert "VIPs now has 2 members from vips.csv" in response.content.decode()


def test_static_upload_of_a_txt_replaces_members_and_the_page_shows_the_count(admin_client, three):
    segment = segment_create(name="VIPs", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["ana"])

    admin_client.post(change_url(segment), form_data(
        name="VIPs", kind="static", member_file=upload("ids.txt", "ben\r\ncat\r\n")))

    body = admin_client.get(change_url(segment)).content.decode()
    assert "Members" in body and "<strong>2</strong> customers</p>" in body
    assert ">ben</a>" in body and ">cat</a>" in body and ">ana</a>" not in body


def test_static_upload_with_unknown_ids_shows_their_lines_and_saves_nothing(admin_client, three):
    segment = segment_create(name="VIPs", kind=Segment.Kind.STATIC, description="before")
    segment_members_replace(segment=segment, external_ids=["ana"])

    response = admin_client.post(change_url(segment), form_data(
        name="VIPs", kind="static", description="after",
        member_file=upload("ids.csv", "external_id\nben\nghost\n\nnobody\n")))

    body = response.content.decode()
    assert response.status_code == 200
    assert "2 external id(s) match no customer, so nothing was changed." in body
    assert "line 3: &#x27;ghost&#x27;; line 5: &#x27;nobody&#x27;" in body
    segment.refresh_from_db()
    assert segment.description == "before"
    assert list(SegmentMember.objects.filter(segment=segment)
                .values_list("customer__external_id", flat=True)) == ["ana"]


def test_a_csv_with_several_columns_needs_the_external_id_header(admin_client, three):
    response = admin_client.post(reverse(ADD_URL), form_data(
        name="VIPs", kind="static", member_file=upload("ids.csv", "ana,a@x.com\n")))

    assert "needs a header with an external_id column" in response.content.decode()
    assert not Segment.objects.exists()


def test_a_member_file_on_a_dynamic_segment_is_refused(admin_client, three):
    response = admin_client.post(reverse(ADD_URL), form_data(
        member_file=upload("ids.txt", "ana\n")))

    assert "Only a static segment takes a member list." in response.content.decode()
    assert not Segment.objects.exists()
