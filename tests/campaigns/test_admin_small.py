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
