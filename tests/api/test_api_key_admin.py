import hashlib
import re

import pytest
from rest_framework.test import APIClient

from journeyhub.models import ApiKey

ADD_URL = "/journeyhub/apikey/add/"
LIST_URL = "/journeyhub/apikey/"


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(admin_client):
    response = admin_client.post(ADD_URL, {
        "name": "Shop backend", "scopes": ["customers:write", "events:write"],
    }, follow=True)

    page = response.content.decode()
    key = re.search(r"<code>(jh_[^<]+)</code>", page).group(1)
    api_key = ApiKey.objects.get()
    assert key.startswith(f"jh_{api_key.prefix}_")
    assert api_key.hashed_secret == hashlib.sha256(key.encode()).hexdigest()
    assert api_key.scopes == ["customers:write", "events:write"]
    assert key not in str([getattr(api_key, f.attname) for f in ApiKey._meta.fields])
    again = admin_client.get(f"/journeyhub/apikey/{api_key.pk}/change/").content.decode()
    assert key not in again
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.post("/api/v1/events/", {"customer_id": "c", "name": "x"},
                       format="json").status_code == 201


def test_the_add_form_offers_scopes_as_checkboxes(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    for scope in ApiKey.Scope.values:
        assert f'type="checkbox" name="scopes" value="{scope}"' in page


def test_a_key_needs_a_scope_and_a_future_expiry(admin_client):
    response = admin_client.post(ADD_URL, {"name": "x", "expires_at_0": "2001-01-01",
                                           "expires_at_1": "00:00:00"})

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"scopes", "expires_at"}
    assert not ApiKey.objects.exists()


def test_the_list_shows_prefix_scopes_last_use_and_state(admin_client, key_factory):
    active, _ = key_factory(name="Live", scopes=["events:write"])
    revoked, _ = key_factory(name="Old")
    admin_client.post(LIST_URL, {"action": "revoke", "_selected_action": [revoked.pk]})

    page = admin_client.get(LIST_URL).content.decode()

    assert active.prefix in page and "events:write" in page
    assert "Revoked" in page and "Active" in page
    assert "Last used at" in page


def test_the_revoke_action_stops_the_key_working(admin_client, key_factory):
    api_key, key = key_factory()

    response = admin_client.post(LIST_URL, {"action": "revoke", "_selected_action": [api_key.pk]},
                                 follow=True)

    assert "Revoked 1 API key" in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/topics/").status_code == 401


@pytest.mark.django_db
def test_the_admin_is_branded(admin_client):
    page = admin_client.get("/").content.decode()

    assert "JourneyHub" in page
