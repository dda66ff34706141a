"""Hostile payloads against every write endpoint: each gets a 4xx in the documented error shape
in under a second, and nothing is written. Unknown paths and methods get the same shape."""

import json
import time
from io import BytesIO

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audiences.services import customer_token_mint, customer_upsert, segment_create
from campaigns import services as campaign_services
from journeyhub.wsgi import application
from notifications.models import Template
from notifications.services import device_register, send_create

pytestmark = pytest.mark.django_db

REQUEST_SECONDS = 1.0  # a bound on the work one hostile request may cause
BODY_LIMIT = 2_621_440  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# (name, body, content type). The hostile value sits under "name", a field most bodies have;
# where the endpoint has no such field it is an unknown field, refused all the same.
HOSTILE_BODIES = [
    ("infinity", b'{"name": 1e999}', "application/json"),
    ("minus infinity", b'{"name": -1e999}', "application/json"),
    ("NaN", b'{"name": NaN}', "application/json"),
    ("integer of 400 digits", b'{"name": 1' + b"0" * 400 + b"}", "application/json"),
    ("2^64", b'{"name": 18446744073709551616}', "application/json"),
    ("float past 2^63", b'{"name": 1e300}', "application/json"),
    ("33 levels", b'{"name": ' + nested(33) + b"}", "application/json"),
    ("1000 levels", b'{"name": ' + nested(1000) + b"}", "application/json"),
    ("100,000 levels", nested(100_000), "application/json"),
    ("NUL in a value", b'{"name": "a\\u0000b"}', "application/json"),
    ("lone surrogate in a value", b'{"name": "a\\ud800b"}', "application/json"),
    ("NUL in a key", b'{"na\\u0000me": "x"}', "application/json"),
    ("lone surrogate in a key", b'{"\\udfff": "x"}', "application/json"),
    ("raw NUL byte", b'{"name": "a\x00b"}', "application/json"),
    ("bytes that are not UTF-8", b'{"name": "\xff\xfe"}', "application/json"),
    ("a megabyte string", json.dumps({"name": "x" * 1_000_000}).encode(), "application/json"),
    ("over the body limit", b'{"name": "' + b"x" * BODY_LIMIT + b'"}', "application/json"),
    ("wrong type", b'{"name": ["not", "text"]}', "application/json"),
    ("unknown field", b'{"no_such_field": 1}', "application/json"),
    ("an array", b"[]", "application/json"),
    ("a string", b'"hello"', "application/json"),
    ("a number", b"42", "application/json"),
    ("null", b"null", "application/json"),
    ("not JSON", b"name=x", "application/json"),
    ("cut short", b'{"name": ', "application/json"),
    ("form data", b"name=x", "application/x-www-form-urlencoded"),
    ("multipart", b"--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n",
     "multipart/form-data; boundary=b"),
    ("plain text", b'{"name": "x"}', "text/plain"),
    ("XML", b"<name>x</name>", "application/xml"),
    ("no content type", b'{"name": "x"}', ""),
]
EMPTY_BODIES = [("empty body", b"", "application/json"),
                ("empty object", b"{}", "application/json")]


@pytest.fixture
def world(key_factory):
    """One of everything the write endpoints act on, and a client for each credential."""
    ana, _ = customer_upsert(external_id="ana-1", first_name="Ana")
    template = Template.objects.create(name="Hello", title="Hi", body="Welcome")
    everyone = segment_create(name="Dynamic", key="dynamic", rules={"all": []})
    segment_create(name="Static", key="static", kind="static")
    campaign = campaign_services.campaign_save(
        fields={"name": "Weekly", "kind": "broadcast", "segment": everyone})
    device, _ = device_register(customer=ana, kind="apns", token="ab" * 32, platform="ios")
    queued = send_create(template=template, customer_ids=[ana.pk])
    _, key = key_factory()
    key, token = f"Api-Key {key}", f"Bearer {customer_token_mint(customer=ana)}"
    return {"brand": APIClient(HTTP_AUTHORIZATION=key), "app": APIClient(HTTP_AUTHORIZATION=token),
            "key": key, "token": token, "template": template.pk, "campaign": campaign.pk,
            "device": device.pk, "send": queued.pk}


