"""A customer's timeline on their admin page: events, stage moves, enrollments and every
message (sent, skipped with its reason, received, opened), newest first, a page at a time."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from audiences.models import Event, StageTransition
from audiences.services import customer_upsert
from audiences.timeline import Cursor, customer_timeline
from campaigns.models import Campaign, Enrollment, StepSend
from notifications.models import Delivery, Send, Template

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def ana():
    """Signed up (0), moved to engagement (1), entered a journey (2), got its message (3,
    opened), a second message skipped by the cap (4), then purchased (5)."""
    customer, _ = customer_upsert(external_id="ana")
    Event.objects.create(customer=customer, name="signed_up", occurred_at=at(0))
    StageTransition.objects.create(customer=customer, from_stage="awareness",
                                   to_stage="engagement", at=at(1), cause="signed_up")
    campaign = Campaign.objects.create(name="Welcome journey", kind="journey")
    step = campaign.steps.create(position=1, kind="send", name="Hello")
    Enrollment.objects.create(campaign=campaign, customer=customer, step=step, entered_at=at(2))
    template = Template.objects.create(name="Hello", title="Hi", body="Welcome")
    send = Send.objects.create(template=template, customer_ids=[customer.pk])
    StepSend.objects.create(step=step, campaign=campaign, send=send)
    Delivery.objects.create(send=send, customer=customer, kind="fcm", status="sent",
                            created_at=at(3), sent_at=at(3), opened_at=at(6))
    Delivery.objects.create(send=Send.objects.create(template=template, customer_ids=[]),
                            customer=customer, status="skipped", reason="frequency_capped",
                            created_at=at(4))
    Event.objects.create(customer=customer, name="purchase", occurred_at=at(5),
                         properties={"total": 30})
    return customer


def test_everything_newest_first(ana):
    items, older = customer_timeline(customer_id=ana.pk)

    assert [item.title for item in items] == [
        "Event: purchase", "Message “Hello”: skipped: Frequency capped",
        "Message “Hello”: opened", "Entered “Welcome journey”",
        "Stage: awareness → engagement", "Event: signed_up"]
    assert items[2].campaign == "Welcome journey" and items[1].campaign == ""
    assert items[0].detail == "total: 30"
    assert older is None


def test_pages_follow_each_other_without_gaps_or_repeats(ana):
    for minute in range(7, 20):  # more events at the same moment, to test the tie-break
        Event.objects.create(customer=ana, name="app_open", occurred_at=at(minute // 3 * 3))
    everything, _ = customer_timeline(customer_id=ana.pk, limit=100)

    seen, cursor = [], None
    while True:
        page, cursor = customer_timeline(customer_id=ana.pk, cursor=cursor, limit=4)
        seen += page
        if cursor is None:
            break
    assert [item.key for item in seen] == [item.key for item in everything]
    assert len(seen) == 6 + 13


def test_another_customers_history_is_not_shown(ana):
    ben, _ = customer_upsert(external_id="ben")
    Event.objects.create(customer=ben, name="signed_up", occurred_at=at(9))
    items, _ = customer_timeline(customer_id=ben.pk)
    assert [item.title for item in items] == ["Event: signed_up"]


def test_the_customer_page_shows_the_timeline_linked_to_campaigns(admin_client, ana):
    url = reverse("admin:audiences_customer_change", args=[ana.pk])
    page = admin_client.get(url).content.decode()

    timeline = page.split('id="timeline"')[1].split("</fieldset>")[0]
    assert timeline.index("Event: purchase") < timeline.index("Event: signed_up")
    campaign = Campaign.objects.get()
    assert reverse("admin:campaigns_campaign_change", args=[campaign.pk]) in timeline
    assert "skipped: Frequency capped" in timeline


def test_the_customer_page_pages_through_the_timeline(admin_client, ana, monkeypatch):
    monkeypatch.setattr("audiences.timeline.PAGE_SIZE", 4)
    url = reverse("admin:audiences_customer_change", args=[ana.pk])
    first = admin_client.get(url).content.decode()
    older = first.split('class="jh-timeline-older"')[0].rsplit('href="', 1)[1].split('"')[0]

    second = admin_client.get(url + older.replace("&amp;", "&").split("#")[0]).content.decode()

    assert "Event: signed_up" in second and "Event: purchase" not in second.split(
        'id="timeline"')[1]


def test_a_broken_page_link_says_so(admin_client, ana):
    url = reverse("admin:audiences_customer_change", args=[ana.pk])
    page = admin_client.get(url, {"timeline": "nonsense"}).content.decode()
    assert "That timeline page does not exist." in page
    with pytest.raises(Exception, match="does not exist"):
        Cursor.parse("2026-01-01T00:00:00+00:00|event|x")
