"""A journey's test run: one customer through the steps now, every wait fast-forwarded,
messages sent to their devices as tests, and nothing counted anywhere."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audiences.models import Segment
from campaigns.models import Campaign, Enrollment, Step, StepSend
from campaigns.trial_run import campaign_test_run, campaign_test_run_devices
from notifications.models import Delivery, Device, Send, Template
from notifications.services import send_fan_out
from tests.analytics.rollup_data import customer
from tests.campaigns import test_admin_builder as builder_tests

pytestmark = pytest.mark.django_db
admin_client = builder_tests.admin_client  # a fixture


@pytest.fixture
def journey():
    """Wait an hour; wait up to a day for a purchase: happened -> exit, timed out -> nudge."""
    campaign = Campaign.objects.create(name="Cart rescue", kind="journey", trigger="event",
                                       trigger_event_name="cart_added", goal_event_name="purchase")
    nudge_template = Template.objects.create(name="Nudge", title="Hi {{ customer.first_name }}",
                                             body="Your cart waits.")
    wait = Step.objects.create(campaign=campaign, position=1, kind="wait",
                               duration=timedelta(hours=1))
    bought = Step.objects.create(campaign=campaign, position=2, kind="wait_event",
                                 event_name="purchase", duration=timedelta(days=1))
    nudge = Step.objects.create(campaign=campaign, position=3, kind="send", name="Nudge",
                                template=nudge_template)
    done = Step.objects.create(campaign=campaign, position=4, kind="exit")
    bought.next_step, bought.else_step = done, nudge
    bought.save()
    assert wait.pk
    return campaign


@pytest.fixture
def ana():
    person = customer("ana", "fcm")
    person.first_name = "Ana"
    person.save()
    return person


def test_every_wait_is_fast_forwarded_and_the_message_sent_as_a_test(journey, ana):
    log = campaign_test_run(campaign=journey, customer=ana)

    assert [(line.number, line.status) for line in log] == [
        (1, "wait"), (2, "branch"), (3, "sent"), (4, "exit"), (0, "note")]
    assert "Wait 1 hour" in log[0].what and "fast-forwarded" in log[0].what
    assert "timed out" in log[1].what
    assert log[2].what == "Sent “Hi Ana” (Your cart waits.) as a test to 1 device."
    send = Send.objects.get(pk=log[2].send_id)
    assert send.source == "test" and send.cap_exempt and not send.respect_quiet_hours
    assert send.customer_ids == [ana.pk]
    # Never counted: no enrollment (so no holdout, no conversion), no StepSend (no report).
    assert not Enrollment.objects.exists() and not StepSend.objects.exists()


def test_an_awaited_event_can_be_made_to_happen(journey, ana):
    log = campaign_test_run(campaign=journey, customer=ana, events_happen=True)

    assert [line.status for line in log] == ["wait", "branch", "exit", "note"]
    assert "“happened” way" in log[1].what
    assert not Send.objects.exists()


def test_splits_take_the_customers_way_and_changes_are_only_said(ana):
    campaign = Campaign.objects.create(name="Split", kind="journey")
    lisbon = Segment.objects.create(name="Lisbon", key="lisbon", rules={
        "attribute": {"key": "city", "op": "eq", "value": "Lisbon"}})
    split = Step.objects.create(campaign=campaign, position=1, kind="split_segment",
                                segment=lisbon)
    Step.objects.create(campaign=campaign, position=2, kind="set_stage", stage="retention")
    split.else_step = Step.objects.create(campaign=campaign, position=3, kind="set_attribute",
                                          attribute_key="vip", attribute_value=True)
    split.save()

    log = campaign_test_run(campaign=campaign, customer=ana)

    assert "is not in “Lisbon”: the “no” way" in log[0].what
    assert log[1].what.startswith("Would set attribute “vip” to True")
    ana.refresh_from_db()
    assert "vip" not in ana.attributes and ana.stage != "retention"


def test_a_message_that_cannot_render_or_reach_is_said_so(ana):
    campaign = Campaign.objects.create(name="Broken", kind="journey")
    Step.objects.create(campaign=campaign, position=1, kind="send", template=Template.objects
                        .create(name="Bad", title="{{ customer.first_name|nosuchfilter }}",
                                body="x"))
    nobody = customer("nobody")

    log = campaign_test_run(campaign=campaign, customer=ana)
    assert log[0].status == "skipped" and "cannot render" in log[0].what

    Template.objects.filter(name="Bad").update(title="Hello")
    log = campaign_test_run(campaign=campaign, customer=nobody)
    assert "no active device: it will be skipped" in log[0].what


def test_a_campaign_without_steps_cannot_run(ana):
    with pytest.raises(ValidationError, match="no steps"):
        campaign_test_run(campaign=Campaign.objects.create(name="Empty"), customer=ana)


def test_the_builder_runs_a_test_and_shows_its_timeline(admin_client, journey, ana):
    url = reverse("admin:campaigns_campaign_test_run", args=[journey.pk])

    page = admin_client.post(url, {"customer": "ana", "events": "timeout"}).content.decode()

    log = page.split('id="jh-testrun-log"')[1].split("</ol>")[0]
    assert "1. Wait for a duration" in log and "3. Nudge" in log
    assert "Sent “Hi Ana”" in log and "send #" in log


def test_an_unknown_customer_is_a_message(admin_client, journey):
    url = reverse("admin:campaigns_campaign_test_run", args=[journey.pk])
    response = admin_client.post(url, {"customer": "ghost"}, follow=True)
    assert "No customer with external id &#x27;ghost&#x27;." in response.content.decode()


def test_the_goal_can_be_reached_after_the_first_message(journey, ana):
    log = campaign_test_run(campaign=journey, customer=ana, goal_reached=True)

    assert [line.status for line in log] == ["wait", "branch", "sent", "goal"]
    assert log[-1].what.startswith("Goal “purchase” reached")
    assert not Enrollment.objects.exists()


# --- A group of test devices ------------------------------------------------------------------


@pytest.fixture
def test_devices(ana):
    """Ana has a test phone and a personal browser; Ben a test phone that is switched off."""
    customer("ben", "apns")
    customer("ana", "webpush")  # not a test device
    Device.objects.filter(kind__in=["fcm", "apns"]).update(is_test=True)
    Device.objects.filter(kind="apns").update(is_active=False)
    return Device.objects.filter(is_test=True).order_by("pk")


def test_a_run_for_the_test_devices_sends_only_to_them(admin_client, journey, ana, test_devices):
    runs = campaign_test_run_devices(campaign=journey)

    assert [(run.customer.external_id, [d.kind for d in run.devices]) for run in runs] == [
        ("ana", ["fcm"]), ("ben", ["apns"])]
    ana_phone = test_devices.get(kind="fcm")
    assert runs[0].log[2].what == f"Sent “Hi Ana” (Your cart waits.) as a test to {ana_phone}."
    assert "no active test device: it will be skipped" in runs[1].log[2].what
    send = Send.objects.get(pk=runs[0].log[2].send_id)
    assert send.source == "test" and send.test_devices_only and send.cap_exempt
    page = admin_client.get(reverse("admin:notifications_send_change", args=[send.pk]))
    assert "Test devices only" in page.content.decode()

    send_fan_out(send_id=send.pk)  # only the test phone, not Ana's own browser
    assert list(Delivery.objects.filter(send=send).values_list("device__kind", "status")) == [
        ("fcm", "queued")]
    assert not Enrollment.objects.exists() and not StepSend.objects.exists()


def test_a_test_devices_run_needs_test_devices(journey, ana):
    with pytest.raises(ValidationError, match="No device is marked as a test device"):
        campaign_test_run_devices(campaign=journey)


def test_the_builder_runs_a_test_on_the_test_devices(admin_client, journey, ana, test_devices):
    url = reverse("admin:campaigns_campaign_test_run", args=[journey.pk])

    page = admin_client.post(url, {"run_for": "test_devices", "customer": ""}).content.decode()

    assert "on the test devices" in page
    ana_block, ben_block = page.split('class="jh-testrun-owner"')[1:]
    assert "receives each message sent below" in ana_block and "Sent “Hi Ana”" in ana_block
    assert "inactive, receives nothing" in ben_block and "send #" in ben_block


def test_devices_are_marked_and_unmarked_in_the_device_admin(admin_client, ana):
    url = reverse("admin:notifications_device_changelist")
    phone = Device.objects.get(customer=ana)

    response = admin_client.post(url, {"action": "mark_test", "_selected_action": [phone.pk]},
                                 follow=True)
    assert "Marked 1 device(s) as test devices" in response.content.decode()
    assert admin_client.get(url, {"is_test__exact": "1"}).context["cl"].result_count == 1
    admin_client.post(url, {"action": "unmark_test", "_selected_action": [phone.pk]})
    assert not Device.objects.filter(is_test=True).exists()
    change = admin_client.get(reverse("admin:notifications_device_change", args=[phone.pk]))
    assert 'name="is_test"' in change.content.decode()  # and each device's page has the box
