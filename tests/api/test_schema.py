import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from django.contrib.staticfiles import finders

from audiences.models import Topic
from audiences.services import customer_token_mint, customer_upsert
from tests.api import schemathesis_hooks
from tests.workers import test_database_url


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


HERE = Path(__file__).parent
ROOT = HERE.parent.parent
# Per operation and generation phase: enough to find a wrong type or a missing field, few
# enough that the run stays near two minutes on two busy cores (the README says how long).
EXAMPLES_PER_OPERATION = 10
RUN_TIMEOUT_SECONDS = 900  # a hung run fails CI instead of holding it
SERVER_READY_SECONDS = 60


@pytest.fixture
def api_server(transactional_db, settings, tmp_path):
    """The API as production serves it (gunicorn, two workers, DEBUG off, the WSGI wrapper of
    journeyhub.wsgi) on this test's database, with rate limits no fuzzer reaches."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": test_database_url(), "DEBUG": "0",
           "SECRET_KEY": settings.SECRET_KEY, "SECURE_SSL_REDIRECT": "0",
           "ALLOWED_HOSTS": "127.0.0.1", "API_KEY_RATE": "1000000/min",
           "CUSTOMER_TOKEN_RATE": "1000000/min"}
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "journeyhub.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "30", "--no-control-socket"],
        env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_READY_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urlopen(f"{url}/api/v1/topics/", timeout=1)
        except HTTPError:
            return  # answering (401: no credentials)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the API server did not come up in {SERVER_READY_SECONDS} s")


@pytest.mark.postgres(reason="the server runs in other processes, which need a database file "
                             "or server they can open (the SQLite test database is in memory)")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the server commits
def test_schemathesis_finds_no_failure_beyond_the_known_false_positives(api_server,
                                                                        key_factory):
    """Every check schemathesis has, over every operation in the schema, with an API key
    holding every scope and with a customer's token: no 5xx, and no failure but those
    tests/api/schemathesis_known.json explains (tests/api/schemathesis_hooks.py)."""
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    _, key = key_factory(name="Fuzzer")
    customer, _ = customer_upsert(external_id="fuzz-me")
    env = {**os.environ, "JOURNEYHUB_FUZZ_API_KEY": f"Api-Key {key}",
           "JOURNEYHUB_FUZZ_CUSTOMER_TOKEN": customer_token_mint(customer=customer)}
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"),
        "run", f"{api_server}/api/schema/?format=json", "--checks", "all",
        # One worker: with two threads, hypothesis's lambda descriptions (ast.parse) can fail
        # inside CPython ("AST constructor recursion depth mismatch"), a crash of the tool.
        "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "1", "--workers", "1",
        "--no-color",
    ]

    started = time.monotonic()
    run = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT_SECONDS)

    print(f"schemathesis ran {time.monotonic() - started:.0f} s; "
          + run.stdout[run.stdout.rfind("SUMMARY"):])
    assert run.returncode == 0, run.stdout[-30000:] + run.stderr[-5000:]


def bad_request(**errors) -> bytes:
    return json.dumps({"detail": "Invalid input.", "code": "invalid", "errors": errors}).encode()


@pytest.mark.parametrize(("operation", "failure", "status", "content", "known"), [
    ("POST /api/v1/templates/", "RejectedPositiveData", 400,
     bad_request(topic=["Object with key=x does not exist."]), True),
    ("POST /api/v1/templates/", "RejectedPositiveData", 400,
     bad_request(topic=["Object with key=x does not exist."], name=["Not a valid string."]),
     False),  # one error the list does not explain keeps the failure
    ("POST /api/v1/templates/", "RejectedPositiveData", 400,
     bad_request(name=["This field is required."]), False),  # the schema's to state
    ("POST /api/v1/events/", "RejectedPositiveData", 400,
     bad_request(topic=["Object with key=x does not exist."]), False),  # another operation
    ("PUT /api/v1/customers/{external_id}/", "RejectedPositiveData", 400,
     bad_request(**{"attributes.a\x00": ["A key holds a NUL character or a lone surrogate."]}),
     True),
    ("POST /api/v1/events/batch/", "AcceptedNegativeData", 200,
     b'{"results":[{"index":0,"status":"invalid","errors":{}}]}', True),
    ("POST /api/v1/events/batch/", "AcceptedNegativeData", 200,
     b'{"results":[{"index":0,"status":"created","id":1}]}', False),
    ("GET /api/v1/topics/", "ServerError", 500, b"", False),
])
def test_the_known_list_explains_exactly_what_it_lists(operation, failure, status, content,
                                                      known):
    assert schemathesis_hooks.is_known(operation, failure, status, content) is known
