"""What makes a journey's steps unrunnable, found before they are saved or launched.

``steps_problems`` works on ``StepDraft`` rows, a small shape that the admin formset (unsaved
forms, whose links point at other forms), the API (a JSON document whose links are list
numbers) and saved ``Step`` rows can all be turned into. Each message names its step the way
the builder shows it: "Step 3 'Wait for purchase': a wait for an event needs a timeout."."""

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from campaigns.models import Step, Variant

WEEKDAYS = range(7)  # 0 = Monday ... 6 = Sunday, as datetime.weekday()


@dataclass
class StepDraft:
    """One step as validation sees it. ``key`` identifies it among its siblings (a saved step's
    id, a form's index); ``next_key``/``else_key`` are the keys of the steps it links to.
    ``variant_weights`` is None when the step has no A/B variants."""

    key: Hashable
    position: int
    kind: str
    name: str = ""
    next_key: Hashable | None = None
    else_key: Hashable | None = None
    has_template: bool = False
    variant_weights: list[int] | None = None
    duration: timedelta | None = None
    local_time: object = None
    weekdays: object = field(default_factory=list)
    event_name: str = ""
    has_segment: bool = False
    percent: object = None
    attribute_key: str = ""
    stage: str = ""


def draft_from_fields(*, key: Hashable, position: int, fields: dict,
                      next_key: Hashable | None = None, else_key: Hashable | None = None,
                      variant_weights: list[int] | None = None) -> StepDraft:
    """A draft from a mapping of Step field names to values (a form's cleaned_data, a
    serializer's validated data). Links are given separately, as keys of sibling drafts."""
    return StepDraft(
        key=key, position=position, kind=fields.get("kind") or "",
        name=fields.get("name") or "", next_key=next_key, else_key=else_key,
        has_template=bool(fields.get("template")), variant_weights=variant_weights,
        duration=fields.get("duration"), local_time=fields.get("local_time"),
        weekdays=fields.get("weekdays") or [], event_name=fields.get("event_name") or "",
        has_segment=bool(fields.get("segment")), percent=fields.get("percent"),
        attribute_key=fields.get("attribute_key") or "", stage=fields.get("stage") or "",
    )


def drafts_from_steps(steps: Iterable[Step]) -> list[StepDraft]:
    """Drafts of saved steps, keyed by id; their variants are read in one query."""
    steps = list(steps)
    weights: dict[int, list[int]] = {}
    variants = Variant.objects.filter(step__in=[s.pk for s in steps]).order_by("pk")
    for step_id, weight in variants.values_list("step_id", "weight"):
        weights.setdefault(step_id, []).append(weight)
    return [
        draft_from_fields(
            key=step.pk, position=step.position, fields=_step_fields(step),
            next_key=step.next_step_id, else_key=step.else_step_id,
            variant_weights=weights.get(step.pk),
        )
        for step in steps
    ]


def _step_fields(step: Step) -> dict:
    names = ("kind", "name", "duration", "local_time", "weekdays", "event_name", "percent",
             "attribute_key", "stage")
    fields = {name: getattr(step, name) for name in names}
    fields["template"], fields["segment"] = step.template_id, step.segment_id
    return fields


def steps_problems(steps: Sequence) -> dict[Hashable, list[str]]:
    """Problems per step key (only steps with problems appear). ``steps`` are StepDrafts or
    saved Steps (not mixed); an empty answer means the journey can run."""
    drafts = [s for s in steps if isinstance(s, StepDraft)]
    if len(drafts) != len(steps):
        drafts = drafts_from_steps(steps)
    drafts = sorted(drafts, key=lambda d: (d.position, str(d.key)))
    labels = {d.key: step_label(number, d) for number, d in enumerate(drafts, start=1)}
    problems: dict[Hashable, list[str]] = {}
    for draft in drafts:
        for message in _own_problems(draft) + _link_problems(draft, labels):
            problems.setdefault(draft.key, []).append(f"{labels[draft.key]}: {message}")
    graph = _successors(drafts)
    for key, message in _graph_problems(drafts, graph, labels):
        problems.setdefault(key, []).append(f"{labels[key]}: {message}")
    return problems


def step_label(number: int, draft: StepDraft) -> str:
    if draft.name:
        return f"Step {number} '{draft.name}'"
    kind = Step.Kind(draft.kind).label if draft.kind in Step.Kind.values else draft.kind
    return f"Step {number} ({kind})" if kind else f"Step {number}"


