import time
from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from audiences.models import Customer
from audiences.services import CUSTOMER_TOKEN_SALT
from journeyhub.models import ApiKey
from journeyhub.services import api_key_revoke

CUSTOMER_URL = "/api/v1/customers/ana-1/"


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_a_valid_api_key_reads_a_customer(brand, ana):
    response = brand.get(CUSTOMER_URL)

    assert response.status_code == 200
    assert response.json()["external_id"] == "ana-1"


@pytest.mark.django_db
def test_a_missing_key_is_401_with_the_scheme_to_use():
    response = client_with(None).get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Api-Key", "Api-Key not-a-key", "Api-Key jh_12_x",
                                    "Api-Key a b"])
def test_a_malformed_key_is_401(header):
    response = client_with(header).get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response.json()["code"] == "malformed"


@pytest.mark.django_db
def test_an_unknown_key_is_401():
    response = client_with("Api-Key jh_0123abcd_" + "x" * 43).get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "Unknown API key.", "code": "key_unknown"}


def test_a_wrong_secret_behind_a_real_prefix_is_401(key_factory):
    api_key, key = key_factory()

    response = client_with(f"Api-Key jh_{api_key.prefix}_{'x' * 43}").get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response.json()["code"] == "key_unknown"


def test_a_revoked_key_is_401_saying_revoked(key_factory, ana):
    api_key, key = key_factory()
    api_key_revoke(api_key=api_key)

    response = client_with(f"Api-Key {key}").get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "This API key was revoked.", "code": "key_revoked"}


def test_an_expired_key_is_401_saying_expired(key_factory, ana):
    api_key, key = key_factory(expires_at=timezone.now() + timedelta(hours=1))
    ApiKey.objects.filter(pk=api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client_with(f"Api-Key {key}").get(CUSTOMER_URL)

    assert response.status_code == 401
    assert response.json() == {"detail": "This API key has expired.", "code": "key_expired"}


def test_a_key_without_the_scope_is_403_naming_it(key_factory, ana):
    _, key = key_factory(scopes=[ApiKey.Scope.EVENTS_WRITE])

    response = client_with(f"Api-Key {key}").get(CUSTOMER_URL)

    assert response.status_code == 403
    assert "customers:read" in response.json()["detail"]


def test_a_read_scope_does_not_allow_writing(key_factory):
    _, key = key_factory(scopes=[ApiKey.Scope.CUSTOMERS_READ])

    response = client_with(f"Api-Key {key}").put(CUSTOMER_URL, {}, format="json")

    assert response.status_code == 403
    assert "customers:write" in response.json()["detail"]
    assert not Customer.objects.exists()


def test_last_used_at_is_written_at_most_once_a_minute(key_factory, ana):
    api_key, key = key_factory()
    client = client_with(f"Api-Key {key}")

    client.get(CUSTOMER_URL)
    api_key.refresh_from_db()
    first_use = api_key.last_used_at
    client.get(CUSTOMER_URL)
    api_key.refresh_from_db()

    assert first_use is not None
    assert api_key.last_used_at == first_use

    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=first_use - timedelta(minutes=2))
    client.get(CUSTOMER_URL)
    api_key.refresh_from_db()
    assert api_key.last_used_at > first_use


def test_a_key_is_found_with_one_query(key_factory, ana, django_assert_num_queries):
    api_key, key = key_factory()
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    client = client_with(f"Api-Key {key}")

    # the key, then the customer and their opted-out topics
    with django_assert_num_queries(3):
        assert client.get(CUSTOMER_URL).status_code == 200


def test_an_api_key_cannot_act_as_a_customer(brand):
    response = brand.get("/api/v1/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_customer_token_cannot_use_brand_endpoints(app_for, ana):
    response = app_for(ana).get(CUSTOMER_URL)

    assert response.status_code == 401


def test_a_customer_token_reads_its_profile(app_for, ana):
    response = app_for(ana).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["external_id"] == "ana-1"


@pytest.mark.django_db
def test_a_forged_token_is_401():
    response = client_with("Bearer not.a.token").get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


def test_a_token_signed_for_another_purpose_is_401(ana):
    token = signing.dumps({"c": ana.pk}, salt="some.other.salt", compress=True)

    response = client_with(f"Bearer {token}").get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


class BackdatedSigner(signing.TimestampSigner):
    """Django's signer with a clock 31 days behind: a token minted back then."""

    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 31 * 24 * 3600)


def test_an_expired_token_is_401_saying_expired(ana, settings):
    settings.CUSTOMER_TOKEN_MAX_AGE_SECONDS = 30 * 24 * 3600
    token = BackdatedSigner(salt=CUSTOMER_TOKEN_SALT).sign_object({"c": ana.pk}, compress=True)

    response = client_with(f"Bearer {token}").get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {"detail": "This customer token has expired.",
                               "code": "token_expired"}


def test_a_deleted_customers_token_is_401(app_for, ana):
    client = app_for(ana)
    ana.delete()

    response = client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "customer_deleted"
