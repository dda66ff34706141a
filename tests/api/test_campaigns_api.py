"""Campaigns and templates over the API: journeys as code, for staff sessions and API keys with
the campaigns scope."""

import pytest
from django.contrib.auth.models import Permission, User
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from audiences.services import segment_create
from campaigns.models import Campaign, Enrollment, Step
from journeyhub.models import ApiKey
from notifications.models import Template

CAMPAIGNS = "/api/v1/campaigns/"
TEMPLATES = "/api/v1/templates/"


@pytest.fixture
def hello(db) -> Template:
    return Template.objects.create(name="Hello", title="Hi {{ customer.first_name }}",
                                   body="Welcome")


@pytest.fixture
def everyone(db):
    return segment_create(name="Everyone", rules={"all": []})


def journey_document(template: Template, **fields) -> dict:
    """An abandoned-cart journey: wait for a purchase up to a day; if none, a nudge."""
    return {
        "name": "Abandoned cart", "kind": "journey", "trigger": "event",
        "trigger_event_name": "cart_abandoned", "trigger_event_filter": {"category": "pizza"},
        "goal_event_name": "purchase", "goal_window": "P7D",
        "steps": [
            {"kind": "wait_event", "name": "Bought?", "event_name": "purchase",
             "duration": "P1D", "next_step": 3, "else_step": 2},
            {"kind": "send", "name": "Nudge", "template": template.pk, "next_step": 3},
            {"kind": "exit", "name": "Done"},
        ],
        **fields,
    }


# --- Journeys as code ------------------------------------------------------------------------


