"""The builder panels of a campaign's admin page: status and the actions valid for it, the
audience size, progress, the flow diagram, and a message preview for a chosen customer.

Everything here reads through campaigns.selectors and notifications.rendering, and every change
goes through campaigns.services; the admin views in campaigns.admin only wire them to URLs."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import Customer, Event
from audiences.selectors import segment_customers
from campaigns import services
from campaigns.flow import flow_svg
from campaigns.models import Campaign, Step
from campaigns.selectors import campaign_flow, campaign_progress
from notifications.models import Template
from notifications.rendering import (
    Rendered,
    RenderError,
    last_event_names,
    last_events_for,
    message_context,
    pick_translation,
    render,
)

Status = Campaign.Status


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    service: str  # a function of campaigns.services taking campaign= and user=
    statuses: frozenset
    confirm: str = ""


ACTIONS = {
    action.name: action
    for action in (
        Action("launch", "Launch", "campaign_launch", frozenset({Status.DRAFT})),
        Action("pause", "Pause", "campaign_pause", frozenset({Status.SCHEDULED, Status.RUNNING})),
        Action("resume", "Resume", "campaign_resume", frozenset({Status.PAUSED})),
        Action("archive", "Archive", "campaign_archive",
               frozenset(set(Status) - {Status.ARCHIVED}),
               confirm="Archive this campaign? Enrolled customers leave it and it stops."),
        Action("duplicate", "Duplicate", "campaign_duplicate", frozenset(Status)),
    )
}


def actions_for(campaign: Campaign) -> list[dict]:
    """The buttons valid for the campaign's status; "Launch" reads "Schedule" for a broadcast
    whose send time is still ahead."""
    buttons = []
    for action in ACTIONS.values():
        if campaign.status not in action.statuses:
            continue
        label = action.label
        if action.name == "launch" and _scheduled_later(campaign):
            label = f"Schedule for {timezone.localtime(campaign.send_at):%Y-%m-%d %H:%M}"
        buttons.append({"name": action.name, "label": label, "confirm": action.confirm})
    return buttons


def _scheduled_later(campaign: Campaign) -> bool:
    return (campaign.kind == Campaign.Kind.BROADCAST and campaign.send_at is not None
            and campaign.send_at > timezone.now())


def action_run(*, campaign: Campaign, name: str, user) -> tuple[Campaign, str]:
    """Run one action through its service: (the campaign it leaves, what to tell the user).
    Raises ValidationError when the action is unknown or the service refuses it."""
    action = ACTIONS.get(name)
    if action is None:
        raise ValidationError(f"Unknown action {name!r}.")
    result = getattr(services, action.service)(campaign=campaign, user=user)
    if name == "duplicate":
        return result, f"Created “{result}”, a draft copy of “{campaign}”."
    result.refresh_from_db()
    if name == "launch" and result.status == Status.SCHEDULED:
        when = timezone.localtime(result.send_at)
        return result, f"“{result}” is scheduled for {when:%Y-%m-%d %H:%M %Z}."
    return result, f"“{result}” is now {result.get_status_display().lower()}."


def flow_diagram(campaign: Campaign):
    return flow_svg(campaign_flow(campaign), entry=entry_label(campaign))


def entry_label(campaign: Campaign) -> str:
    """What starts the flow, in a few words, for the top of the diagram."""
    if campaign.kind == Campaign.Kind.BROADCAST:
        when = f"at {timezone.localtime(campaign.send_at):%Y-%m-%d %H:%M}" \
            if campaign.send_at else "at launch"
        return f"Broadcast to {campaign.segment or 'a segment'} {when}"
    if campaign.kind == Campaign.Kind.RECURRING:
        return f"Every {campaign.crontab or '…'} ({campaign.segment or 'a segment'})"
    trigger = {
        Campaign.Trigger.EVENT: f"Event: {campaign.trigger_event_name or '…'}",
        Campaign.Trigger.STAGE: f"Enters stage: {campaign.trigger_stage or '…'}",
        Campaign.Trigger.SEGMENT: f"Enters segment: {campaign.trigger_segment or '…'}",
    }
    return trigger.get(campaign.trigger, "Entry trigger not set")


def progress_summary(campaign: Campaign) -> dict | None:
    """Sent / total of the campaign's messages and its enrollments, once it has launched."""
    if campaign.status == Status.DRAFT:
        return None
    progress = campaign_progress(campaign)
    total = progress.deliveries_total
    return {
        "total": total, "sent": progress.sent, "failed": progress.failed,
        "skipped": progress.skipped, "queued": progress.queued,
        "percent": round(100 * progress.sent / total) if total else 0,
        "active": progress.active, "exited": progress.exited,
        "conversions": progress.conversions, "revenue": progress.revenue,
    }


