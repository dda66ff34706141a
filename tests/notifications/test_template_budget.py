"""Templates render within a budget of time, loop iterations and size: a template over it is
refused when saved (admin, API, service), and a delivery over it at send time is skipped with
render_error while the rest of its batch goes out. Fields that cannot be stored (NUL, lone
surrogates) are refused with an error on the field."""

import json
from datetime import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from audiences.services import customer_upsert
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create
from notifications import rendering, template_engine
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Template
from notifications.providers import locmem
from notifications.rendering import SAMPLE_CUSTOMER, message_context, render, template_check
from notifications.sending.batch_send import batch_send
from notifications.services import device_register, send_create, send_fan_out, template_save
from notifications.template_engine import (
    FIELD_MAX_BYTES,
    RENDER_MAX_LOOPS,
    RENDER_MAX_MS,
    RenderOverBudget,
)
from tests.notifications.sending_kit import run, template_form

pytestmark = pytest.mark.django_db

TEMPLATES = "/api/v1/templates/"


def items(count: int) -> str:
    """A sequence of ``count`` items, written in the template."""
    return '"' + "x" * count + '"|make_list'


HUNDRED = items(100)


def nested_loops(depth: int, body: str = "x") -> str:
    return f"{{% for i in {HUNDRED} %}}" * depth + body + "{% endfor %}" * depth


# Each over the budget in a different way, and the reason the save gives.
OVER_BUDGET = {
    "three nested loops of 100": (nested_loops(3), f"loops run more than {RENDER_MAX_LOOPS:,}"),
    "four nested loops of 100": (nested_loops(4, ""), f"loops run more than {RENDER_MAX_LOOPS:,}"),
    "a huge ljust width": ('{{ "x"|ljust:"1000000000" }}', "asks ljust for over 16 KB"),
    "a huge center width": ("{{ customer.first_name|center:99999999999999999999 }}",
                            "asks center for over 16 KB"),
    "a huge precision": ('{{ "1.5"|floatformat:"99999" }}', "asks floatformat for over 16 KB"),
    "widthratio with huge numbers": ("{% widthratio 10 1 100000000000000000000 %}",
                                     "widthratio gives 1e+21"),
    "a value repeated past the size": (
        '{% with a="x"|ljust:"10000" %}{{ a }}{{ a }}{% endwith %}', "renders over 16 KB"),
    "a loop repeating a value": (
        f'{{% with a="x"|ljust:"1000" %}}{{% for i in {HUNDRED} %}}{{{{ a }}}}{{% endfor %}}'
        "{% endwith %}", "renders over 16 KB"),
    "a value doubled in a chain": (
        '{% with a="x"|ljust:"9000" %}{% with b=a|add:a %}{{ b|length }}{% endwith %}'
        "{% endwith %}", "add filter makes a value over 16 KB"),
    "a join of a large list": (
        '{% with a="x"|ljust:"1000" %}{{ a|make_list|join:a }}{% endwith %}',
        "join filter makes a value over 16 KB"),
    "an over-budget filter inside a condition": (
        '{% if "x"|ljust:"99999999" == "y" %}yes{% else %}no{% endif %}',
        "asks ljust for over 16 KB"),
    "a slow loop": (
        # Within the loop cap (99 + 99 * 100 iterations) and with no output, but each
        # iteration applies 100 filters: a million filter calls cannot finish in the time.
        f'{{% for i in {items(99)} %}}{{% for j in {HUNDRED} %}}{{% if j{"|upper|lower" * 50}'
        ' == "q" %}{% endif %}{% endfor %}{% endfor %}',
        f"takes over {RENDER_MAX_MS} ms to render"),
}
OVER_BUDGET_IDS = list(OVER_BUDGET)
ABOUT_TIME = ("a slow loop",)  # the cases about the time limit; the others must not meet it


@pytest.fixture(autouse=True)
def time_limit_out_of_the_way(request, monkeypatch):
    """A busy machine must not turn "the loops run too often" into "it took too long": only
    the tests about the time limit keep it."""
    if not any(case in request.node.name for case in ABOUT_TIME):
        monkeypatch.setattr(template_engine, "RENDER_MAX_MS", 60_000)


def render_body(body: str, **context):
    template = Template(title="Hi", body=body)
    return render(template, message_context(customer=SAMPLE_CUSTOMER, **context))


@pytest.mark.parametrize("case", OVER_BUDGET_IDS)
def test_a_render_over_the_budget_stops_with_the_reason(case):
    body, reason = OVER_BUDGET[case]

    with pytest.raises(RenderOverBudget) as refused:
        render_body(body)

    assert f"the body {reason}" in str(refused.value) or f"the body's {reason}" in str(
        refused.value)


