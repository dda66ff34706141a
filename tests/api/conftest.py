import pytest
from rest_framework.test import APIClient

from audiences.services import customer_token_mint
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create

ALL_SCOPES = ApiKey.Scope.values


@pytest.fixture
def key_factory(db):
    """``key_factory(scopes=[...])`` -> (ApiKey row, full key)."""

    def make(*, scopes=ALL_SCOPES, expires_at=None, name="Brand backend"):
        return api_key_create(name=name, scopes=scopes, expires_at=expires_at)

    return make


@pytest.fixture
def brand(key_factory) -> APIClient:
    """A client holding an API key with every scope."""
    _, key = key_factory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def app_for(db):
    """``app_for(customer)`` -> a client holding that customer's token, as their app would."""

    def make(customer) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {customer_token_mint(customer=customer)}")
        return client

    return make


@pytest.fixture
def ana(customer_factory):
    return customer_factory("ana-1", first_name="Ana", time_zone="Europe/Lisbon")


@pytest.fixture
def ben(customer_factory):
    return customer_factory("ben-2", first_name="Ben")
