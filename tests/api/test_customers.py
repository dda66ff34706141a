import pytest
from django.core import signing
from rest_framework.test import APIClient

from audiences.models import Customer, Topic, TopicOptOut
from audiences.services import CUSTOMER_TOKEN_SALT


@pytest.fixture
def offers(db):
    return Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})[0]


def put(client, external_id, body):
    return client.put(f"/api/v1/customers/{external_id}/", body, format="json")


def test_put_creates_a_customer_with_201(brand, offers):
    response = put(brand, "c-1", {
        "first_name": "Ana", "email": "ana@example.com", "locale": "pt-BR",
        "time_zone": "America/Sao_Paulo", "attributes": {"plan": "gold"},
        "push_opt_out": False, "opted_out_topics": ["offers"],
    })

    assert response.status_code == 201
    body = response.json()
    assert body["external_id"] == "c-1"
    assert body["stage"] == "awareness"
    assert body["opted_out_topics"] == ["offers"]
    customer = Customer.objects.get(external_id="c-1")
    assert (customer.first_name, customer.locale, customer.time_zone) == (
        "Ana", "pt-BR", "America/Sao_Paulo")
    assert TopicOptOut.objects.filter(customer=customer, topic=offers).exists()


def test_put_again_updates_with_200_and_keeps_absent_fields(brand, ana):
    response = put(brand, "ana-1", {"last_name": "Silva"})

    assert response.status_code == 200
    ana.refresh_from_db()
    assert (ana.first_name, ana.last_name) == ("Ana", "Silva")
    assert Customer.objects.count() == 1


def test_attributes_are_merged_and_null_deletes_a_key(brand, customer_factory):
    customer_factory("c-1", attributes={"plan": "gold", "city": "Porto"})

    response = put(brand, "c-1", {"attributes": {"city": None, "age": 31}})

    assert response.status_code == 200
    assert response.json()["attributes"] == {"plan": "gold", "age": 31}


@pytest.mark.parametrize("body, field", [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"locale": "not a locale"}, "locale"),
    ({"email": "not-an-email"}, "email"),
    ({"attributes": ["a", "list"]}, "attributes"),
    ({"push_opt_out": "perhaps"}, "push_opt_out"),
    ({"first_name": None}, "first_name"),
    ({"first_name": "x" * 151}, "first_name"),
    ({"opted_out_topics": "offers"}, "opted_out_topics"),
    ({"emial": "typo@example.com"}, "emial"),
    ({"stage": "advocacy"}, "stage"),
])
def test_bad_fields_are_400_naming_the_field(brand, body, field):
    response = put(brand, "c-1", body)

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Customer.objects.exists()


def test_an_unknown_topic_is_400_and_changes_nothing(brand, ana):
    response = put(brand, "ana-1", {"first_name": "Changed", "opted_out_topics": ["nope"]})

    assert response.status_code == 400
    assert "nope" in str(response.json()["errors"]["opted_out_topics"])
    ana.refresh_from_db()
    assert ana.first_name == "Ana"


def test_a_too_long_external_id_is_400(brand):
    response = put(brand, "x" * 256, {})

    assert response.status_code == 400
    assert "external_id" in response.json()["errors"]


def test_get_returns_the_profile(brand, ana, offers):
    TopicOptOut.objects.create(customer=ana, topic=offers)

    response = brand.get("/api/v1/customers/ana-1/")

    assert response.status_code == 200
    body = response.json()
    assert body["first_name"] == "Ana"
    assert body["time_zone"] == "Europe/Lisbon"
    assert body["opted_out_topics"] == ["offers"]
    assert body["bucket"] == ana.bucket
    assert body["referral_code"] == ana.referral_code
    assert {"stage", "last_seen_at", "attributes", "push_opt_out"} <= set(body)


@pytest.mark.django_db
def test_an_unknown_customer_is_a_json_404(brand):
    response = brand.get("/api/v1/customers/nobody/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No customer with external id 'nobody'.",
                               "code": "not_found"}


def test_a_minted_token_authenticates_the_app_as_that_customer(brand, ana, settings):
    response = brand.post("/api/v1/customers/ana-1/token/")

    assert response.status_code == 201
    body = response.json()
    assert signing.loads(body["token"], salt=CUSTOMER_TOKEN_SALT,
                         max_age=settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS) == {"c": ana.pk}
    assert body["expires_at"]
    me = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.json()["external_id"] == "ana-1"


@pytest.mark.django_db
def test_minting_a_token_for_an_unknown_customer_is_404(brand):
    assert brand.post("/api/v1/customers/nobody/token/").status_code == 404


def test_minting_a_token_takes_no_fields(brand, ana):
    response = brand.post("/api/v1/customers/ana-1/token/", {"ttl": 5}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"ttl": ["Unknown field."]}