def test_the_budget_names_the_field_that_went_over():
    template = Template(title="Hi", body="Welcome", data={"screen": '{{ "x"|ljust:"99999" }}'})

    with pytest.raises(RenderOverBudget, match="the 'screen' data value asks ljust"):
        render(template, message_context(customer=SAMPLE_CUSTOMER))


def test_a_source_over_the_size_is_refused_before_it_is_parsed():
    with pytest.raises(RenderOverBudget, match="the body is over 16 KB"):
        render_body("{{ customer.first_name }}" + "x" * FIELD_MAX_BYTES)


def test_templates_within_the_budget_render_as_before():
    event = {"items": ["pizza", "salad", "tiramisu"], "total": 23.5, "ratio": 3}

    rendered = render_body(
        "{{ customer.first_name|upper }}: {% for item in event.items %}{{ item|capfirst }}"
        "{% if not forloop.last %}, {% endif %}{% endfor %} for {{ event.total|floatformat:2 }}"
        ' ({{ event.items|join:" + " }}) {% widthratio event.ratio 4 100 %}%'
        ' [{{ "ok"|center:"6" }}] {% lorem 2 w %}',
        event_properties=event,
    )

    assert rendered.body == ("ALEXANDRA: Pizza, Salad, Tiramisu for 23.50 "
                             "(pizza + salad + tiramisu) 75% [  ok  ] lorem ipsum")


def test_loops_may_run_up_to_the_cap():
    assert 100 + 100 * 99 == RENDER_MAX_LOOPS

    rendered = render_body(f"{{% for i in {HUNDRED} %}}{{% for j in {items(99)} %}}"
                           "{% endfor %}{% endfor %}done")

    assert rendered.body == "done"


# --- At save -----------------------------------------------------------------------------------




@pytest.fixture
def brand() -> APIClient:
    _, key = api_key_create(name="Brand backend", scopes=[ApiKey.Scope.CAMPAIGNS])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.mark.parametrize("case", OVER_BUDGET_IDS)
def test_the_admin_refuses_a_template_over_the_budget_saying_why(admin_client, case):
    body, reason = OVER_BUDGET[case]

    response = admin_client.post(reverse("admin:notifications_template_add"),
                                 template_form(body=body))

    assert response.status_code == 200
    page = response.content.decode()
    assert "This template cannot be sent" in page
    assert reason.replace("'", "&#x27;") in page
    assert not Template.objects.exists()


@pytest.mark.parametrize("case", OVER_BUDGET_IDS)
def test_the_api_refuses_a_template_over_the_budget_with_a_400(brand, case):
    body, reason = OVER_BUDGET[case]

    response = brand.post(TEMPLATES, {"name": "Bomb", "title": "Hi", "body": body},
                          format="json")

    assert response.status_code == 400
    answer = response.json()
    assert (answer["code"], list(answer["errors"])) == ("invalid", ["template"])
    assert reason in answer["errors"]["template"][0]
    assert not Template.objects.exists()


def test_a_translation_over_the_budget_is_reported_under_its_locale(brand):
    response = brand.post(TEMPLATES, {"name": "Offer", "title": "Hi", "body": "20% off",
                                      "translations": [{"locale": "pt", "title": "Olá",
                                                        "body": nested_loops(3)}]},
                          format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["translations"] == [
        f"[pt] the body's loops run more than {RENDER_MAX_LOOPS:,} times"]


def test_a_translation_over_the_budget_is_an_error_on_its_admin_row(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"), template_form(**{
        "translations-TOTAL_FORMS": "2",
        "translations-0-locale": "pt", "translations-0-title": "Olá",
        "translations-0-body": "Bom dia",
        "translations-1-locale": "es", "translations-1-title": "Hola",
        "translations-1-body": '{{ "x"|rjust:"88888888" }}',
    }))

    assert "[es] the body asks rjust for over 16 KB" in response.content.decode()
    assert "[pt]" not in response.content.decode()
    assert not Template.objects.exists()


def test_the_translations_are_checked_within_one_time_limit(monkeypatch):
    monkeypatch.setattr(rendering, "CHECK_MAX_MS", 0)  # out of time once the template is done
    template = Template(title="Hi", body="Welcome")

    problems = template_check(template, texts=[("pt", "Olá", "Bom dia"), ("es", "Hola", "Hola")])

    assert problems == ["[pt] not checked: the template and its translations take over 0 ms "
                        "to render together"]


# --- At send -----------------------------------------------------------------------------------


