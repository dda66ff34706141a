"""Merge, erasure and data export over the API, and customer paths for any external id."""

import json
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from audiences.models import Customer, CustomerErasure, Event
from audiences.services import customer_token_mint
from journeyhub.models import ApiKey
from tests.audiences.identity_kit import person, phone, track


def key_client(key_factory, *scopes) -> APIClient:
    _, key = key_factory(scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def path(external_id: str, suffix: str = "") -> str:
    return f"/api/v1/customers/{quote(external_id, safe='')}/{suffix}"


def exported(response) -> dict:
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(b"".join(response.streaming_content))


# --- Merge ------------------------------------------------------------------------------------


def test_the_backend_merges_the_anonymous_customer_at_login(brand, db):
    anonymous = person("anon-1")
    track(anonymous, "screen_view")
    phone(anonymous, "anon-phone")

    response = brand.post(path("user-1", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["status"], body["anonymous_id"]) == ("merged", "anon-1")
    assert body["customer"]["external_id"] == "user-1"
    assert body["moved"]["events"] == 1 and body["moved"]["devices"] == 1
    assert "token" not in body
    assert not Customer.objects.filter(external_id="anon-1").exists()


def test_the_same_merge_again_answers_already_merged_with_the_first_result(brand, db):
    person("anon-1")
    first = brand.post(path("user-1", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    again = brand.post(path("user-1", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "already_merged",
                            "customer": again.json()["customer"]}


def test_the_apps_token_is_exchanged_for_the_known_customers(brand, db):
    anonymous = person("anon-1")
    old_token = customer_token_mint(customer=anonymous)

    response = brand.post(path("user-1", "merge/"),
                          {"anonymous_token": old_token, "issue_token": True}, format="json")

    assert response.status_code == 200, response.json()
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert app.get("/api/v1/me/").json()["external_id"] == "user-1"
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {old_token}")
    refused = app.get("/api/v1/me/")
    assert refused.status_code == 401
    assert refused.json()["code"] == "customer_merged"


def test_a_new_token_needs_the_tokens_scope(key_factory, db):
    person("anon-1")
    writer = key_client(key_factory, ApiKey.Scope.CUSTOMERS_WRITE)

    response = writer.post(path("user-1", "merge/"),
                           {"anonymous_id": "anon-1", "issue_token": True}, format="json")

    assert response.status_code == 403
    assert "tokens:write" in response.json()["detail"]
    assert Customer.objects.filter(external_id="anon-1").exists()


def test_merging_needs_customers_write(key_factory, db):
    person("anon-1")
    reader = key_client(key_factory, ApiKey.Scope.CUSTOMERS_READ, ApiKey.Scope.TOKENS_WRITE)

    response = reader.post(path("user-1", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "This API key lacks the scope 'customers:write'."


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, "non_field_errors", "Give anonymous_id or anonymous_token (one)."),
    ({"anonymous_id": "anon-1", "anonymous_token": "x"}, "non_field_errors",
     "Give anonymous_id or anonymous_token (one)."),
    ({"anonymous_id": "nobody"}, "anonymous_id",
     "No customer has this id, and none was merged under it."),
    ({"anonymous_id": "user-1"}, "anonymous_id", "A customer cannot be merged into itself."),
    ({"anonymous_token": "forged"}, "anonymous_token", "This customer token is invalid."),
    ({"anonymous_id": "anon-1", "extra": 1}, "extra", "Unknown field."),
])
def test_bad_merges_are_400s_naming_the_field(brand, db, body, field, message):
    person("anon-1"), person("user-1")

    response = brand.post(path("user-1", "merge/"), body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][field] == [message]


def test_the_known_customers_own_token_is_not_an_anonymous_one(brand, db):
    known = person("user-1")

    response = brand.post(path("user-1", "merge/"),
                          {"anonymous_token": customer_token_mint(customer=known)}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "anonymous_token": ["A customer cannot be merged into itself."]}


def test_an_anonymous_customer_merged_into_another_is_a_409(brand, db):
    person("anon-1")
    brand.post(path("user-1", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    response = brand.post(path("user-2", "merge/"), {"anonymous_id": "anon-1"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "merged_elsewhere"
    assert not Customer.objects.filter(external_id="user-2").exists()


def test_the_apps_own_token_cannot_merge_anyone(app_for, db):
    anonymous = person("anon-1")
    person("victim")

    response = app_for(anonymous).post(path("victim", "merge/"), {"anonymous_id": "anon-1"},
                                       format="json")

    assert response.status_code in (401, 403)
    assert Customer.objects.filter(external_id="anon-1").exists()


# --- Erasure ----------------------------------------------------------------------------------


def test_delete_erases_the_customer_and_records_it(brand, key_factory, db):
    ana = person("ana-1")
    track(ana, "app_open", "purchase")
    token = customer_token_mint(customer=ana)

    response = brand.delete(path("ana-1"))

    assert response.status_code == 200
    assert response.json()["status"] == "erased"
    assert response.json()["removed"]["events"] == 2
    assert not Event.objects.exists()
    erasure = CustomerErasure.objects.get()
    assert erasure.erased_by.startswith("API key Brand backend (")
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert app.get("/api/v1/me/").json()["code"] == "customer_deleted"


def test_delete_again_answers_the_first_erasure_and_an_unknown_id_is_404(brand, db):
    person("ana-1")
    first = brand.delete(path("ana-1"))

    again = brand.delete(path("ana-1"))
    unknown = brand.delete(path("nobody"))

    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "already_erased"}
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_erasing_needs_customers_write(key_factory, db):
    person("ana-1")
    reader = key_client(key_factory, ApiKey.Scope.CUSTOMERS_READ)

    assert reader.delete(path("ana-1")).status_code == 403
    assert Customer.objects.filter(external_id="ana-1").exists()


# --- Data export ------------------------------------------------------------------------------


def test_the_export_holds_every_section_with_tokens_masked(brand, db):
    ana = person("ana-1", first_name="Ana")
    phone(ana, "ana-phone-token")
    track(ana, "app_open")

    data = exported(brand.get(path("ana-1", "export/")))

    assert data["customer"]["first_name"] == "Ana"
    assert [event["name"] for event in data["events"]] == ["app_open"]
    assert data["devices"][0]["token"] == "…xxxxxxxx"
    assert "ana-phone-token" not in json.dumps(data)
    assert {"consent", "segments", "stage_transitions", "merged_customers", "deliveries",
            "enrollments", "conversions"} <= set(data)


def test_exporting_needs_customers_read_and_a_known_customer(key_factory, db):
    person("ana-1")
    writer = key_client(key_factory, ApiKey.Scope.CUSTOMERS_WRITE)
    reader = key_client(key_factory, ApiKey.Scope.CUSTOMERS_READ)

    assert writer.get(path("ana-1", "export/")).status_code == 403
    assert reader.get(path("nobody", "export/")).status_code == 404


# --- External ids in paths --------------------------------------------------------------------

ODD_IDS = ["a/b", "shop/users/42", "/leading", "trailing/", "100%", "a%2Fb", "with space",
           "Ana Lopes+1", "josé", "日本/東京", "q?x=1#frag", "token", "a//b", "x/token/y"]


@pytest.mark.parametrize("external_id", ODD_IDS)
def test_every_customer_path_takes_any_external_id_percent_encoded(brand, db, external_id):
    created = brand.put(path(external_id), {"first_name": "Odd"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["external_id"] == external_id
    assert brand.get(path(external_id)).json()["external_id"] == external_id
    assert brand.post(path(external_id, "token/")).status_code == 201
    person(f"anon-{external_id}")
    merged = brand.post(path(external_id, "merge/"), {"anonymous_id": f"anon-{external_id}"},
                        format="json")
    assert merged.json()["customer"]["external_id"] == external_id
    assert exported(brand.get(path(external_id, "export/")))["customer"]["external_id"] == (
        external_id)
    assert brand.delete(path(external_id)).json()["status"] == "erased"
    assert not Customer.objects.filter(external_id=external_id).exists()


@pytest.mark.parametrize("external_id", ["a/token", "shop/merge", "x/export"])
def test_an_external_id_ending_like_a_customer_path_is_refused(brand, db, external_id):
    put = brand.put(path(external_id), {}, format="json")
    event = brand.post("/api/v1/events/", {"customer_id": external_id, "name": "x"},
                       format="json")
    batch = brand.post("/api/v1/events/batch/",
                       {"events": [{"customer_id": external_id, "name": "x"}]}, format="json")

    assert put.status_code in (400, 405)
    assert event.status_code == 400 and "customer_id" in event.json()["errors"]
    assert batch.json()["results"][0]["status"] == "invalid"
    assert "may not end in" in batch.json()["results"][0]["errors"]["customer_id"][0]
    assert not Customer.objects.exists()


def test_the_schema_documents_merge_erasure_and_export(client, db):
    schema = client.get("/api/schema/?format=json").json()

    paths = schema["paths"]
    assert "delete" in paths["/api/v1/customers/{external_id}/"]
    merge = paths["/api/v1/customers/{external_id}/merge/"]["post"]
    assert {"200", "400", "403", "409"} <= set(merge["responses"])
    export = paths["/api/v1/customers/{external_id}/export/"]["get"]["responses"]["200"]
    ref = export["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    sections = schema["components"]["schemas"][ref]["properties"]
    assert {"customer", "consent", "devices", "deliveries", "enrollments", "conversions",
            "events"} <= set(sections)
    assert sections["events"]["type"] == "array"
