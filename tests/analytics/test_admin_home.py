"""The admin's home page: running campaigns with today's numbers, what needs attention and the
journey map, each for those allowed to see it; and /admin/ leads there."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from analytics.models import RollupState
from analytics.roles import ANALYST, MARKETER
from analytics.rollups import rollups_rebuild, rollups_refresh
from campaigns.models import Campaign
from notifications.models import ProviderOutage, Send
from tests.analytics.rollup_data import campaign_send, customer, deliver, template

pytestmark = pytest.mark.django_db


def member(name: str, *groups: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def today_world():
    """A running journey whose step sent to two customers today (one opened), and failed a
    third because its template did not render; a paused send; a provider outage."""
    today = timezone.now().date()
    campaign = Campaign.objects.create(name="Cart rescue", kind="journey", status="running",
                                       launched_at=timezone.now())
    step = campaign.steps.create(position=1, kind="send", name="Nudge",
                                 template=template("Nudge"))
    send = campaign_send(step, None, "cart")
    deliver(send, customer("t1", "fcm"), "fcm", day=today, opened=True)
    deliver(send, customer("t2", "fcm"), "fcm", day=today)
    deliver(send, customer("t3", "fcm"), "fcm", status="failed", reason="render_error",
            day=today)
    Campaign.objects.create(name="Old draft", kind="broadcast")
    Send.objects.create(template=template("Paused one"), customer_ids=[], status="paused")
    ProviderOutage.objects.create(kind="fcm", retry_at=timezone.now() + timedelta(minutes=5),
                                  failures=3, error="503 from FCM")
    rollups_rebuild(since=today, until=today)
    return campaign


def test_the_home_page_shows_running_campaigns_with_todays_numbers(client, today_world):
    rollups_refresh()
    client.force_login(member("mia", MARKETER))
    page = client.get(reverse("admin:index")).content.decode()

    running = page.split('id="jh-home-running"')[1].split("</section>")[0]
    assert "Cart rescue" in running and "Old draft" not in running
    assert "<td class=\"jh-num\">2</td><td class=\"jh-num\">1</td>" in running  # sent, opened
    refreshed = RollupState.objects.get(pk=1).refreshed_at
    assert f"computed at {refreshed:%H:%M:%S} UTC" in running


def test_the_home_page_says_what_needs_attention(client, today_world):
    client.force_login(User.objects.create_superuser("root"))
    page = client.get(reverse("admin:index")).content.decode()

    attention = page.split('id="jh-home-attention"')[1].split("</section>")[0]
    assert "Paused one" in attention  # the paused send
    assert "503 from FCM" in attention  # the provider outage
    assert "Template failed to render: 1" in attention  # today's failures by reason
    assert "Cart rescue</a>, step" in attention  # the failing step, linked to its campaign


def test_the_home_page_draws_the_journey_map(client):
    client.force_login(member("ann", ANALYST))
    page = client.get(reverse("admin:index")).content.decode()

    journey = page.split('id="jh-home-journey"')[1].split("</section>")[0]
    assert "<svg" in journey and "Awareness" in journey


def test_staff_without_permissions_see_no_panels(client, today_world):
    client.force_login(member("vic"))
    page = client.get(reverse("admin:index")).content.decode()

    assert "jh-home-running" not in page and "jh-home-journey" not in page
    assert "Cart rescue" not in page


def test_nothing_to_attend_to_says_so(client):
    client.force_login(User.objects.create_superuser("root"))
    page = client.get(reverse("admin:index")).content.decode()
    assert "Nothing needs attention" in page
    assert "No campaign is running" in page


def test_logging_in_lands_on_the_home_page(client):
    User.objects.create_superuser("root", password="pw-123456")
    response = client.post(reverse("admin:login"), {"username": "root", "password": "pw-123456",
                                                    "next": reverse("admin:index")}, follow=True)
    assert response.status_code == 200
    assert 'id="jh-home"' in response.content.decode()


def test_a_marketer_sees_what_needs_attention_without_send_links(client, today_world):
    client.force_login(member("mia", MARKETER))
    page = client.get(reverse("admin:index")).content.decode()

    attention = page.split('id="jh-home-attention"')[1].split("</section>")[0]
    assert "Paused one" in attention and "Cart rescue</a>, step" in attention
    assert "/notifications/send/" not in attention  # marketers may not open sends
