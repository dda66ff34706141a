"""The referral program: each customer's link (configurable), link opens reported by the app,
a sign-up with a code moving the referrer to advocacy, and the referred customer's first
conversion recorded on the referrer with its revenue."""

import pytest
from rest_framework.test import APIClient

from audiences.models import Customer, Event, StageTransition
from audiences.services import customer_token_mint, customer_upsert, event_track
from notifications.rendering import customer_context

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    from journeyhub.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def app_client(customer) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {customer_token_mint(customer=customer)}")
    return client


def test_each_customer_has_a_referral_link_usable_in_templates(ana, settings):
    assert ana.referral_link == f"https://example.com/invite?ref={ana.referral_code}"
    settings.REFERRAL_LINK = "https://brand.example/r/{code}/welcome"

    assert ana.referral_link == f"https://brand.example/r/{ana.referral_code}/welcome"
    assert customer_context(ana)["referral_link"] == ana.referral_link


def test_the_app_reports_a_referral_link_opened_once_per_opener(ana, ben):
    url = "/api/v1/me/referrals/opened/"

    first = app_client(ben).post(url, {"code": ana.referral_code.lower()}, format="json")
    again = app_client(ben).post(url, {"code": ana.referral_code}, format="json")

    assert first.status_code == 201 and first.json() == {"status": "created", "referrer": "ana-1"}
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    opened = Event.objects.get(customer=ana, name="referral_link_opened")
    assert opened.properties == {"opened_by": "ben-2"}


def test_an_unknown_or_own_code_is_a_400_on_code(ana):
    url = "/api/v1/me/referrals/opened/"

    unknown = app_client(ana).post(url, {"code": "NOPE999999"}, format="json")
    own = app_client(ana).post(url, {"code": ana.referral_code}, format="json")
    missing = app_client(ana).post(url, {}, format="json")

    for response in (unknown, own, missing):
        assert response.status_code == 400
        assert "code" in str(response.json())
    assert not Event.objects.filter(name="referral_link_opened").exists()


def test_a_sign_up_with_a_code_moves_the_referrer_to_advocacy(brand, ana):
    assert ana.stage == "awareness"

    brand.put("/api/v1/customers/new-1/", {"referred_by_code": ana.referral_code}, format="json")

    ana.refresh_from_db()
    assert ana.stage == "advocacy"
    move = StageTransition.objects.get(customer=ana, to_stage="advocacy")
    assert move.cause == "Referral sign-up: referral_signup event"
    assert move.event.name == "referral_signup"


def test_the_referred_customers_first_conversion_is_recorded_on_the_referrer(
        ana, eager, django_capture_on_commit_callbacks):
    friend, _ = customer_upsert(external_id="friend-1", referred_by_code=ana.referral_code)

    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=friend, name="purchase", properties={"total": 42.5})
    with django_capture_on_commit_callbacks(execute=True):
        Customer.objects.filter(pk=friend.pk).update(stage="retention")
        event_track(customer=friend, name="purchase", properties={"total": 99})  # again

    assert Customer.objects.get(pk=friend.pk).stage == "conversion"
    converted = Event.objects.filter(customer=ana, name="referral_converted")
    assert [e.properties for e in converted] == [{"referred_customer": "friend-1",
                                                  "revenue": 42.5}]


def test_a_customer_nobody_referred_records_nothing(ana, eager,
                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=ana, name="purchase", properties={"total": 10})

    assert not Event.objects.filter(name="referral_converted").exists()
