"""Every admin form that takes JSON refuses what the database cannot store, naming where, and
every admin page (and the API) shows whatever is stored, however deeply it nests."""


import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from audiences.models import Customer, Event, Segment
from audiences.services import customer_upsert, event_track, segment_create
from campaigns.models import Campaign
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create
from notifications.models import Template
from tests.campaigns.admin_kit import campaign_form
from tests.notifications.test_admin_delivery import template_form

pytestmark = pytest.mark.django_db


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# (JSON text, words of the form error it gets)
HOSTILE_JSON = [
    ('{"price": 1e999}', "price: Numbers must be finite"),
    ('{"price": -1e999}', "price: Numbers must be finite"),
    ('{"price": NaN}', "price: Numbers must be finite"),
    ('{"n": 99999999999999999999}', "n: Integers must fit in 64 bits"),
    ('{"name": "a\\u0000b"}', "name: Must not contain NUL characters or lone surrogates"),
    ('{"name": ["\\ud800"]}', "name[0]: Must not contain NUL characters or lone surrogates"),
    ('{"k\\u0000": 1}', "A key holds a NUL character or a lone surrogate"),
    ('{"deep": ' + nested(32) + "}", "Nested more than 32 levels deep"),
    ('{"deep": ' + nested(1000) + "}", "Nested more than 32 levels deep"),
]


@pytest.fixture
def ana():
    customer, _ = customer_upsert(external_id="ana-1", first_name="Ana",
                                  attributes={"plan": "pro"})
    return customer


def customer_form(customer: Customer, attributes: str) -> dict:
    return {"external_id": customer.external_id, "first_name": customer.first_name,
            "last_name": "", "email": "", "referred_by": "", "stage": customer.stage,
            "locale": customer.locale, "time_zone": customer.time_zone, "attributes": attributes}


def assert_refused(response, words: str) -> None:
    assert response.status_code == 200  # the form again, with its error
    assert words in response.content.decode().replace("&#x27;", "'")


@pytest.mark.parametrize(("text", "words"), HOSTILE_JSON)
def test_customer_attributes_that_cannot_be_stored_are_a_form_error(admin_client, ana, text,
                                                                    words):
    url = reverse("admin:audiences_customer_change", args=[ana.pk])

    assert_refused(admin_client.post(url, customer_form(ana, text)), words)
    ana.refresh_from_db()
    assert ana.attributes == {"plan": "pro"}


@pytest.mark.parametrize(("text", "words"), HOSTILE_JSON)
def test_event_properties_that_cannot_be_stored_are_a_form_error(admin_client, ana, text, words):
    event = event_track(customer=ana, name="purchase", properties={"sku": "a1"}).event
    url = reverse("admin:audiences_event_change", args=[event.pk])
    occurred = event.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    form = {"customer": ana.pk, "name": "purchase", "properties": text,
            "occurred_at_0": occurred[:10], "occurred_at_1": occurred[11:],
            "received_at_0": occurred[:10], "received_at_1": occurred[11:],
            "client_event_id": ""}

    assert_refused(admin_client.post(url, form), words)
    event.refresh_from_db()
    assert event.properties == {"sku": "a1"}


@pytest.mark.parametrize(("text", "words"), HOSTILE_JSON)
def test_template_data_that_cannot_be_stored_is_a_form_error(admin_client, text, words):
    response = admin_client.post(reverse("admin:notifications_template_add"),
                                 template_form(data=text))

    assert_refused(response, words)
    assert not Template.objects.exists()


@pytest.mark.parametrize(("text", "words"), HOSTILE_JSON)
def test_campaign_filters_that_cannot_be_stored_are_a_form_error(admin_client, text, words):
    response = admin_client.post(reverse("admin:campaigns_campaign_add"),
                                 campaign_form(trigger_event_filter=text))

    assert_refused(response, words)
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(("text", "words"), HOSTILE_JSON)
def test_segment_rules_that_cannot_be_stored_are_a_form_error(admin_client, text, words):
    form = {"name": "Buyers", "key": "", "description": "", "kind": "dynamic", "rules": text}

    assert_refused(admin_client.post(reverse("admin:audiences_segment_add"), form), words)
    assert not Segment.objects.exists()


