"""Every problem steps_problems reports, on unsaved drafts (as the admin formset and the API
build them) and on saved steps."""

from datetime import time, timedelta

import pytest

from campaigns.models import Campaign, Step, Variant
from campaigns.validation import StepDraft, draft_from_fields, steps_problems
from notifications.models import Template

K = Step.Kind


def draft(key, kind, **fields) -> StepDraft:
    """A valid step of ``kind`` unless ``fields`` say otherwise; position follows the key."""
    defaults = {
        K.SEND: {"has_template": True},
        K.WAIT: {"duration": timedelta(hours=1)},
        K.WAIT_UNTIL: {"local_time": time(10)},
        K.WAIT_EVENT: {"event_name": "purchase", "duration": timedelta(days=1)},
        K.SPLIT_SEGMENT: {"has_segment": True},
        K.SPLIT_RANDOM: {"percent": 50},
        K.SET_ATTRIBUTE: {"attribute_key": "vip"},
        K.SET_STAGE: {"stage": "retention"},
    }.get(kind, {})
    return StepDraft(key=key, position=key, kind=kind, **{**defaults, **fields})


def messages(problems: dict) -> list[str]:
    return [m for found in problems.values() for m in found]


def test_a_well_formed_journey_has_no_problems():
    steps = [draft(1, K.SEND), draft(2, K.WAIT_EVENT, else_key=4), draft(3, K.EXIT),
             draft(4, K.SPLIT_RANDOM, next_key=5, else_key=6), draft(5, K.SET_STAGE),
             draft(6, K.WAIT_UNTIL, weekdays=[0, 6], next_key=1)]

    assert steps_problems(steps) == {}


def test_the_message_names_the_step_by_number_and_name():
    steps = [draft(1, K.SEND), draft(2, K.WAIT), draft(3, K.WAIT_EVENT, name="Wait for purchase",
                                                        duration=None)]

    assert steps_problems(steps) == {
        3: ["Step 3 'Wait for purchase': a wait for an event needs a timeout."]}


def test_a_step_without_a_name_is_named_by_its_kind():
    problems = steps_problems([draft(1, K.SEND, has_template=False)])

    assert problems == {1: ["Step 1 (Send a message): a send needs a template (or A/B "
                            "variants)."]}


@pytest.mark.parametrize(("kind", "fields", "expected"), [
    (K.SEND, {"has_template": False}, "a send needs a template (or A/B variants)."),
    (K.SEND, {"has_template": False, "variant_weights": [0, 0]},
     "the A/B variants' weights add up to 0; give at least one a weight."),
    (K.WAIT, {"duration": None}, "a wait needs a duration."),
    (K.WAIT, {"duration": timedelta(0)}, "a wait needs a duration."),
    (K.WAIT_UNTIL, {"local_time": None}, "a wait until a local time needs the time."),
    (K.WAIT_UNTIL, {"weekdays": [1, 7]},
     "weekdays must be a list of numbers from 0 (Monday) to 6 (Sunday)."),
    (K.WAIT_UNTIL, {"weekdays": "mon"},
     "weekdays must be a list of numbers from 0 (Monday) to 6 (Sunday)."),
    (K.WAIT_EVENT, {"event_name": ""}, "a wait for an event needs the event's name."),
    (K.WAIT_EVENT, {"duration": None}, "a wait for an event needs a timeout."),
    (K.SPLIT_SEGMENT, {"has_segment": False}, "a segment split needs a segment."),
    (K.SPLIT_RANDOM, {"percent": None}, "a random split needs a percent between 0 and 100."),
    (K.SPLIT_RANDOM, {"percent": 101}, "a random split needs a percent between 0 and 100."),
    (K.SPLIT_RANDOM, {"percent": "half"}, "a random split needs a percent between 0 and 100."),
    (K.SET_ATTRIBUTE, {"attribute_key": " "}, "setting an attribute needs the attribute's key."),
    (K.SET_STAGE, {"stage": ""}, "moving the stage needs the stage to move to."),
    ("", {}, "choose what this step does."),
])
def test_each_kind_reports_what_it_lacks(kind, fields, expected):
    problems = steps_problems([draft(1, kind, name="X", **fields)])

    assert problems == {1: [f"Step 1 'X': {expected}"]}


def test_variants_with_some_weight_make_a_send_without_a_template_valid():
    assert steps_problems([draft(1, K.SEND, has_template=False, variant_weights=[0, 10])]) == {}


def test_a_step_no_path_reaches_is_unreachable():
    # 1 exits, so 2 can only be reached by a link, and nothing links to it.
    steps = [draft(1, K.SEND, next_key=3), draft(2, K.SEND, name="Orphan"), draft(3, K.EXIT)]

    assert steps_problems(steps) == {
        2: ["Step 2 'Orphan': no path from the first step leads here."]}