def test_a_whole_journey_is_created_in_one_request(brand, hello):
    response = brand.post(CAMPAIGNS, journey_document(hello), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert [(s["name"], s["next_step"], s["else_step"]) for s in body["steps"]] == [
        ("Bought?", 3, 2), ("Nudge", 3, None), ("Done", None, None)]
    campaign = Campaign.objects.get(pk=body["id"])
    bought, nudge, done = campaign.steps.all()
    assert (bought.next_step, bought.else_step, nudge.next_step) == (done, nudge, done)
    assert bought.duration.days == 1


def test_a_journey_reads_back_as_it_was_sent(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()

    read = brand.get(f"{CAMPAIGNS}{created['id']}/").json()

    assert read == created
    assert read["steps"][1]["template"] == hello.pk


def test_steps_that_cannot_run_are_a_400_naming_the_step(brand, hello):
    document = journey_document(hello)
    del document["steps"][0]["duration"]
    document["steps"][1]["template"] = None

    response = brand.post(CAMPAIGNS, document, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"steps": [
        "Step 1 'Bought?': a wait for an event needs a timeout.",
        "Step 2 'Nudge': a send needs a template (or A/B variants).",
    ]}
    assert not Campaign.objects.exists()


def test_field_errors_are_400s_with_the_field_named(brand, hello):
    document = journey_document(hello, kind="recurring", crontab="0 25 * * 1",
                                holdout_percent="120")
    document["steps"][1]["template"] = 999999

    response = brand.post(CAMPAIGNS, document, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"holdout_percent", "steps"}
    assert errors["steps"] == ['Step 2: template: Invalid pk "999999" - object does not exist.']


def test_model_rules_are_400s_too(brand, everyone, hello):
    response = brand.post(CAMPAIGNS, {"name": "Tips", "kind": "recurring",
                                      "crontab": "0 25 * * 1"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "segment": ["A broadcast or recurring campaign needs a segment to send to."],
        "crontab": ["The hour field '25' is invalid."],
    }


def test_quiet_hours_and_local_time_are_campaign_fields(brand, everyone, hello):
    document = {"name": "Morning", "kind": "broadcast", "segment": everyone.key,
                "quiet_hours_start": "22:00:00", "quiet_hours_end": "07:00:00",
                "local_send_time": "09:00:00", "local_time_passed": "skip",
                "steps": [{"kind": "send", "template": hello.pk}]}

    response = brand.post(CAMPAIGNS, document, format="json")

    assert response.status_code == 201, response.json()
    saved = Campaign.objects.get(name="Morning")
    assert (str(saved.quiet_hours_start), str(saved.local_send_time),
            saved.local_time_passed) == ("22:00:00", "09:00:00", "skip")


def test_a_half_quiet_window_or_a_journey_at_a_local_time_is_a_400(brand, hello):
    response = brand.post(CAMPAIGNS, journey_document(
        hello, quiet_hours_start="22:00:00", local_send_time="09:00:00"), format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"quiet_hours_end", "local_send_time"}


def test_an_enum_400_lists_the_valid_choices(brand, hello):
    response = brand.post(CAMPAIGNS, journey_document(hello, reentry="every time"),
                          format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["reentry"] == [
        '"every time" is not a valid choice. Choose one of: once, always, cooldown.']
    document = journey_document(hello)
    document["steps"][0]["kind"] = "sleep"
    errors = brand.post(CAMPAIGNS, document, format="json").json()["errors"]
    assert errors["steps"][0].startswith('Step 1: kind: "sleep" is not a valid choice. Choose '
                                         "one of: send, wait, wait_until,")


def test_unknown_fields_are_refused(brand, hello):
    document = journey_document(hello, colour="blue")
    document["steps"][0]["colour"] = "red"

    response = brand.post(CAMPAIGNS, document, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["colour"] == ["Unknown field."]


def test_replacing_a_running_journey_moves_customers_off_removed_steps(brand, hello,
                                                                       customer_factory):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()
    assert brand.post(f"{CAMPAIGNS}{created['id']}/launch/").status_code == 200
    campaign = Campaign.objects.get(pk=created["id"])
    bought = campaign.first_step()
    enrollment = Enrollment.objects.create(campaign=campaign, step=bought,
                                           customer=customer_factory("ana"))
    document = journey_document(hello)
    document["steps"] = [dict(created["steps"][1], next_step=None),
                         dict(created["steps"][2])]

    response = brand.put(f"{CAMPAIGNS}{created['id']}/", document, format="json")

    assert response.status_code == 200, response.json()
    assert [s["id"] for s in response.json()["steps"]] == [s["id"] for s in created["steps"][1:]]
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.step_id) == ("active", created["steps"][2]["id"])
    assert not Step.objects.filter(pk=bought.pk).exists()


def test_patch_changes_only_the_fields_sent(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()

    response = brand.patch(f"{CAMPAIGNS}{created['id']}/", {"description": "Pizza carts"},
                           format="json")

    assert response.status_code == 200
    assert response.json()["description"] == "Pizza carts"
    assert response.json()["steps"] == created["steps"]


def test_the_list_filters_by_status(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()

    drafts = brand.get(CAMPAIGNS, {"status": "draft"}).json()
    running = brand.get(CAMPAIGNS, {"status": "running"}).json()
    bad = brand.get(CAMPAIGNS, {"status": "sleeping"})

    assert [c["id"] for c in drafts["results"]] == [created["id"]]
    assert running["results"] == []
    assert bad.status_code == 400


# --- Actions ---------------------------------------------------------------------------------


def test_actions_move_the_campaign_through_its_statuses(brand, everyone, hello):
    created = brand.post(CAMPAIGNS, {
        "name": "Weekly travel tips", "kind": "recurring", "segment": everyone.key,
        "crontab": "0 10 * * 1", "crontab_time_zone": "Europe/Lisbon",
        "steps": [{"kind": "send", "template": hello.pk}],
    }, format="json").json()
    url = f"{CAMPAIGNS}{created['id']}/"

    launched = brand.post(f"{url}launch/").json()
    assert launched["status"] == "running"
    assert launched["beat_task"] == f"Campaign #{created['id']}: Weekly travel tips"
    assert brand.post(f"{url}pause/").json()["status"] == "paused"
    assert PeriodicTask.objects.get(name=launched["beat_task"]).enabled is False
    assert brand.post(f"{url}resume/").json()["status"] == "running"
    copy = brand.post(f"{url}duplicate/")
    assert copy.status_code == 201
    assert (copy.json()["name"], copy.json()["status"]) == ("Copy of Weekly travel tips", "draft")
    assert brand.post(f"{url}archive/").json()["status"] == "archived"
    assert brand.delete(url).status_code == 204
    assert not PeriodicTask.objects.filter(name=launched["beat_task"]).exists()


def test_an_invalid_transition_is_a_400_saying_why(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()

    response = brand.post(f"{CAMPAIGNS}{created['id']}/pause/")

    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"] == [
        "A draft campaign cannot become paused: it can only become archived or running or "
        "scheduled."]


def test_deleting_a_running_campaign_is_refused(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()
    brand.post(f"{CAMPAIGNS}{created['id']}/launch/")

    response = brand.delete(f"{CAMPAIGNS}{created['id']}/")

    assert response.status_code == 400
    assert Campaign.objects.filter(pk=created["id"]).exists()


def test_an_action_takes_no_body(brand, hello):
    created = brand.post(CAMPAIGNS, journey_document(hello), format="json").json()

    response = brand.post(f"{CAMPAIGNS}{created['id']}/launch/", {"now": True}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"now": ["Unknown field."]}


@pytest.mark.parametrize("campaign_id", ["0", "x", "99999999999999999999", "12345"])
def test_unknown_campaigns_are_json_404s(brand, campaign_id):
    response = brand.get(f"{CAMPAIGNS}{campaign_id}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- Who may -----------------------------------------------------------------------------------


def test_a_key_without_the_campaigns_scope_is_403(key_factory):
    _, key = key_factory(scopes=[ApiKey.Scope.CUSTOMERS_READ])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    for url in (CAMPAIGNS, TEMPLATES):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["detail"] == "This API key lacks the scope 'campaigns'."


@pytest.mark.django_db
def test_no_credentials_is_401():
    assert APIClient().get(CAMPAIGNS).status_code == 401


def test_a_staff_session_with_permissions_may_manage_campaigns(db, hello):
    staff = User.objects.create_user("marketer", password="x", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="campaigns", codename__endswith="_campaign"))
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)

    assert client.get(CAMPAIGNS).status_code == 200
    # A session write must carry the CSRF token, as the admin's own pages do.
    assert client.post(CAMPAIGNS, journey_document(hello), format="json").status_code == 403
    client.get("/login/")
    client.cookies.load({"csrftoken": "a" * 32})
    created = client.post(CAMPAIGNS, journey_document(hello), format="json",
                          HTTP_X_CSRFTOKEN="a" * 32)
    assert created.status_code == 201
    assert Campaign.objects.get().created_by == staff


def test_staff_without_the_model_permission_or_customers_are_403(db, customer_factory):
    staff = User.objects.create_user("viewer", password="x", is_staff=True)
    customer_user = User.objects.create_user("someone", password="x")
    for user in (staff, customer_user):
        client = APIClient()
        client.force_login(user)
        assert client.get(CAMPAIGNS).status_code == 403


# --- Templates -------------------------------------------------------------------------------


def test_templates_are_created_read_and_replaced(brand):
    created = brand.post(TEMPLATES, {
        "name": "Order update", "title": "{{ customer.first_name }}, your order",
        "body": "From {{ event.restaurant }}", "data": {"screen": "orders"},
        "translations": [{"locale": "pt", "title": "A sua encomenda", "body": "Já vai"}],
    }, format="json")
    assert created.status_code == 201, created.json()
    url = f"{TEMPLATES}{created.json()['id']}/"

    replaced = brand.put(url, {"name": "Order update", "title": "Your order",
                               "body": "On its way", "translations": []}, format="json")

    assert replaced.status_code == 200
    assert brand.get(url).json()["translations"] == []
    assert brand.get(TEMPLATES).json()["count"] == 1


def test_a_template_that_cannot_render_is_a_400_with_the_reason(brand):
    response = brand.post(TEMPLATES, {"name": "Broken", "title": "{% if %}",
                                      "body": "x"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["template"]
    assert not Template.objects.exists()


def test_a_broken_translation_is_reported_under_translations(brand, hello):
    response = brand.patch(f"{TEMPLATES}{hello.pk}/", {"translations": [
        {"locale": "pt", "title": "{% if %}", "body": "x"}]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["translations"][0].startswith("[pt]")


def test_a_template_a_campaign_uses_cannot_be_deleted(brand, hello):
    brand.post(CAMPAIGNS, journey_document(hello), format="json")

    response = brand.delete(f"{TEMPLATES}{hello.pk}/")

    assert response.status_code == 409
    assert Template.objects.filter(pk=hello.pk).exists()
    other = Template.objects.create(name="Unused", title="t", body="b")
    assert brand.delete(f"{TEMPLATES}{other.pk}/").status_code == 204


def test_the_schema_documents_the_campaign_endpoints_with_both_ways_in(client, db):
    schema = client.get("/api/schema/?format=json").json()

    create = schema["paths"]["/api/v1/campaigns/"]["post"]
    assert {"201", "400", "401", "403"} <= set(create["responses"])
    assert create["security"][0] == {"ApiKey": []}
    assert "/api/v1/campaigns/{campaign_id}/launch/" in schema["paths"]
    assert "delete" in schema["paths"]["/api/v1/templates/{template_id}/"]
