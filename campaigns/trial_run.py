"""A journey's test run (the module is not named test_* so that test runners leave it be): one
customer (or the owner of each test device) walked through the campaign's steps at once, every wait
fast-forwarded, with what happened at each step.

It follows the engine's rules (campaigns.engine.walk: the same successors, A/B variant and
random split slots, segment membership) but touches no enrollment, so a test run never counts
in reports, enrollment limits, holdouts or conversions. Its messages are real test sends
(source "test", exempt from the frequency cap and quiet hours, like *Send test*) to the
customer's devices, without the StepSend that would credit them to the campaign. Steps that
change the customer (set an attribute, move the stage) say what they would do and change
nothing."""

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import Customer
from audiences.selectors import segment_customers
from campaigns.engine.customers import customers_bucket_and_zone
from campaigns.engine.local_time import next_local_time
from campaigns.engine.walk import Steps, variant_for
from campaigns.models import Campaign, Step, percent_to_slots, variant_slot
from campaigns.selectors import step_summary
from notifications.models import Device
from notifications.rendering import (
    RenderError,
    last_event_names,
    last_events_for,
    message_context,
    pick_translation,
    render,
)
from notifications.services import send_create

MAX_TEST_HOPS = 100  # a loop (always through a wait, which validation demands) stops here
MAX_TEST_DEVICES = 50  # a run walks once per owner, inside the request: a team's phones, not more
Kind = Step.Kind


@dataclass
class RunStep:
    number: int  # 1-based, as the builder names steps; 0 for the run's own lines
    label: str
    what: str  # what happened, in a sentence
    status: str  # sent, skipped, branch, wait, exit, note, error
    send_id: int | None = None


@dataclass
class DeviceRun:
    """The test run for the test devices of one customer: what each device is, and the walk."""
    customer: Customer
    devices: list[Device]
    log: list[RunStep]


def campaign_test_run(*, campaign: Campaign, customer: Customer, events_happen: bool = False,
                      goal_reached: bool = False, user=None,
                      test_devices_only: bool = False) -> list[RunStep]:
    """Walk ``customer`` through ``campaign`` now. ``events_happen``: a wait for an event takes
    its "happened" way (else it times out). ``goal_reached``: the customer reaches the goal
    right after the first message, and leaves as a real enrollment would.
    ``test_devices_only``: messages go only to the customer's test devices. Raises
    ValidationError when there is nothing to run."""
    steps = Steps.load([campaign.pk])
    ordered = sorted(steps.by_id.values(), key=lambda s: (s.position, s.pk))
    if not ordered:
        raise ValidationError("This campaign has no steps to run yet.")
    numbers = {step.pk: n for n, step in enumerate(ordered, 1)}
    bucket, zone = customers_bucket_and_zone([customer.pk]).get(customer.pk, (0, "UTC"))
    run = _Run(campaign, customer, steps, numbers, bucket, zone, events_happen, user)
    run.goal_reached = goal_reached and bool(campaign.goal_event_name)
    run.test_devices_only = test_devices_only
    return run.walk(ordered[0].pk)


def campaign_test_run_devices(*, campaign: Campaign, events_happen: bool = False,
                              goal_reached: bool = False, user=None) -> list[DeviceRun]:
    """Run ``campaign`` for every test device: once per customer owning test devices (each
    message rendered for that customer, as it would be), sent only to their test devices.
    Raises ValidationError when no device is marked as a test device."""
    devices = list(Device.objects.filter(is_test=True).select_related("customer")
                   .order_by("customer_id", "pk")[:MAX_TEST_DEVICES + 1])
    if not devices:
        raise ValidationError("No device is marked as a test device: mark your team's devices "
                              "in Notifications → Devices (action “Mark as test devices”).")
    if len(devices) > MAX_TEST_DEVICES:
        raise ValidationError(f"More than {MAX_TEST_DEVICES} devices are marked as test devices; "
                              "unmark some, or run the test for one customer.")
    owners: dict[int, list[Device]] = {}
    for device in devices:
        owners.setdefault(device.customer_id, []).append(device)
    return [DeviceRun(owned[0].customer, owned, campaign_test_run(
                campaign=campaign, customer=owned[0].customer, events_happen=events_happen,
                goal_reached=goal_reached, user=user, test_devices_only=True))
            for owned in owners.values()]