# (client, method, path, whether an empty body is a valid request there)
WRITES = [
    ("brand", "PUT", "/api/v1/customers/ana-1/", True),
    ("brand", "DELETE", "/api/v1/customers/ana-1/", True),
    ("brand", "POST", "/api/v1/customers/ana-1/token/", True),
    ("brand", "POST", "/api/v1/customers/ana-1/merge/", False),
    ("brand", "POST", "/api/v1/events/", False),
    ("brand", "POST", "/api/v1/events/batch/", False),
    ("brand", "POST", "/api/v1/segments/", False),
    ("brand", "PUT", "/api/v1/segments/dynamic/", False),
    ("brand", "PATCH", "/api/v1/segments/dynamic/", True),
    ("brand", "DELETE", "/api/v1/segments/dynamic/", True),
    ("brand", "PUT", "/api/v1/segments/static/members/", False),
    ("brand", "PATCH", "/api/v1/segments/static/members/", False),
    ("brand", "POST", "/api/v1/templates/", False),
    ("brand", "PUT", "/api/v1/templates/{template}/", False),
    ("brand", "PATCH", "/api/v1/templates/{template}/", True),
    ("brand", "DELETE", "/api/v1/templates/{template}/", True),
    ("brand", "POST", "/api/v1/campaigns/", False),
    ("brand", "PUT", "/api/v1/campaigns/{campaign}/", False),
    ("brand", "PATCH", "/api/v1/campaigns/{campaign}/", True),
    ("brand", "DELETE", "/api/v1/campaigns/{campaign}/", True),
    ("brand", "POST", "/api/v1/campaigns/{campaign}/launch/", True),
    ("brand", "POST", "/api/v1/campaigns/{campaign}/duplicate/", True),
    ("brand", "POST", "/api/v1/sends/", False),
    ("brand", "POST", "/api/v1/sends/{send}/pause/", True),
    ("brand", "POST", "/api/v1/sends/{send}/cancel/", True),
    ("app", "PATCH", "/api/v1/me/", True),
    ("app", "PUT", "/api/v1/me/consent/", False),
    ("app", "POST", "/api/v1/me/events/", False),
    ("app", "POST", "/api/v1/me/events/batch/", False),
    ("app", "POST", "/api/v1/me/devices/", False),
    ("app", "PATCH", "/api/v1/me/devices/{device}/", True),
    ("app", "DELETE", "/api/v1/me/devices/{device}/", True),
    ("app", "POST", "/api/v1/me/deliveries/opened/", False),
    ("app", "POST", "/api/v1/me/deliveries/received/", False),
]
TABLES = [
    "audiences_customer", "audiences_event", "audiences_topicoptout", "audiences_segment",
    "audiences_segmentmember", "audiences_customermerge", "audiences_customererasure",
    "notifications_device", "notifications_template", "notifications_templatetranslation",
    "notifications_delivery", "notifications_send", "campaigns_campaign", "campaigns_step",
    "campaigns_variant", "campaigns_enrollment", "django_celery_beat_periodictask",
]


def row_counts() -> tuple:
    """Every table a write endpoint touches, counted in one query."""
    counts = ", ".join(f"(SELECT count(*) FROM {table})" for table in TABLES)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return cursor.fetchone()


def shape_problem(response) -> str | None:
    """What is wrong with an error response, measured against the documented shape."""
    if not response["Content-Type"].startswith("application/json"):
        return f"answered {response['Content-Type']}"
    body = response.json()
    if not (isinstance(body, dict) and isinstance(body.get("detail"), str)
            and isinstance(body.get("code"), str)):
        return f"body {body!r} lacks detail and code"
    errors = body.get("errors")
    if response.status_code == 400 and not (
            isinstance(errors, dict) and errors and all(
                isinstance(messages, list) and messages
                and all(isinstance(message, str) for message in messages)
                for messages in errors.values())):
        return f"a 400 without field errors: {body!r}"
    return None


def send(client, method: str, path: str, body: bytes, content_type: str):
    started = time.monotonic()
    response = client.generic(method, path, body, content_type=content_type)
    return response, time.monotonic() - started


@pytest.mark.parametrize(("who", "method", "path", "empty_ok"), WRITES,
                         ids=[f"{method} {path}" for _, method, path, _ in WRITES])
def test_every_hostile_body_is_a_4xx_in_the_error_shape_that_writes_nothing(world, who, method,
                                                                            path, empty_ok):
    client, path = world[who], path.format(**world)
    problems = []
    cases = HOSTILE_BODIES + ([] if empty_ok else EMPTY_BODIES)
    for name, body, content_type in cases:
        before = row_counts()
        response, seconds = send(client, method, path, body, content_type)
        problem = (None if 400 <= response.status_code < 500
                   else f"status {response.status_code}") or shape_problem(response)
        if seconds >= REQUEST_SECONDS:
            problem = f"took {seconds:.2f} s"
        if row_counts() != before:
            problem = "changed rows"
        if problem:
            problems.append(f"{name}: {problem}")

    assert not problems, "\n".join(problems)


def test_an_empty_body_where_it_is_a_valid_request_changes_nothing(world):
    before = row_counts()

    for method, path in [("PATCH", "/api/v1/me/"), ("PATCH", "/api/v1/segments/dynamic/"),
                         ("PATCH", f"/api/v1/templates/{world['template']}/"),
                         ("PATCH", f"/api/v1/campaigns/{world['campaign']}/")]:
        client = world["app" if path.startswith("/api/v1/me/") else "brand"]
        assert client.generic(method, path, b"", content_type="application/json") \
            .status_code == 200, path

    assert row_counts() == before


