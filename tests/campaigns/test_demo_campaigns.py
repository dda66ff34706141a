"""The demo campaigns: one per lifecycle stage, valid, launched, and doing what they say."""

import pytest

from audiences.models import Customer, Stage
from audiences.services import customer_upsert, event_track
from campaigns.demo import campaigns_seed
from campaigns.models import Campaign, Enrollment
from campaigns.services import launch_problems
from notifications.demo import templates_seed
from tests.campaigns import engine_kit

pytestmark = pytest.mark.django_db
eager = engine_kit.eager  # fixture


@pytest.fixture
def seeded():
    templates_seed()
    return campaigns_seed()


def test_there_is_a_campaign_for_every_stage_and_each_is_valid(seeded):
    assert {campaign.stage for campaign in seeded} == set(Stage.values)
    for campaign in seeded:
        assert campaign.steps.exists(), campaign.name
        assert launch_problems(campaign) == {}, campaign.name


def test_journeys_and_recurring_ones_run_and_the_broadcast_waits_for_staff(seeded):
    statuses = {c.name: c.status for c in Campaign.objects.all()}

    assert statuses.pop("Limited-time offer") == Campaign.Status.DRAFT
    assert set(statuses.values()) == {Campaign.Status.RUNNING}
    recurring = Campaign.objects.filter(kind=Campaign.Kind.RECURRING)
    assert all(campaign.beat_task and campaign.beat_task.enabled for campaign in recurring)


def test_seeding_again_adds_nothing(seeded):
    assert campaigns_seed() == []
    assert Campaign.objects.count() == len(seeded)


def test_the_limited_time_offer_expires_and_measures_its_lift(seeded):
    offer = Campaign.objects.get(name="Limited-time offer")

    assert offer.message_expires_at is not None
    assert offer.holdout_percent > 0
    assert (offer.goal_event_name, offer.goal_revenue_property) == ("purchase", "total")


def test_a_five_star_rating_enrolls_the_customer_in_the_referral_ask(
        seeded, eager, django_capture_on_commit_callbacks):
    customer, _ = customer_upsert(external_id="rater", first_name="Ana")
    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=customer, name="rating", properties={"score": 3})
    assert not Enrollment.objects.filter(customer=customer).exists()

    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=customer, name="rating", properties={"score": 5})

    enrollment = Enrollment.objects.get(customer=customer)
    assert enrollment.campaign.name == "Referral ask after a great rating"


def test_a_friend_signing_up_with_the_code_is_the_referral_goal(
        seeded, eager, django_capture_on_commit_callbacks):
    referrer, _ = customer_upsert(external_id="rater", first_name="Ana")
    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=referrer, name="rating", properties={"score": 5})

    with django_capture_on_commit_callbacks(execute=True):
        customer_upsert(external_id="friend", referred_by_code=referrer.referral_code)

    assert Customer.objects.get(external_id="friend").referred_by == referrer
    enrollment = Enrollment.objects.get(customer=referrer)
    assert enrollment.exit_reason == Enrollment.ExitReason.GOAL
    assert enrollment.conversion.event.name == "referral_signup"


def test_with_demo_journeys_off_every_demo_campaign_is_a_draft(settings):
    settings.DEMO_JOURNEYS = False
    templates_seed()

    created = campaigns_seed()

    assert created and {c.status for c in created} == {Campaign.Status.DRAFT}