class _Run:
    def __init__(self, campaign, customer, steps, numbers, bucket, zone, events_happen, user):
        self.campaign, self.customer, self.steps, self.numbers = campaign, customer, steps, numbers
        self.bucket, self.zone, self.events_happen, self.user = bucket, zone, events_happen, user
        self.now = timezone.now()  # the run's clock, moved on by every fast-forwarded wait
        self.log: list[RunStep] = []
        self.ended = False  # an exit step (or the goal) was reached
        self.goal_reached = False  # reach the goal after the first message
        self.test_devices_only = False  # send only to the customer's test devices

    def walk(self, step_id: int | None) -> list[RunStep]:
        for _hop in range(MAX_TEST_HOPS):
            if self.ended:
                break
            if step_id is None:
                self._note("End: the journey is complete.", "exit")
                break
            step = self.steps.by_id[step_id]
            step_id = getattr(self, f"_{step.kind}")(step)
        else:
            self._note(f"Stopped after {MAX_TEST_HOPS} steps (the journey loops).", "error")
        if self.campaign.goal_event_name and not self.goal_reached:
            self._note(f"Goal “{self.campaign.goal_event_name}”: a real enrollment leaves as "
                       "soon as the customer does it; a test run does not wait for it.", "note")
        return self.log

    def _say(self, step: Step, what: str, status: str, send_id: int | None = None) -> None:
        label = step.name or step.get_kind_display()
        self.log.append(RunStep(self.numbers[step.pk], label, what, status, send_id))

    def _note(self, what: str, status: str) -> None:
        self.log.append(RunStep(0, "", what, status))

    def _next(self, step: Step) -> int | None:
        return self.steps.successor(step)

    # --- one method per step kind: say what happened, return the next step's id ------------

    def _wait(self, step: Step) -> int | None:
        self.now += step.duration or timedelta(0)
        self._say(step, f"{step_summary(step)}: fast-forwarded.", "wait")
        return self._next(step)

    def _wait_until(self, step: Step) -> int | None:
        self.now = next_local_time(self.now, self.zone, step.local_time, step.weekdays)
        self._say(step, f"{step_summary(step)}: fast-forwarded to "
                        f"{timezone.localtime(self.now):%Y-%m-%d %H:%M %Z}.", "wait")
        return self._next(step)

    def _wait_event(self, step: Step) -> int | None:
        if self.events_happen:
            self._say(step, f"“{step.event_name}” happened (as chosen for the run): the "
                            "“happened” way.", "branch")
            return self._next(step)
        self.now += step.duration or timedelta(0)
        self._say(step, f"No “{step.event_name}” within the timeout (fast-forwarded): the "
                        "“timed out” way" + ("." if step.else_step_id else ", which exits."),
                  "branch")
        return step.else_step_id

    def _split_segment(self, step: Step) -> int | None:
        try:
            member = bool(step.segment_id) and segment_customers(step.segment).filter(
                pk=self.customer.pk).exists()
        except ValidationError as error:
            self._say(step, f"The segment's rules are invalid ({' '.join(error.messages)}): "
                            "the “no” way, as the engine does.", "error")
            return step.else_step_id
        answer = "is" if member else "is not"
        self._say(step, f"The customer {answer} in “{step.segment}”: the "
                        f"“{'yes' if member else 'no'}” way.", "branch")
        return self._next(step) if member else step.else_step_id

    def _split_random(self, step: Step) -> int | None:
        chosen = variant_slot(self.bucket, step.pk) < percent_to_slots(step.percent)
        self._say(step, f"Random split of {step.percent} %: the customer falls in the "
                        f"{'chosen' if chosen else 'other'} part (always the same for them).",
                  "branch")
        return self._next(step) if chosen else step.else_step_id

    def _set_attribute(self, step: Step) -> int | None:
        self._say(step, f"Would set attribute “{step.attribute_key}” to "
                        f"{step.attribute_value!r} (a test run changes nothing).", "note")
        return self._next(step)

    def _set_stage(self, step: Step) -> int | None:
        self._say(step, f"Would move the customer to the {step.stage} stage (a test run "
                        "changes nothing).", "note")
        return self._next(step)

    def _exit(self, step: Step) -> None:
        self._say(step, "Exit step: the journey ends here.", "exit")
        self.ended = True

    def _send(self, step: Step) -> int | None:
        variant = variant_for(self.steps.variants[step.pk], step.pk, self.bucket)
        template = variant.template if variant else step.template
        which = f" (A/B variant {variant.name})" if variant else ""
        if template is None:
            self._say(step, "Skipped: the step has no template.", "skipped")
            return self._next(step)
        try:
            rendered = self._render(step, template)
        except RenderError as error:
            self._say(step, f"Skipped: “{template}”{which} cannot render: {error}", "skipped")
            return self._next(step)
        send = send_create(template=template, customer_ids=[self.customer.pk], cap_exempt=True,
                           respect_quiet_hours=False, source="test", created_by=self.user,
                           test_devices_only=self.test_devices_only)
        self._say(step, f"Sent “{rendered.title}” ({rendered.body}){which} as a test "
                        f"{self._reach()}", "sent", send.pk)
        if self.goal_reached:
            self._note(f"Goal “{self.campaign.goal_event_name}” reached (as chosen for the "
                       "run): the customer leaves here, and a real enrollment would record a "
                       "conversion credited to this message.", "goal")
            self.ended = True
        return self._next(step)

    def _render(self, step: Step, template):
        last = last_events_for([self.customer.pk], last_event_names(template)).get(
            self.customer.pk)
        context = message_context(customer=self.customer, last_events=last, campaign={
            "source": f"campaign:{self.campaign.pk}/step:{step.pk}"})
        return render(template, context, text=pick_translation(template, self.customer.locale))

    def _reach(self) -> str:
        """Where the test send will go, or why it will be skipped."""
        if self.customer.push_opt_out:
            return "(but the customer opted out of push: it will be skipped)."
        devices = (Device.objects.filter(customer=self.customer, is_active=True)
                   .exclude(permission=Device.Permission.DENIED))
        if self.test_devices_only:
            names = ", ".join(str(device) for device in devices.filter(is_test=True))
            return (f"to {names}." if names else
                    "(but the customer has no active test device: it will be skipped).")
        devices = devices.count()
        if not devices:
            return "(but the customer has no active device: it will be skipped)."
        return f"to {devices} device{'s' if devices != 1 else ''}."
