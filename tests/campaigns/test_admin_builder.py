"""The campaign builder in the admin: pages per kind, the steps formset and its validation,
status actions, message preview, test sends, the flow diagram and progress."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse

from audiences.models import Segment
from campaigns.models import Campaign, Enrollment, Step, StepSend, Variant
from notifications.models import Delivery, Send, Template
from tests.campaigns.admin_kit import campaign_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    """A logged-in superuser without a password: hashing one costs a second per test."""
    user = django_user_model.objects.create(username="marketer", is_staff=True,
                                            is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def segment():
    return Segment.objects.create(name="Everyone", rules={"all": []})


@pytest.fixture
def template():
    return Template.objects.create(
        name="Welcome", title="Hi {{ customer.first_name|default:'there' }}",
        body="Your city: {{ customer.attributes.city|default:'unknown' }}",
    )


@pytest.fixture
def ana(customer_factory):
    return customer_factory("ana-1", first_name="Ana", attributes={"city": "Porto"})




def step_rows(*rows: dict, initial: int = 0) -> dict:
    """Formset data for the step inline; each row maps field names to values."""
    blank = {"id": "", "position": "", "kind": "", "name": "", "next_step": "", "else_step": "",
             "template": "", "duration": "", "local_time": "", "event_name": "",
             "event_filter": "{}", "segment": "", "percent": "", "attribute_key": "",
             "attribute_value": "null", "stage": ""}
    data = {"steps-TOTAL_FORMS": str(len(rows)), "steps-INITIAL_FORMS": str(initial)}
    for index, row in enumerate(rows):
        for name, value in {**blank, **row}.items():
            if isinstance(value, list):
                data[f"steps-{index}-{name}"] = [str(v) for v in value]
            else:
                data[f"steps-{index}-{name}"] = value
    return data


def make_journey(template, **fields) -> Campaign:
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Journey"), kind=Campaign.Kind.JOURNEY,
        trigger=Campaign.Trigger.EVENT, trigger_event_name="signed_up", **fields,
    )
    Step.objects.create(campaign=campaign, position=1, kind=Step.Kind.WAIT,
                        duration=timedelta(days=1))
    Step.objects.create(campaign=campaign, position=2, kind=Step.Kind.SEND, template=template,
                        name="Say hello")
    Step.objects.create(campaign=campaign, position=3, kind=Step.Kind.EXIT)
    return campaign


def change_url(campaign: Campaign) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def action(client, campaign: Campaign, name: str):
    return client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, name]),
                       follow=True)


# --- Pages ------------------------------------------------------------------------------------


def test_the_add_page_offers_every_fieldset_and_the_steps(admin_client):
    response = admin_client.get(reverse("admin:campaigns_campaign_add"), {"kind": "broadcast"})

    page = response.content.decode()
    assert response.status_code == 200
    for heading in ("Audience", "Schedule", "Entry", "Goal", "Delivery controls"):
        assert f">{heading}<" in page
    assert 'id="steps-group"' in page
    assert "campaigns/builder.js" in page


@pytest.mark.parametrize("kind", ["broadcast", "recurring", "journey"])
def test_the_change_page_of_each_kind_shows_the_builder(admin_client, segment, template, kind):
    campaign = make_journey(template, name=f"A {kind}")
    Campaign.objects.filter(pk=campaign.pk).update(kind=kind, segment=segment, crontab="0 10 * * 1")

    response = admin_client.get(change_url(campaign))

    page = response.content.decode()
    assert response.status_code == 200
    for panel in ("jh-status", "jh-flow", "jh-preview", "jh-progress"):
        assert f'id="{panel}"' in page
    assert "jh-audience-size" in page


def test_the_list_shows_kind_status_and_enrolled_count(admin_client, template, ana):
    campaign = make_journey(template)
    Enrollment.objects.create(campaign=campaign, customer=ana, step=campaign.first_step())

    response = admin_client.get(reverse("admin:campaigns_campaign_changelist"))

    page = response.content.decode()
    assert "Journey (triggered per customer)" in page
    assert re.search(r'class="field-enrolled">1<', page)


def test_the_audience_size_counts_the_chosen_segment(admin_client, segment, ana,
                                                     customer_factory):
    customer_factory("bo-2")
    url = reverse("admin:campaigns_campaign_audience_size")

    counted = admin_client.get(url, {"kind": "broadcast", "segment": segment.pk}).json()
    by_event = admin_client.get(url, {"kind": "journey", "trigger": "event"}).json()
    bad = admin_client.get(url, {"kind": "broadcast", "segment": "x"})

    assert counted == {"size": 2, "text": "2 customers"}
    assert by_event["size"] is None and "triggers" in by_event["text"]
    unknown = admin_client.get(url, {"kind": "broadcast", "segment": "999999"})

    assert bad.status_code == 400
    assert unknown.status_code == 400 and "No segment" in unknown.json()["error"]


# --- Building and validating steps ------------------------------------------------------------


def test_a_journey_is_built_from_the_add_page(admin_client, template):
    data = campaign_form(**step_rows(
        {"position": "1", "kind": "wait", "duration": "2 days"},
        {"position": "2", "kind": "send", "template": str(template.pk), "name": "Hello"},
        {"position": "", "kind": "exit"},
    ))

    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(name="Welcome journey")
    steps = list(campaign.steps.order_by("position"))
    assert [(s.position, s.kind) for s in steps] == [(1, "wait"), (2, "send"), (3, "exit")]
    assert steps[0].duration == timedelta(days=2)
    assert campaign.status == Campaign.Status.DRAFT


def test_a_wait_for_an_event_without_a_timeout_is_an_error_naming_the_step(admin_client):
    data = campaign_form(**step_rows(
        {"position": "1", "kind": "wait_event", "event_name": "purchase",
         "name": "Wait for purchase"},
    ))

    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Step 1 &#x27;Wait for purchase&#x27;: a wait for an event needs a timeout." in page
    assert not Campaign.objects.exists()


def test_a_send_without_a_template_is_an_error_naming_the_step(admin_client):
    data = campaign_form(**step_rows({"position": "1", "kind": "send"}))

    page = admin_client.post(reverse("admin:campaigns_campaign_add"), data).content.decode()

    assert "Step 1 (Send a message): a send needs a template" in page


def test_a_bad_duration_is_a_field_error(admin_client):
    data = campaign_form(**step_rows({"position": "1", "kind": "wait", "duration": "soon"}))

    page = admin_client.post(reverse("admin:campaigns_campaign_add"), data).content.decode()

    assert "Enter a valid duration." in page or "Write a duration like" in page
    assert not Campaign.objects.exists()


def test_links_offer_only_this_campaigns_steps(admin_client, template):
    mine = make_journey(template, name="Mine")
    other = make_journey(template, name="Other")

    page = admin_client.get(change_url(mine)).content.decode()

    select = page.split('name="steps-0-next_step"')[1].split("</select>")[0]
    for step in mine.steps.all():
        assert f'value="{step.pk}"' in select
    for step in other.steps.all():
        assert f'value="{step.pk}"' not in select


def test_removing_a_step_of_a_running_journey_moves_its_customers_on(admin_client, template, ana):
    campaign = make_journey(template)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    wait, send, exit_step = campaign.steps.order_by("position")
    enrollment = Enrollment.objects.create(campaign=campaign, customer=ana, step=send)
    rows = [{"id": str(s.pk), "position": str(s.position), "kind": s.kind,
             "duration": "1d" if s.kind == "wait" else "",
             "template": str(template.pk) if s.kind == "send" else ""}
            for s in (wait, send, exit_step)]
    rows[1]["DELETE"] = "on"
    data = campaign_form(name=campaign.name, **step_rows(*rows, initial=3))
    del data["kind"]  # read-only once launched

    response = admin_client.post(change_url(campaign), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert not Step.objects.filter(pk=send.pk).exists()
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.ACTIVE
    assert enrollment.step_id == exit_step.pk


def test_a_link_to_a_step_being_deleted_is_an_error(admin_client, template):
    campaign = make_journey(template)
    wait, send, exit_step = campaign.steps.order_by("position")
    rows = [{"id": str(wait.pk), "position": "1", "kind": "wait", "duration": "1d",
             "next_step": str(exit_step.pk)},
            {"id": str(send.pk), "position": "2", "kind": "send", "template": str(template.pk)},
            {"id": str(exit_step.pk), "position": "3", "kind": "exit", "DELETE": "on"}]

    response = admin_client.post(change_url(campaign),
                                 campaign_form(name=campaign.name, **step_rows(*rows, initial=3)))

    assert response.status_code == 200
    assert "is being deleted; link somewhere else." in response.content.decode()
    assert Step.objects.filter(pk=exit_step.pk).exists()


# --- Status actions ---------------------------------------------------------------------------


def test_launch_pause_resume_and_archive_change_the_status(admin_client, template):
    campaign = make_journey(template)

    for name, status in [("launch", "running"), ("pause", "paused"), ("resume", "running"),
                         ("archive", "archived")]:
        response = action(admin_client, campaign, name)
        campaign.refresh_from_db()
        assert campaign.status == status, response.content.decode()[:2000]


def test_only_the_actions_valid_for_the_status_are_offered(admin_client, template):
    campaign = make_journey(template)
    draft_page = admin_client.get(change_url(campaign)).content.decode()
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)
    running_page = admin_client.get(change_url(campaign)).content.decode()

    assert "jh-action-launch" in draft_page and "jh-action-resume" not in draft_page
    assert "jh-action-pause" in running_page and "jh-action-launch" not in running_page


def test_an_invalid_transition_shows_the_reason(admin_client, template):
    campaign = make_journey(template)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.RUNNING)

    response = action(admin_client, campaign, "resume")

    assert "A running campaign cannot become running" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


def test_launching_a_journey_with_broken_steps_is_refused_with_the_problem(admin_client):
    campaign = Campaign.objects.create(name="Empty", kind="journey", trigger="event",
                                       trigger_event_name="signed_up")

    response = action(admin_client, campaign, "launch")

    assert "Add at least one step before launching." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_broadcast_with_a_later_send_time_is_scheduled(admin_client, segment, template):
    from django.utils import timezone

    campaign = make_journey(template)
    Campaign.objects.filter(pk=campaign.pk).update(
        kind="broadcast", segment=segment, send_at=timezone.now() + timedelta(days=1))
    campaign.refresh_from_db()

    page = admin_client.get(change_url(campaign)).content.decode()
    response = action(admin_client, campaign, "launch")

    assert "Schedule for" in page
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert "is scheduled for" in response.content.decode()


def test_duplicate_opens_a_draft_copy_with_the_steps(admin_client, template):
    campaign = make_journey(template)

    response = action(admin_client, campaign, "duplicate")

    copy = Campaign.objects.get(name="Copy of Journey")
    assert response.redirect_chain[-1][0] == change_url(copy)
    assert copy.steps.count() == 3 and copy.status == Campaign.Status.DRAFT


def test_list_actions_report_done_and_refused(admin_client, template):
    running = make_journey(template, name="Running")
    draft = make_journey(template, name="Draft")
    Campaign.objects.filter(pk=running.pk).update(status=Campaign.Status.RUNNING)

    response = admin_client.post(reverse("admin:campaigns_campaign_changelist"), {
        "action": "pause_selected", "_selected_action": [running.pk, draft.pk],
    }, follow=True)

    page = response.content.decode()
    running.refresh_from_db()
    assert running.status == Campaign.Status.PAUSED
    assert "is now paused" in page and "A draft campaign cannot become paused" in page


# --- Preview, test sends, diagram, progress ---------------------------------------------------


def test_the_preview_renders_each_message_for_the_customer(admin_client, template, ana):
    campaign = make_journey(template)

    page = admin_client.get(change_url(campaign), {"preview_customer": "ana-1"}).content.decode()

    assert "Hi Ana" in page and "Your city: Porto" in page
    assert "Send test to ana-1" in page


def test_the_preview_shows_variants_and_render_errors(admin_client, template, ana):
    campaign = make_journey(template)
    broken = Template.objects.create(name="Broken", title="{{ customer.attributes.none }}",
                                     body="{{ customer.attributes.none }}")
    send_step = campaign.steps.get(kind="send")
    Variant.objects.create(step=send_step, name="A", template=template, weight=50)
    Variant.objects.create(step=send_step, name="B", template=broken, weight=50)

    page = admin_client.get(change_url(campaign), {"preview_customer": f"#{ana.pk}"})
    page = page.content.decode()

    assert "variant A" in page and "variant B" in page and "Hi Ana" in page
    assert "Cannot render: the message rendered empty" in page


def test_an_unknown_customer_is_reported_in_the_preview(admin_client, template):
    campaign = make_journey(template)

    page = admin_client.get(change_url(campaign), {"preview_customer": "nobody"})

    assert "No customer with external id &#x27;nobody&#x27;." in page.content.decode()


def test_send_test_creates_a_send_to_the_customer(admin_client, template, ana):
    campaign = make_journey(template)

    response = admin_client.post(
        reverse("admin:campaigns_campaign_send_test", args=[campaign.pk]),
        {"customer": "ana-1", "template": template.pk}, follow=True,
    )

    send = Send.objects.get()
    assert send.template == template and send.customer_ids == [ana.pk]
    assert send.source == "test"
    assert "queued for ana-1" in response.content.decode()


def test_send_test_refuses_a_template_the_campaign_does_not_use(admin_client, template, ana):
    campaign = make_journey(template)
    other = Template.objects.create(name="Other", title="x", body="y")

    response = admin_client.post(
        reverse("admin:campaigns_campaign_send_test", args=[campaign.pk]),
        {"customer": "ana-1", "template": other.pk}, follow=True,
    )

    assert not Send.objects.exists()
    assert "not one of this campaign" in response.content.decode()


def test_the_diagram_draws_every_step_and_the_branch_labels(admin_client, template):
    campaign = make_journey(template)
    wait = campaign.steps.get(kind="wait")
    Step.objects.filter(pk=wait.pk).update(kind="wait_event", event_name="purchase",
                                           name="Wait for purchase")

    page = admin_client.get(change_url(campaign)).content.decode()

    svg = page.split('<svg class="jh-flow"')[1].split("</svg>")[0]
    for step in campaign.steps.all():
        assert f'data-step="{step.pk}"' in svg
    assert "Wait for purchase" in svg and "Say hello" in svg
    assert ">happened<" in svg and ">timed out<" in svg
    assert "Event: signed_up" in svg


def test_a_running_broadcast_shows_sent_over_total(admin_client, segment, template, ana,
                                                   customer_factory):
    campaign = make_journey(template)
    Campaign.objects.filter(pk=campaign.pk).update(kind="broadcast", segment=segment,
                                                   status=Campaign.Status.RUNNING)
    send = Send.objects.create(template=template, customer_ids=[ana.pk])
    StepSend.objects.create(step=campaign.steps.get(kind="send"), campaign=campaign, send=send)
    bo = customer_factory("bo-2")
    Delivery.objects.create(send=send, customer=ana, status=Delivery.Status.SENT)
    Delivery.objects.create(send=send, customer=bo, status=Delivery.Status.QUEUED)

    page = admin_client.get(change_url(campaign)).content.decode()

    assert re.search(r'class="jh-sent">1</strong> sent /\s*<strong class="jh-total">2<', page)
    assert f'href="/analytics/reports/campaigns/{campaign.pk}/"' in page


def test_the_global_control_group_is_on_the_delivery_settings_page(admin_client):
    response = admin_client.get(reverse("admin:notifications_deliverysettings_changelist"))

    assert response.status_code == 302
    assert "control_group_percent" in admin_client.get(response.url).content.decode()


def test_the_records_lists_render(admin_client, template, ana):
    campaign = make_journey(template)
    Enrollment.objects.create(campaign=campaign, customer=ana, step=campaign.first_step())

    for name in ("enrollment", "stepsend", "conversion"):
        response = admin_client.get(reverse(f"admin:campaigns_{name}_changelist"))
        assert response.status_code == 200


def test_a_steps_page_edits_its_variants_and_checks_weights(admin_client, template):
    campaign = make_journey(template)
    step = campaign.steps.get(kind="send")
    url = reverse("admin:campaigns_step_change", args=[step.pk])
    data = {"position": "2", "kind": "send", "name": "Say hello", "template": str(template.pk),
            "next_step": "", "else_step": "", "duration": "", "local_time": "",
            "event_name": "", "event_filter": "{}", "segment": "", "percent": "",
            "attribute_key": "", "attribute_value": "null", "stage": "",
            "variants-TOTAL_FORMS": "2", "variants-INITIAL_FORMS": "0",
            "variants-0-name": "A", "variants-0-template": str(template.pk),
            "variants-0-weight": "0", "variants-1-name": "B",
            "variants-1-template": str(template.pk), "variants-1-weight": "0"}

    refused = admin_client.post(url, data)
    data["variants-1-weight"] = "30"
    saved = admin_client.post(url, data)

    assert "weights add up to 0" in refused.content.decode()
    assert "Step 2 &#x27;Say hello&#x27;" in refused.content.decode()
    assert saved.status_code == 302 and saved.url == change_url(campaign)
    assert sorted(step.variants.values_list("name", "weight")) == [("A", 0), ("B", 30)]


def test_an_archived_campaigns_steps_are_shown_but_not_editable(admin_client, template):
    campaign = make_journey(template)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ARCHIVED)

    page = admin_client.get(change_url(campaign)).content.decode()

    assert 'name="steps-0-kind"' not in page
    assert "Say hello" in page
    assert "jh-action-launch" not in page and "jh-action-duplicate" in page
    assert admin_client.post(change_url(campaign), campaign_form()).status_code == 403


def test_a_send_step_may_drop_its_template_for_variants(admin_client, template):
    campaign = make_journey(template)
    step = campaign.steps.get(kind="send")
    url = reverse("admin:campaigns_step_change", args=[step.pk])
    data = {"position": "2", "kind": "send", "name": "Say hello", "template": "",
            "next_step": "", "else_step": "", "duration": "", "local_time": "",
            "event_name": "", "event_filter": "{}", "segment": "", "percent": "",
            "attribute_key": "", "attribute_value": "null", "stage": "",
            "variants-TOTAL_FORMS": "0", "variants-INITIAL_FORMS": "0"}

    refused = admin_client.post(url, data)
    data.update({"variants-TOTAL_FORMS": "1", "variants-0-name": "A",
                 "variants-0-template": str(template.pk), "variants-0-weight": "100"})
    saved = admin_client.post(url, data)

    assert "a send needs a template (or A/B variants)" in refused.content.decode()
    assert saved.status_code == 302
    step.refresh_from_db()
    assert step.template is None and step.variants.count() == 1


def test_the_preview_takes_the_id_the_customer_lookup_fills_in(admin_client, template, ana):
    campaign = make_journey(template)

    page = admin_client.get(change_url(campaign), {"preview_customer": str(ana.pk)})

    assert "Hi Ana" in page.content.decode()
    assert 'id="lookup_id_preview_customer"' in page.content.decode()