UNKNOWN = [
    ("GET", "/api/v1/nope/"), ("POST", "/api/v1/nope/"), ("DELETE", "/api/v2/customers/a/"),
    ("POST", "/api/v1/events"), ("PUT", "/api"), ("PATCH", "/api/"),
    ("GET", "/api/v1/customers/"), ("POST", "/api/v1/campaigns/x/launch/extra/"),
]
NOT_ALLOWED = [
    ("PUT", "/api/v1/events/"), ("DELETE", "/api/v1/events/batch/"), ("POST", "/api/v1/topics/"),
    ("PATCH", "/api/v1/customers/ana-1/token/"), ("POST", "/api/v1/me/"),
    ("PUT", "/api/v1/me/devices/"), ("TRACE", "/api/v1/topics/"), ("BREW", "/api/v1/me/"),
    ("POST", "/api/schema/"), ("DELETE", "/api/docs/"),
]


@pytest.mark.parametrize(("method", "path"), UNKNOWN)
def test_an_unknown_api_path_is_a_json_404_for_every_method_csrf_or_not(world, method, path):
    # A browser's session and CSRF checks as a real client would meet them.
    for client in (world["brand"], APIClient(enforce_csrf_checks=True)):
        response, seconds = send(client, method, path, b'{"a": 1}', "application/json")

        assert response.status_code == 404
        assert shape_problem(response) is None
        assert response.json()["code"] == "not_found"
        assert seconds < REQUEST_SECONDS


@pytest.mark.parametrize(("method", "path"), NOT_ALLOWED)
def test_a_method_a_path_does_not_take_is_a_json_405(world, method, path):
    client = world["app" if path.startswith("/api/v1/me/") else "brand"]

    response, _ = send(client, method, path, b"", "application/json")

    assert response.status_code == 405
    assert shape_problem(response) is None
    assert response.json()["code"] == "method_not_allowed"


def test_a_missing_slash_is_named_in_the_404(world):
    response, _ = send(world["brand"], "POST", "/api/v1/events", b"{}", "application/json")

    assert response.json()["detail"].endswith("API paths end with a slash: /api/v1/events/")


def test_api_key_and_bearer_requests_never_meet_csrf(world, admin_user):
    """A browser session beside the credentials changes nothing: the key or token decides."""
    brand = APIClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=world["key"])
    brand.force_login(admin_user)
    app = APIClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=world["token"])
    app.force_login(admin_user)

    created = brand.post("/api/v1/segments/", {"name": "VIP", "key": "vip", "rules": {"all": []}},
                         format="json")
    tracked = app.post("/api/v1/me/events/", {"name": "opened_app"}, format="json")

    assert created.status_code == 201, created.json()
    assert tracked.status_code == 201, tracked.json()


def test_a_session_without_its_csrf_token_is_a_json_403(world, admin_user):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(admin_user)

    response = browser.post("/api/v1/segments/", {"name": "VIP", "rules": {"all": []}},
                            format="json")

    assert response.status_code == 403
    assert shape_problem(response) is None
    assert "CSRF" in response.json()["detail"]


def test_a_key_without_the_scope_and_a_token_on_a_brand_path_are_json_401_or_403(world,
                                                                                  key_factory):
    _, reader = key_factory(scopes=["customers:read"])
    limited = APIClient(HTTP_AUTHORIZATION=f"Api-Key {reader}")

    refused = [
        limited.put("/api/v1/customers/ana-1/", {}, format="json"),
        limited.post("/api/v1/segments/", {}, format="json"),
        world["app"].put("/api/v1/customers/ana-1/", {}, format="json"),
        APIClient().post("/api/v1/events/", {}, format="json"),
    ]

    assert [response.status_code for response in refused] == [403, 403, 401, 401]
    assert all(shape_problem(response) is None for response in refused)


def wsgi_get(raw_path: bytes) -> tuple[str, bytes]:
    """Call the WSGI application as a server would, with the path's raw bytes."""
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": raw_path.decode("latin-1"), "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": BytesIO(), "wsgi.errors": BytesIO(),
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    status = []
    body = b"".join(application(environ, lambda line, headers, *_: status.append(line)))
    return status[0], body


@pytest.mark.parametrize("raw_path", [
    b"/api/v1/customers/\xff/", b"/api/v1/customers/\xed\xa0\x80/", b"/api/v1/segments/\xc3/",
])
def test_a_path_that_is_not_utf8_is_a_json_400_before_django_reads_it(raw_path):
    status, body = wsgi_get(raw_path)

    assert status.startswith("400")
    assert json.loads(body) == {"detail": "The path is not valid percent-encoded UTF-8.",
                                "code": "bad_path",
                                "errors": {"path": ["The path is not valid percent-encoded "
                                                    "UTF-8."]}}


def test_an_external_id_with_a_slash_is_addressed_percent_encoded(world):
    customer_upsert(external_id="shop/users/42", first_name="Slash")

    response = world["brand"].get("/api/v1/customers/shop%2Fusers%2F42/")

    assert response.json()["first_name"] == "Slash"
    assert response.json()["external_id"] == "shop/users/42"
