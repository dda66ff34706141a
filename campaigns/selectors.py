"""Reads about campaigns shared by the admin, the API and reports."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from audiences.selectors import segment_count
from campaigns.models import Campaign, Conversion, Enrollment, Step
from notifications.models import Delivery

# What each kind of link means, for the diagram's edge labels.
BRANCH_LABELS = {
    Step.Kind.WAIT_EVENT: ("happened", "timed out"),
    Step.Kind.SPLIT_SEGMENT: ("yes", "no"),
    Step.Kind.SPLIT_RANDOM: ("chosen", "others"),
}


def campaign_audience_size(campaign: Campaign) -> int | None:
    """How many customers the campaign would reach now: its segment for a broadcast or a
    recurring run, the entry segment for a segment-triggered journey. None when the audience is
    not a set known in advance (event and stage triggers, or no segment chosen yet)."""
    if campaign.kind == Campaign.Kind.JOURNEY:
        if campaign.trigger == Campaign.Trigger.SEGMENT and campaign.trigger_segment_id:
            return segment_count(campaign.trigger_segment)
        return None
    return segment_count(campaign.segment) if campaign.segment_id else None


@dataclass(frozen=True)
class CampaignProgress:
    active: int
    exited: int
    groups: dict[str, int]  # enrollments per Enrollment.Group
    exit_reasons: dict[str, int]
    deliveries: dict[str, int]  # per Delivery.Status, across the campaign's step sends
    conversions: int
    revenue: Decimal
    at_steps: dict[int, int] = field(default_factory=dict)  # active enrollments per step id

    @property
    def enrolled(self) -> int:
        return self.active + self.exited

    @property
    def deliveries_total(self) -> int:
        return sum(self.deliveries.values())

    @property
    def sent(self) -> int:
        return self.deliveries[Delivery.Status.SENT]

    @property
    def failed(self) -> int:
        return self.deliveries[Delivery.Status.FAILED]

    @property
    def skipped(self) -> int:
        return self.deliveries[Delivery.Status.SKIPPED]

    @property
    def queued(self) -> int:
        """Not finished yet: queued or being sent."""
        return self.deliveries[Delivery.Status.QUEUED] + self.deliveries[Delivery.Status.SENDING]

    @property
    def percent_sent(self) -> float:
        """Finished deliveries out of all, for a progress bar (100 when there are none)."""
        total = self.deliveries_total
        return 100.0 * (total - self.queued) / total if total else 100.0


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    """Four GROUP BY queries: enrollments by state, group, exit reason and step; deliveries by
    status; conversions with revenue."""
    active = exited = 0
    groups = dict.fromkeys(Enrollment.Group.values, 0)
    reasons: dict[str, int] = {}
    at_steps: dict[int, int] = {}
    rows = (Enrollment.objects.filter(campaign=campaign)
            .values("state", "group", "exit_reason", "step_id").annotate(n=Count("id")).order_by())
    for row in rows:
        groups[row["group"]] = groups.get(row["group"], 0) + row["n"]
        if row["state"] == Enrollment.State.ACTIVE:
            active += row["n"]
            if row["step_id"] is not None:
                at_steps[row["step_id"]] = at_steps.get(row["step_id"], 0) + row["n"]
        else:
            exited += row["n"]
            reasons[row["exit_reason"]] = reasons.get(row["exit_reason"], 0) + row["n"]
    deliveries = dict.fromkeys(Delivery.Status.values, 0)
    for row in (Delivery.objects.filter(send__step_send__campaign=campaign)
                .values("status").annotate(n=Count("id")).order_by()):
        deliveries[row["status"]] = row["n"]
    won = Conversion.objects.filter(campaign=campaign).aggregate(n=Count("id"), r=Sum("revenue"))
    return CampaignProgress(
        active=active, exited=exited, groups=groups, exit_reasons=reasons,
        deliveries=deliveries, conversions=won["n"], revenue=won["r"] or Decimal("0"),
        at_steps=at_steps,
    )


@dataclass(frozen=True)
class FlowNode:
    id: int
    number: int  # 1-based, as the builder and validation messages name steps
    label: str
    kind: str
    kind_label: str
    summary: str  # what the step does, in a few words ("Wait 2 days", "Template: Welcome")
    next: int | None  # where it leads (explicit link, else the next step by position)
    else_: int | None  # branches: the other way; None = exit
    active: int = 0  # customers waiting here now

    @property
    def detail(self) -> str:
        return self.summary


@dataclass(frozen=True)
class FlowEdge:
    source: int
    target: int | None  # None: the journey ends
    label: str  # "next", "yes", "no", "happened", "timed out", ...


@dataclass(frozen=True)
class CampaignFlow:
    nodes: list[FlowNode]
    edges: list[FlowEdge]


def campaign_flow(campaign: Campaign, *, with_counts: bool = True) -> CampaignFlow:
    """The steps as a graph, for the diagram: a node per step, an edge per way out."""
    steps = list(campaign.steps.select_related("template", "segment").prefetch_related(
        "variants__template"))
    counts = {}
    if with_counts:
        counts = dict(Enrollment.objects.filter(campaign=campaign, state=Enrollment.State.ACTIVE)
                      .values_list("step_id").annotate(n=Count("id")).order_by())
    nodes, edges = [], []
    for index, step in enumerate(steps):
        following = steps[index + 1].pk if index + 1 < len(steps) else None
        leads = None if step.kind == Step.Kind.EXIT else (step.next_step_id or following)
        other = step.else_step_id if step.kind in Step.BRANCHING else None
        nodes.append(FlowNode(
            id=step.pk, number=index + 1, label=step.name or step.get_kind_display(),
            kind=step.kind, kind_label=step.get_kind_display(), summary=step_summary(step),
            next=leads, else_=other, active=counts.get(step.pk, 0),
        ))
        yes, no = BRANCH_LABELS.get(step.kind, ("next", ""))
        if step.kind != Step.Kind.EXIT:
            edges.append(FlowEdge(step.pk, leads, yes))
        if step.kind in Step.BRANCHING:
            edges.append(FlowEdge(step.pk, other, no))
    return CampaignFlow(nodes=nodes, edges=edges)


def step_summary(step: Step) -> str:
    kind = Step.Kind
    if step.kind == kind.SEND:
        variants = list(step.variants.all())
        if variants:
            return "A/B: " + ", ".join(f"{v.name} {v.template} ({v.weight})" for v in variants)
        return f"Template: {step.template}" if step.template_id else "No template"
    if step.kind == kind.WAIT:
        return f"Wait {_duration(step.duration)}"
    if step.kind == kind.WAIT_UNTIL:
        at = step.local_time.strftime("%H:%M") if step.local_time else "?"
        days = ", ".join(DAY_NAMES[d] for d in step.weekdays if d in range(7)) \
            if isinstance(step.weekdays, list) and step.weekdays else "any day"
        return f"Until {at} local time ({days})"
    if step.kind == kind.WAIT_EVENT:
        return f"Wait for '{step.event_name}' up to {_duration(step.duration)}"
    if step.kind == kind.SPLIT_SEGMENT:
        return f"In segment {step.segment}?" if step.segment_id else "No segment"
    if step.kind == kind.SPLIT_RANDOM:
        return f"{step.percent}% take 'next'" if step.percent is not None else "No percent"
    if step.kind == kind.SET_ATTRIBUTE:
        return f"Set {step.attribute_key} = {step.attribute_value!r}"
    if step.kind == kind.SET_STAGE:
        return f"Move to {step.get_stage_display()}" if step.stage else "No stage"
    return "Exit"


DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _duration(value) -> str:
    if value is None:
        return "?"
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