def _own_problems(d: StepDraft) -> list[str]:
    checks = {
        Step.Kind.SEND: _send_problems,
        Step.Kind.WAIT: lambda d: [] if _positive(d.duration) else ["a wait needs a duration."],
        Step.Kind.WAIT_UNTIL: _wait_until_problems,
        Step.Kind.WAIT_EVENT: _wait_event_problems,
        Step.Kind.SPLIT_SEGMENT: lambda d: [] if d.has_segment else [
            "a segment split needs a segment."],
        Step.Kind.SPLIT_RANDOM: _split_random_problems,
        Step.Kind.SET_ATTRIBUTE: lambda d: [] if d.attribute_key.strip() else [
            "setting an attribute needs the attribute's key."],
        Step.Kind.SET_STAGE: lambda d: [] if d.stage else [
            "moving the stage needs the stage to move to."],
        Step.Kind.EXIT: lambda d: [],
    }
    check = checks.get(d.kind)
    if check is None:
        return [f"unknown kind {d.kind!r}." if d.kind else "choose what this step does."]
    return check(d)


def _send_problems(d: StepDraft) -> list[str]:
    if d.variant_weights:
        if sum(d.variant_weights) <= 0:
            return ["the A/B variants' weights add up to 0; give at least one a weight."]
        return []
    return [] if d.has_template else ["a send needs a template (or A/B variants)."]


def _wait_until_problems(d: StepDraft) -> list[str]:
    problems = [] if d.local_time else ["a wait until a local time needs the time."]
    weekdays = d.weekdays
    if not isinstance(weekdays, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and day in WEEKDAYS for day in weekdays
    ):
        problems.append("weekdays must be a list of numbers from 0 (Monday) to 6 (Sunday).")
    return problems


def _wait_event_problems(d: StepDraft) -> list[str]:
    problems = [] if d.event_name.strip() else ["a wait for an event needs the event's name."]
    if not _positive(d.duration):
        problems.append("a wait for an event needs a timeout.")
    return problems


def _split_random_problems(d: StepDraft) -> list[str]:
    try:
        ok = d.percent is not None and 0 <= float(d.percent) <= 100
    except (TypeError, ValueError):
        ok = False
    return [] if ok else ["a random split needs a percent between 0 and 100."]


def _positive(duration) -> bool:
    return isinstance(duration, timedelta) and duration > timedelta(0)


def _link_problems(d: StepDraft, labels: dict) -> list[str]:
    problems = []
    for link, name in ((d.next_key, "next"), (d.else_key, "else")):
        if link is not None and link not in labels:
            problems.append(f"its '{name}' link points at a step that is not in this campaign.")
    if d.else_key is not None and d.kind not in Step.BRANCHING:
        problems.append("only a wait for an event or a split has an 'else' link.")
    return problems


def _successors(drafts: list[StepDraft]) -> dict[Hashable, list[Hashable]]:
    """Where each step may lead, as the engine walks it: the 'next' link, else the next step by
    position; branches also their 'else' link (empty = exit); an exit step nowhere."""
    keys = {d.key for d in drafts}
    graph = {}
    for index, d in enumerate(drafts):
        following = drafts[index + 1].key if index + 1 < len(drafts) else None
        targets = []
        if d.kind != Step.Kind.EXIT:
            targets.append(d.next_key if d.next_key is not None else following)
            if d.kind in Step.BRANCHING:
                targets.append(d.else_key)
        graph[d.key] = [t for t in targets if t is not None and t in keys]
    return graph


def _graph_problems(drafts, graph, labels) -> list[tuple[Hashable, str]]:
    if not drafts:
        return []
    problems = []
    reachable = _reach(graph, drafts[0].key)
    for d in drafts[1:]:
        if d.key not in reachable:
            problems.append((d.key, "no path from the first step leads here."))
    waiting = {d.key for d in drafts if d.kind in Step.WAITING}
    instant = {k: [t for t in targets if t not in waiting]
               for k, targets in graph.items() if k not in waiting}
    for d in drafts:
        if d.key in instant and any(d.key in _reach(instant, t) for t in instant[d.key]):
            problems.append((d.key, "it is on a loop with no wait; add a wait step to the loop."))
    return problems


def _reach(graph: dict, start) -> set:
    seen, stack = {start}, [start]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen
