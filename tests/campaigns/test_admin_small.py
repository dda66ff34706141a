"""The builder's small helps: a new campaign starts by choosing its kind; known event names
are offered in triggers, waits and goals."""

import pytest
from django.urls import reverse

from audiences.services import customer_upsert, event_track
from tests.campaigns import test_admin_builder as builder_tests

pytestmark = pytest.mark.django_db
admin_client = builder_tests.admin_client  # a fixture
ADD = reverse("admin:campaigns_campaign_add")


def test_a_new_campaign_starts_by_choosing_its_kind(admin_client):
    page = admin_client.get(ADD).content.decode()

    assert 'id="jh-kinds"' in page and 'id="campaign_form"' not in page
    for kind in ("broadcast", "recurring", "journey"):
        assert f'href="?kind={kind}"' in page


def test_the_chosen_kind_opens_the_form_with_it(admin_client):
    page = admin_client.get(ADD, {"kind": "journey"}).content.decode()

    assert 'id="campaign_form"' in page
    assert '<option value="journey" selected>' in page


def test_known_event_names_are_offered_in_triggers_waits_and_goals(admin_client):
    customer, _ = customer_upsert(external_id="ana")
    event_track(customer=customer, name="cart_added")

    page = admin_client.get(ADD, {"kind": "journey"}).content.decode()

    names = page.split('<datalist id="jh-event-names">')[1].split("</datalist>")[0]
    assert '<option value="cart_added">' in names
    for field in ('name="trigger_event_name"', 'name="goal_event_name"',
                  'name="steps-__prefix__-event_name"'):
        assert page.split(field)[1].split(">")[0].count('list="jh-event-names"') == 1, field


def test_durations_are_entered_as_days_hours_and_minutes(admin_client):
    from campaigns.models import Campaign
    from tests.campaigns.admin_kit import campaign_form
    from tests.campaigns.test_admin_builder import step_rows

    data = campaign_form(**step_rows({"kind": "wait"}, {"kind": "exit"}))
    del data["goal_window"], data["steps-0-duration"]
    data.update({"goal_window_0": "2", "goal_window_1": "", "goal_window_2": "",
                 "steps-0-duration_0": "1", "steps-0-duration_1": "2",
                 "steps-0-duration_2": "30"})

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get()
    assert campaign.goal_window.days == 2
    assert campaign.steps.get(kind="wait").duration.total_seconds() == 86400 + 2 * 3600 + 1800
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    html = page.content.decode()
    assert 'name="steps-0-duration_0" value="1"' in html
    assert 'name="steps-0-duration_2" value="30"' in html


def test_a_duration_box_that_is_not_a_number_is_an_error(admin_client):
    from tests.campaigns.admin_kit import campaign_form
    from tests.campaigns.test_admin_builder import step_rows

    data = campaign_form(**step_rows({"kind": "wait"}, {"kind": "exit"}))
    del data["steps-0-duration"]
    data.update({"steps-0-duration_0": "soon", "steps-0-duration_1": "",
                 "steps-0-duration_2": ""})

    page = admin_client.post(ADD, data).content.decode()

    assert "Enter a valid duration." in page