def customer_find(text: str) -> Customer:
    """A customer by external id, or by id: "#123", or "123" when no external id is "123"
    (the customer lookup popup fills in the id)."""
    text = (text or "").strip()
    if not text:
        raise ValidationError("Give a customer's external id (or #id).")
    if text.startswith("#") and text[1:].isdigit():
        customer = Customer.objects.filter(pk=int(text[1:])).first()
    else:
        customer = Customer.objects.filter(external_id=text).first()
        if customer is None and text.isdigit():
            customer = Customer.objects.filter(pk=int(text)).first()
    if customer is None:
        raise ValidationError(f"No customer with external id {text!r}.")
    return customer


@dataclass
class Preview:
    step: Step
    variant: str  # "" when the step has no A/B variants
    template: Template | None
    rendered: Rendered | None = None
    error: str = ""


def campaign_templates(campaign: Campaign) -> list[tuple[Step, str, Template | None]]:
    """(step, variant name, template) for every message the campaign can send, in step order."""
    rows = []
    steps = campaign.steps.filter(kind=Step.Kind.SEND).select_related("template")
    for step in steps.prefetch_related("variants__template__translations",
                                       "template__translations"):
        variants = list(step.variants.all())
        if variants:
            rows.extend((step, variant.name, variant.template) for variant in variants)
        else:
            rows.append((step, "", step.template))
    return rows


def previews_for(campaign: Campaign, customer: Customer) -> list[Preview]:
    """Each message rendered for the customer as a send would: their locale's translation,
    their latest events, and for an event-triggered journey their latest trigger event."""
    trigger = _trigger_properties(campaign, customer)
    previews = []
    for step, variant, template in campaign_templates(campaign):
        preview = Preview(step=step, variant=variant, template=template)
        if template is None:
            preview.error = "This step has no template yet."
        else:
            preview.rendered, preview.error = _render_for(campaign, step, template, customer,
                                                          trigger)
        previews.append(preview)
    return previews


def _render_for(campaign, step, template, customer, trigger) -> tuple[Rendered | None, str]:
    last = last_events_for([customer.pk], last_event_names(template)).get(customer.pk)
    context = message_context(customer=customer, event_properties=trigger, last_events=last,
                              campaign={"source": f"campaign:{campaign.pk}/step:{step.pk}"})
    try:
        return render(template, context, text=pick_translation(template, customer.locale)), ""
    except RenderError as error:
        return None, str(error)


STRICT_SAMPLE = 200  # audience customers a strict template is tried on for the preview


@dataclass
class StrictSkips:
    """A strict template tried on the first customers of the audience: who would be skipped
    (external id, the variables without a value) out of how many tried."""

    step: Step
    variant: str
    template: Template
    tried: int
    skipped: list[tuple[str, str]]


def strict_skips_for(campaign: Campaign) -> list[StrictSkips]:
    """For each strict template of the campaign, the customers among the first STRICT_SAMPLE of
    its audience (by id) whose message would be skipped with render_error."""
    strict = [(s, v, t) for s, v, t in campaign_templates(campaign) if t is not None and t.strict]
    audience = campaign.segment or campaign.trigger_segment
    if not strict or audience is None:
        return []
    customers = list(segment_customers(audience).order_by("pk")[:STRICT_SAMPLE])
    results = []
    for step, variant, template in strict:
        skipped = []
        for customer in customers:
            _rendered, error = _render_for(campaign, step, template, customer,
                                           _trigger_properties(campaign, customer))
            if error:
                skipped.append((customer.external_id, error))
        results.append(StrictSkips(step, variant, template, len(customers), skipped))
    return results


def _trigger_properties(campaign: Campaign, customer: Customer) -> dict:
    if campaign.kind != Campaign.Kind.JOURNEY or campaign.trigger != Campaign.Trigger.EVENT:
        return {}
    event = (Event.objects.filter(customer=customer, name=campaign.trigger_event_name)
             .order_by("-occurred_at", "-pk").first())
    return dict(event.properties or {}) if event else {}


def campaign_template(campaign: Campaign, template_id) -> Template:
    """One of the campaign's templates by id (a test send may use no other)."""
    for _, _, template in campaign_templates(campaign):
        if template is not None and str(template.pk) == str(template_id):
            return template
    raise ValidationError("That template is not one of this campaign's messages.")
