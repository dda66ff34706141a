"""The live flow of the builder: the unsaved form drawn as a diagram with each step's problems,
links between steps that are not saved yet, and saving such links."""

import json

import pytest
from django.urls import reverse

from campaigns.models import Campaign, Step
from tests.campaigns import test_admin_builder as builder_tests
from tests.campaigns.admin_kit import campaign_form
from tests.campaigns.test_admin_builder import make_journey, step_rows

pytestmark = pytest.mark.django_db
PREVIEW = reverse("admin:campaigns_campaign_flow_preview")
admin_client, template = builder_tests.admin_client, builder_tests.template  # fixtures


def branching_rows(template) -> list[dict]:
    """Wait for a purchase (an hour): happened -> thanks (row 2), timed out -> nudge (row 1)."""
    return [
        {"kind": "wait_event", "event_name": "purchase", "duration": "1 hour",
         "next_step": "new-2", "else_step": "new-1"},
        {"kind": "send", "template": str(template.pk), "name": "Nudge", "next_step": "new-3"},
        {"kind": "send", "template": str(template.pk), "name": "Thanks"},
        {"kind": "exit"},
    ]


def test_the_unsaved_form_is_drawn_with_links_between_new_steps(admin_client, template):
    data = campaign_form(**step_rows(*branching_rows(template)))

    answer = admin_client.post(PREVIEW, data).json()

    assert answer["problems"] == {} and answer["general"] == []
    assert [s["label"] for s in answer["steps"]] == [
        "Step 1 (Wait for an event (or time out))", "Step 2 'Nudge'", "Step 3 'Thanks'",
        "Step 4 (Exit)"]
    svg = answer["svg"]
    assert svg.startswith("<svg") and 'data-step="new-0"' in svg
    assert 'data-step="new-3"' in svg
    assert "happened" in svg and "timed out" in svg
    assert "Event: signed_up" in svg  # the entry, from the unsaved campaign fields
    assert not Campaign.objects.exists() and not Step.objects.exists()


def test_problems_show_at_their_step(admin_client, template):
    rows = branching_rows(template)
    rows[0]["duration"] = ""  # a wait for an event without a timeout
    rows[2]["template"] = ""  # a send without a message
    data = campaign_form(**step_rows(*rows))

    answer = admin_client.post(PREVIEW, data).json()

    assert answer["problems"]["new-0"] == [
        "Step 1 (Wait for an event (or time out)): a wait for an event needs a timeout."]
    assert answer["problems"]["new-2"] == [
        "Step 3 'Thanks': a send needs a template (or A/B variants)."]
    assert answer["svg"].count("jh-flow-problem-badge") == 2


def test_a_field_error_is_named_on_its_step(admin_client, template):
    rows = branching_rows(template)
    rows[1]["duration"] = "soon"
    answer = admin_client.post(PREVIEW, campaign_form(**step_rows(*rows))).json()

    assert answer["problems"]["new-1"] == [
        "Step 2 'Nudge': Duration: Enter a valid duration."]


def test_reordering_moves_the_step_in_the_diagram(admin_client, template):
    campaign = make_journey(template)
    wait, send, exit_step = campaign.steps.order_by("position")
    rows = [{"id": str(wait.pk), "position": "2", "kind": "wait", "duration": "1d"},
            {"id": str(send.pk), "position": "1", "kind": "send", "template": str(template.pk)},
            {"id": str(exit_step.pk), "position": "3", "kind": "exit"}]
    url = reverse("admin:campaigns_campaign_flow_preview", args=[campaign.pk])

    answer = admin_client.post(url, campaign_form(name=campaign.name,
                                                  **step_rows(*rows, initial=3))).json()

    assert [s["key"] for s in answer["steps"]] == [str(send.pk), str(wait.pk), str(exit_step.pk)]
    assert list(campaign.steps.order_by("position")) == [wait, send, exit_step]  # unsaved


def test_saving_links_between_new_steps(admin_client, template):
    data = campaign_form(**step_rows(*branching_rows(template)))

    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    steps = {s.name or s.kind: s for s in Campaign.objects.get().steps.all()}
    assert steps["wait_event"].next_step == steps["Thanks"]
    assert steps["wait_event"].else_step == steps["Nudge"]
    assert steps["Nudge"].next_step == steps["exit"]


def test_a_link_to_an_empty_new_row_is_an_error(admin_client, template):
    rows = branching_rows(template)[:2]
    rows[1]["next_step"] = "new-5"
    rows[0]["next_step"] = ""

    page = admin_client.post(reverse("admin:campaigns_campaign_add"),
                             campaign_form(**step_rows(*rows))).content.decode()

    assert "That new step is empty or being removed" in page
    assert not Campaign.objects.exists()


def test_a_link_to_another_campaigns_step_is_refused(admin_client, template):
    other = make_journey(template, name="Other")
    rows = branching_rows(template)
    rows[1]["next_step"] = str(other.steps.first().pk)

    answer = admin_client.post(PREVIEW, campaign_form(**step_rows(*rows))).json()

    assert any("Choose one of this campaign's steps." in message
               for message in answer["problems"]["new-1"])


def test_the_preview_needs_a_post_and_permission(client, admin_client, django_user_model):
    assert admin_client.get(PREVIEW).status_code == 405
    client.force_login(django_user_model.objects.create(username="nobody", is_staff=True))
    response = client.post(PREVIEW, campaign_form())
    assert response.status_code == 403
    assert json.loads(response.content)["error"]
