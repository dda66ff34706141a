import re

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.staticfiles import finders
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from audiences.models import Topic
from audiences.services import customer_token_mint, customer_upsert

EXAMPLES_PER_OPERATION = 10  # x 2 modes x ~40 operations: about a minute


@pytest.mark.django_db
def test_the_schema_declares_both_credentials_and_error_responses(client):
    schema = client.get("/api/schema/?format=json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header",
                                 "name": "Authorization"}
    assert schemes["CustomerToken"]["scheme"] == "bearer"
    customer = schema["paths"]["/api/v1/customers/{external_id}/"]
    assert customer["put"]["security"] == [{"ApiKey": []}]
    assert {"200", "201", "400", "401", "403", "429"} <= set(customer["put"]["responses"])
    assert schema["paths"]["/api/v1/me/devices/{device_id}/"]["get"]["security"] == [
        {"CustomerToken": []}]
    assert "/api/v1/device/apns/" not in schema["paths"]


@pytest.mark.django_db
def test_the_docs_page_loads_its_assets_from_this_server(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.findall(r"""(?:src|href)=["']?https?://""", html)
    assert not re.findall(r"""["']https?://[^"']+\.(?:js|css)""", html)
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)""", html)
    assert len(assets) >= 3
    assert all(finders.find(asset) for asset in assets)  # shipped here, collected by collectstatic


@pytest.fixture
def api_schema(db, settings, key_factory):
    """The live schema, fetched over WSGI in this process, with high rate limits: the run makes
    hundreds of requests as one key and one customer."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "100000/min", "customer_token": "100000/min"},
    }
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    # As Django's test client does: a real WSGI request would otherwise close the connection
    # that holds the test's transaction when it finishes.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(key_factory, api_schema) -> dict[str, str]:
    """The Authorization header for each security scheme: a key with every scope, a live
    customer's token."""
    _, key = key_factory(name="Fuzzer")
    customer, _ = customer_upsert(external_id="fuzz-me")
    return {
        "ApiKey": f"Api-Key {key}",
        "CustomerToken": f"Bearer {customer_token_mint(customer=customer)}",
    }


def test_no_input_makes_the_api_answer_5xx(api_schema, credentials):
    """Schemathesis generates valid and invalid requests for every operation in the schema and
    sends them, with real credentials, through the WSGI app in this process."""
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        scheme = next(iter(operation.definition.raw.get("security", [{}])[0]), None)
        headers = {"Authorization": credentials[scheme]} if scheme else {}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation.as_strategy(mode), headers)
            except Unsatisfiable:
                continue  # nothing to make invalid, e.g. a GET without parameters
            except Exception as failure:  # reported below, with every other operation's
                failures.append(f"{operation.label} ({mode.value}): {failure}")

    assert not failures, "\n\n".join(failures)


def _fuzz(strategy, headers: dict) -> None:
    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )
    def send(case):
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    send()