def test_an_else_branch_makes_its_target_reachable():
    steps = [draft(1, K.WAIT_EVENT, next_key=3, else_key=2), draft(2, K.SEND), draft(3, K.EXIT)]

    assert steps_problems(steps) == {}


def test_a_loop_without_a_wait_is_reported_on_every_step_of_it():
    steps = [draft(1, K.SEND, name="A"), draft(2, K.SET_ATTRIBUTE, name="B", next_key=1)]

    assert messages(steps_problems(steps)) == [
        "Step 1 'A': it is on a loop with no wait; add a wait step to the loop.",
        "Step 2 'B': it is on a loop with no wait; add a wait step to the loop.",
    ]


def test_a_step_linking_to_itself_without_waiting_is_a_loop():
    problems = steps_problems([draft(1, K.SPLIT_RANDOM, next_key=1, name="Spin")])

    assert problems == {1: ["Step 1 'Spin': it is on a loop with no wait; add a wait step to "
                            "the loop."]}


def test_a_loop_through_a_wait_is_fine():
    steps = [draft(1, K.SEND), draft(2, K.WAIT), draft(3, K.SEND, next_key=1)]

    assert steps_problems(steps) == {}


def test_a_link_to_a_step_outside_the_list_is_reported():
    problems = steps_problems([draft(1, K.WAIT_EVENT, name="W", next_key=99, else_key=98)])

    assert problems == {1: [
        "Step 1 'W': its 'next' link points at a step that is not in this campaign.",
        "Step 1 'W': its 'else' link points at a step that is not in this campaign.",
    ]}


def test_only_branches_have_an_else_link():
    steps = [draft(1, K.SEND, name="S", else_key=2), draft(2, K.EXIT)]

    assert steps_problems(steps) == {
        1: ["Step 1 'S': only a wait for an event or a split has an 'else' link."]}


def test_drafts_from_form_data_link_by_form_index():
    """As the admin formset builds them: keys are form indexes, links point at other forms."""
    forms = [
        {"kind": K.WAIT_EVENT, "name": "Wait for purchase", "event_name": "purchase",
         "duration": None},
        {"kind": K.SEND, "template": object()},
    ]
    drafts = [draft_from_fields(key=f"form-{i}", position=i, fields=data,
                                else_key="form-1" if i == 0 else None)
              for i, data in enumerate(forms)]

    assert steps_problems(drafts) == {
        "form-0": ["Step 1 'Wait for purchase': a wait for an event needs a timeout."]}


@pytest.fixture
def saved(db):
    campaign = Campaign.objects.create(name="Saved", kind=Campaign.Kind.JOURNEY)
    template = Template.objects.create(name="T", title="t", body="b")
    return campaign, template


def test_saved_steps_are_checked_the_same(saved):
    campaign, template = saved
    send = Step.objects.create(campaign=campaign, position=1, kind=K.SEND, template=template)
    wait = Step.objects.create(campaign=campaign, position=2, kind=K.WAIT_EVENT, name="Wait",
                               event_name="purchase")
    Step.objects.create(campaign=campaign, position=3, kind=K.SEND, name="Loop", template=template,
                        next_step=send)

    problems = steps_problems(list(campaign.steps.all()))

    assert problems == {wait.pk: ["Step 2 'Wait': a wait for an event needs a timeout."]}


def test_saved_variants_with_zero_weights_are_reported(saved):
    campaign, template = saved
    send = Step.objects.create(campaign=campaign, position=1, kind=K.SEND, name="AB")
    Variant.objects.create(step=send, name="A", template=template, weight=0)
    Variant.objects.create(step=send, name="B", template=template, weight=0)

    assert steps_problems(list(campaign.steps.all())) == {
        send.pk: ["Step 1 'AB': the A/B variants' weights add up to 0; give at least one a "
                  "weight."]}


def test_a_saved_link_to_another_campaigns_step_is_reported(saved):
    campaign, template = saved
    other = Campaign.objects.create(name="Other", kind=Campaign.Kind.JOURNEY)
    elsewhere = Step.objects.create(campaign=other, position=1, kind=K.EXIT)
    step = Step.objects.create(campaign=campaign, position=1, kind=K.SEND, name="S",
                               template=template, next_step=elsewhere)

    assert steps_problems(list(campaign.steps.all())) == {
        step.pk: ["Step 1 'S': its 'next' link points at a step that is not in this campaign."]}


def test_saved_unreachable_and_loop_problems(saved):
    campaign, template = saved
    first = Step.objects.create(campaign=campaign, position=1, kind=K.SET_STAGE, stage="retention")
    first.next_step = first
    first.save()
    orphan = Step.objects.create(campaign=campaign, position=2, kind=K.SEND, template=template)

    problems = steps_problems(list(campaign.steps.all()))

    assert problems == {
        first.pk: ["Step 1 (Move to a lifecycle stage): it is on a loop with no wait; add a "
                   "wait step to the loop."],
        orphan.pk: ["Step 2 (Send a message): no path from the first step leads here."],
    }