# --- what is already stored, however deep -------------------------------------------------

DEPTH = 900  # the API stored this much before the limit; a recursive reader fails near it


def store_raw(model, pk: int, column: str, text: str) -> None:
    """Write JSON text straight into the column, as a hand-made SQL fix would."""
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {model._meta.db_table} SET {column} = %s{cast} WHERE id = %s",
                       [text, pk])


@pytest.fixture
def deep_ana(ana):
    event = event_track(customer=ana, name="deep", properties={}).event
    store_raw(Customer, ana.pk, "attributes", '{"a": ' + nested(DEPTH) + "}")
    store_raw(Event, event.pk, "properties", '{"p": ' + nested(DEPTH) + "}")
    return ana, event


def test_admin_pages_render_a_customer_and_event_stored_900_levels_deep(admin_client, deep_ana):
    ana, event = deep_ana
    pages = [
        reverse("admin:audiences_customer_changelist"),
        reverse("admin:audiences_customer_change", args=[ana.pk]),
        reverse("admin:audiences_event_changelist"),
        reverse("admin:audiences_event_change", args=[event.pk]),
    ]

    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    assert nested(DEPTH) in admin_client.get(pages[1]).content.decode()  # shown whole


def test_saving_a_deep_stored_value_back_says_why_and_changes_nothing(admin_client, deep_ana):
    ana, _ = deep_ana
    url = reverse("admin:audiences_customer_change", args=[ana.pk])

    response = admin_client.post(url, customer_form(ana, '{"a": ' + nested(DEPTH) + "}"))

    assert_refused(response, "Nested more than 32 levels deep")


def test_a_segment_whose_stored_rules_nest_too_deep_shows_why(admin_client):
    segment = segment_create(name="Old", rules={"all": []})
    store_raw(Segment, segment.pk, "rules", '{"all": ' + nested(DEPTH) + "}")

    response = admin_client.get(reverse("admin:audiences_segment_change", args=[segment.pk]))

    assert response.status_code == 200
    assert "]: Nested more than 32 levels deep" in response.content.decode()


def test_the_api_reads_and_exports_a_customer_stored_900_levels_deep(deep_ana):
    ana, _ = deep_ana
    _, key = api_key_create(name="Backend", scopes=[ApiKey.Scope.CUSTOMERS_READ])
    brand = APIClient(HTTP_AUTHORIZATION=f"Api-Key {key}")

    read = brand.get(f"/api/v1/customers/{ana.external_id}/")
    export = brand.get(f"/api/v1/customers/{ana.external_id}/export/")

    assert read.status_code == 200
    assert read.content.decode().count("[" * DEPTH) == 1
    text = b"".join(export.streaming_content).decode()
    assert text.count("[" * DEPTH) == 2  # the attributes and the event's properties


def test_a_nul_in_a_customer_field_or_an_event_name_is_a_form_error(admin_client, ana):
    event = event_track(customer=ana, name="purchase").event
    occurred = event.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    customer_url = reverse("admin:audiences_customer_change", args=[ana.pk])
    event_url = reverse("admin:audiences_event_change", args=[event.pk])

    customer = admin_client.post(customer_url, {**customer_form(ana, "{}"),
                                                "first_name": "An\x00a"})
    named = admin_client.post(event_url, {
        "customer": ana.pk, "name": "pur\x00chase", "properties": "{}",
        "occurred_at_0": occurred[:10], "occurred_at_1": occurred[11:],
        "received_at_0": occurred[:10], "received_at_1": occurred[11:], "client_event_id": ""})

    assert_refused(customer, "Null characters are not allowed.")
    assert_refused(named, "Null characters are not allowed.")
    assert Customer.objects.get().first_name == "Ana"
    assert Event.objects.get().name == "purchase"
