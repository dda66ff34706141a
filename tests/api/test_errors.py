import json

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from audiences.models import Customer, Event
from journeyhub.api_errors import exception_handler


def put_raw(client, body: bytes | str, content_type="application/json"):
    return client.generic("PUT", "/api/v1/customers/c-1/", body, content_type=content_type)


@pytest.mark.django_db
def test_malformed_json_is_400(brand):
    response = put_raw(brand, b'{"first_name": "Ana",')

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_415(brand):
    response = put_raw(brand, "first_name=Ana", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_a_json_array_where_an_object_belongs_is_400(brand):
    response = put_raw(brand, b'["first_name", "Ana"]')

    assert response.status_code == 400
    assert "non_field_errors" in response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", [r"\u0000", r"\ud800", r"ok\udfffok"])
def test_text_a_database_cannot_store_is_400_wherever_it_hides(brand, text):
    """JSON may carry NUL and lone surrogates as escapes; PostgreSQL would refuse them."""
    body = '{"attributes": {"nested": [{"deep": "' + text + '"}]}}'

    response = put_raw(brand, body)

    assert response.status_code == 400
    assert "attributes.nested[0].deep" in response.json()["errors"]
    assert not Customer.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("number", ["1e999", "-1e999", "1" + "0" * 400 + ".5", "1.7e308", "1e19",
                                    str(2**63), str(-(2**63) - 1)])
def test_a_number_no_database_can_hold_is_400_naming_its_path(brand, number):
    body = '{"attributes": {"plan": {"price": [1, ' + number + ']}}}'

    response = put_raw(brand, body)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["attributes.plan.price[1]"]
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_the_largest_64_bit_integers_and_floats_are_stored(brand):
    big, small = 2**63 - 1, -(2**63)
    body = f'{{"attributes": {{"big": {big}, "small": {small}, "f": 1.5e18, "tiny": 1e-300}}}}'

    response = put_raw(brand, body)

    assert response.status_code == 201
    assert Customer.objects.get().attributes == {"big": 2**63 - 1, "small": -(2**63),
                                                 "f": 1.5e18, "tiny": 1e-300}


@pytest.mark.django_db
def test_a_body_nested_past_the_depth_limit_is_400_before_anything_walks_it(brand):
    nested = "[" * 200 + "]" * 200  # parses, but a recursive reader of it would struggle
    response = put_raw(brand, '{"attributes": {"x": ' + nested + '}}')

    assert response.status_code == 400
    assert "Nested more than" in str(response.json()["errors"])
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_an_escaped_backslash_before_u0000_is_ordinary_text(brand):
    response = put_raw(brand, r'{"first_name": "a\\u0000"}')

    assert response.status_code == 201
    assert Customer.objects.get().first_name == "a\\u0000"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b'{"attributes": {"x": NaN}}', b'{"first_name": "\xff"}'])
def test_not_quite_json_is_400(brand, body):
    response = put_raw(brand, body)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
def test_a_nul_in_a_key_is_400(brand):
    response = put_raw(brand, '{"attributes": {"a\\u0000b": 1}}')

    assert response.status_code == 400


@pytest.mark.django_db
def test_an_absurdly_nested_body_is_400(brand):
    response = put_raw(brand, "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
def test_a_body_over_the_limit_is_413_before_it_is_parsed(brand):
    body = json.dumps({"events": [{"customer_id": "c", "name": "x" * 3_000_000}]})

    response = brand.generic("POST", "/api/v1/events/batch/", body,
                             content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_a_wrong_method_is_a_json_405(brand):
    response = brand.delete("/api/v1/events/")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_unexpected_exception_becomes_a_json_500():
    response = exception_handler(RuntimeError("boom"), {})

    assert response.status_code == 500
    assert response.data == {"detail": "Server error.", "code": "server_error"}


def tight_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "1000/min", "customer_token": "1000/min", **rates},
    }


def test_an_api_key_over_its_rate_gets_429_with_retry_after(settings, brand, key_factory, ana):
    tight_rates(settings, api_key="2/min")

    statuses = [brand.get("/api/v1/customers/ana-1/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    throttled = brand.get("/api/v1/customers/ana-1/")
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert throttled.json()["code"] == "throttled"
    _, other_key = key_factory(name="Other backend")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_key}")
    assert other.get("/api/v1/customers/ana-1/").status_code == 200  # its own budget


def test_a_customer_over_its_rate_gets_429_and_others_do_not(settings, app_for, ana, ben):
    tight_rates(settings, customer_token="2/min")
    anas_app = app_for(ana)

    statuses = [anas_app.get("/api/v1/me/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert "Retry-After" in anas_app.get("/api/v1/me/")
    assert app_for(ben).get("/api/v1/me/").status_code == 200


def nested_json(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/events/", '{{"customer_id": "c", "name": "x", "properties": {{"p": {}}}}}',
     "properties.p"),
    ("/api/v1/events/batch/",
     '{{"events": [{{"customer_id": "c", "name": "x", "properties": {{"p": {}}}}}]}}', None),
    ("/api/v1/templates/", '{{"name": "n", "title": "t", "body": "b", "data": {{"p": {}}}}}',
     "data.p"),
    ("/api/v1/segments/", '{{"name": "n", "key": "n", "rules": {{"p": {}}}}}', "rules.p"),
])
def test_each_json_value_has_the_depth_limit_whatever_the_envelope_around_it(brand, path, body,
                                                                             field):
    """A value of 33 levels (the object and 32 within it) is one too many; its body is shallow
    enough for the parser, which allows a batch's envelope."""
    too_deep = brand.generic("POST", path, body.format(nested_json(32)),
                             content_type="application/json")

    if field is None:  # a batch reports the item
        result = too_deep.json()["results"][0]
        assert result["status"] == "invalid"
        assert "Nested more than 32 levels deep." in str(result["errors"])
    else:
        assert too_deep.status_code == 400
        assert [key for key in too_deep.json()["errors"] if key.startswith(field)]
    assert not Event.objects.exists()