@pytest.fixture
def outbox(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.save()
    yield locmem.outbox
    locmem.outbox.clear()


def person(external_id: str, **fields):
    customer, _ = customer_upsert(external_id=external_id, first_name=external_id.title(),
                                  **fields)
    device_register(customer=customer, kind="fcm", token=f"{external_id}-fcm",
                    platform="android")
    return customer




def test_a_delivery_over_the_budget_is_skipped_and_the_rest_of_its_batch_goes_out(outbox):
    # Stored directly, as a template saved before the budget existed would be: the loops run
    # 100^3 times for ana (100 interests), 8 times for ben (2 interests).
    template = Template.objects.create(
        name="Interests", title="For {{ customer.first_name }}",
        body="{% for a in customer.attributes.interests %}{% for b in customer.attributes"
             ".interests %}{% for c in customer.attributes.interests %}{% endfor %}{% endfor %}"
             "{% endfor %}Picked for you",
    )
    ana = person("ana", attributes={"interests": list(range(100))})
    ben = person("ben", attributes={"interests": ["food", "travel"]})

    send = run(send_create(template=template, customer_ids=[ana.pk, ben.pk]))

    assert DeliveryBatch.objects.filter(send=send).count() == 1
    skipped = Delivery.objects.get(send=send, customer=ana)
    assert (skipped.status, skipped.reason) == ("skipped", "render_error")
    assert skipped.error == f"the body's loops run more than {RENDER_MAX_LOOPS:,} times"
    assert [(m.token, m.title) for m in outbox] == [("ben-fcm", "For Ben")]
    assert send.status == "done"


def test_a_batch_stops_rendering_after_a_share_of_its_lease(settings, outbox):
    settings.DELIVERY_BATCH_LEASE_SECONDS = 0  # every render is past the share: one a pass
    template = Template.objects.create(name="Hello", title="Hi {{ customer.first_name }}",
                                       body="Welcome")
    people = [person(name) for name in ("ana", "ben", "eve")]
    send = send_create(template=template, customer_ids=[p.pk for p in people])
    send_fan_out(send_id=send.pk)
    batch = DeliveryBatch.objects.get(send=send)

    batch_send(batch_id=batch.pk)

    batch.refresh_from_db()
    assert len(outbox) == 1
    assert (batch.status, batch.not_before) == ("queued", None)  # due again at once
    assert Delivery.objects.filter(send=send, status="queued").count() == 2
    batch_send(batch_id=batch.pk)
    batch_send(batch_id=batch.pk)
    assert sorted(m.title for m in outbox) == ["Hi Ana", "Hi Ben", "Hi Eve"]
    batch.refresh_from_db()
    assert batch.status == "done"


# --- Text that cannot be stored -----------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("title", "Hi\x00", "Null characters are not allowed."),
    ("body", "Hi\x00there", "Null characters are not allowed."),
    ("data", '{"screen": "home\\u0000"}', "screen: Must not contain NUL characters"),
    ("data", '{"screen": "\\ud800"}', "screen: Must not contain NUL characters or lone"),
])
def test_the_admin_refuses_unstorable_text_on_its_field(admin_client, field, value, message):
    response = admin_client.post(reverse("admin:notifications_template_add"),
                                 template_form(**{field: value}))

    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors[field])
    assert not Template.objects.exists()


def test_the_admin_refuses_unstorable_text_in_a_translation(admin_client):
    response = admin_client.post(reverse("admin:notifications_template_add"), template_form(**{
        "translations-TOTAL_FORMS": "1", "translations-0-locale": "pt",
        "translations-0-title": "Olá", "translations-0-body": "Bom\x00dia",
    }))

    translation_form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert "Null characters are not allowed." in translation_form.errors["body"]
    assert not Template.objects.exists()


@pytest.mark.parametrize("document, field", [
    ({"title": "Hi\u0000"}, "title"),
    ({"body": "\ud800"}, "body"),
    ({"data": {"screen": "home\u0000"}}, "data.screen"),
    ({"translations": [{"locale": "pt", "title": "Olá", "body": "\udfff"}]},
     "translations[0].body"),
])
def test_the_api_refuses_unstorable_text_with_a_400_naming_the_field(brand, document, field):
    # Escaped as \u0000 and \ud800, as a client sends them: UTF-8 has no lone surrogates.
    body = json.dumps({"name": "Offer", "title": "Hi", "body": "20% off", **document})

    response = brand.post(TEMPLATES, body, content_type="application/json")

    assert response.status_code == 400
    answer = response.json()
    assert set(answer) == {"detail", "code", "errors"}
    assert list(answer["errors"]) == [field]
    assert "NUL characters or lone surrogates" in answer["errors"][field][0]
    assert not Template.objects.exists()


def test_the_service_refuses_unstorable_text_under_the_field():
    with pytest.raises(ValidationError) as refused:
        template_save(fields={"name": "Offer", "title": "Hi\ud800", "body": "ok",
                              "data": {"k": "\x00"}},
                      translations=[{"locale": "pt", "title": "Olá", "body": "a\x00"}])

    errors = refused.value.message_dict
    assert set(errors) == {"title", "data", "translations"}
    assert errors["translations"] == [
        "[pt] body: Must not contain NUL characters or lone surrogates."]
    assert not Template.objects.exists()
