"""The flow diagram of a campaign's page while it is being edited: the unsaved form (the
campaign and its steps, new rows included) drawn as campaigns.flow draws saved steps, with each
step's problems on its box. Nothing is saved; the page posts its form here as the marketer
types and swaps the diagram in."""

from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Count
from django.forms.utils import pretty_name

from campaigns.admin_steps import StepFormSet, form_draft, step_key, variant_weights
from campaigns.flow import flow_svg
from campaigns.models import Enrollment, Step
from campaigns.selectors import step_summary
from campaigns.validation import step_label, steps_problems


def flow_preview(*, formset: StepFormSet, entry: str) -> dict:
    """{"svg", "steps": [{key, row, number, label}], "problems": {key: [..]}, "general": [..]}
    for the formset as sent (bound, unsaved)."""
    formset.is_valid()
    kept = formset.kept_forms()
    rows = {key: index for index, form in enumerate(formset.forms)
            for key in [step_key(form, index)] if key in kept}
    ordered = _ordered(kept, rows)
    weights = variant_weights([form.instance.pk for form in kept.values()])
    drafts = []
    for key, form, position in ordered:
        draft = form_draft(key, form, weights)
        draft.position = position
        drafts.append(draft)
    problems = _problems(ordered, drafts)
    active = _waiting([form.instance.pk for form in kept.values() if form.instance.pk])
    nodes, steps = [], []
    for number, ((key, form, _), draft) in enumerate(zip(ordered, drafts, strict=True), 1):
        following = str(ordered[number][0]) if number < len(ordered) else None
        nodes.append(_node(key, form, draft, number, following, problems.get(key, []),
                           active.get(form.instance.pk, 0)))
        steps.append({"key": str(key), "row": rows[key], "number": number,
                      "label": step_label(number, draft), "saved": bool(form.instance.pk)})
    return {
        "svg": str(flow_svg(nodes, entry=entry)), "steps": steps,
        "problems": {str(key): messages for key, messages in problems.items()},
        "general": list(formset.non_form_errors()),
    }


def _ordered(kept: dict, rows: dict) -> list[tuple]:
    """(key, form, position) in the order the steps will run: by position, rows without one
    after the others in the order of the page."""
    known = [_position(form) for form in kept.values()]
    last = max((p for p in known if p is not None), default=0)
    ordered = []
    for key, form in sorted(kept.items(), key=lambda item: rows[item[0]]):
        position = _position(form)
        if position is None:
            last += 1
            position = last
        ordered.append((key, form, position))
    return sorted(ordered, key=lambda item: (item[2], rows[item[0]]))


def _position(form) -> int | None:
    value = getattr(form, "cleaned_data", {}).get("position")
    return value if isinstance(value, int) else None


def _problems(ordered: list[tuple], drafts) -> dict:
    """Each step's field errors (named by field) and the problems of the flow as a whole."""
    labels = {draft.key: step_label(n, draft) for n, draft in enumerate(drafts, 1)}
    problems: dict = {}
    for key, form, _ in ordered:
        for name, errors in form.errors.items():
            if name == NON_FIELD_ERRORS:
                continue  # the formset's own check, redone below on every row
            field = form.fields.get(name)
            what = field.label if field is not None and field.label else pretty_name(name)
            for error in errors:
                problems.setdefault(key, []).append(f"{labels[key]}: {what}: {error}")
    for key, messages in steps_problems(drafts).items():
        problems.setdefault(key, []).extend(messages)
    return problems


def _waiting(step_ids: list[int]) -> dict[int, int]:
    if not step_ids:
        return {}
    return dict(Enrollment.objects.filter(step_id__in=step_ids, state=Enrollment.State.ACTIVE)
                .values_list("step_id").annotate(n=Count("id")).order_by())


def _node(key, form, draft, number: int, following, problems, active: int) -> dict:
    kind = draft.kind
    leads = None if kind == Step.Kind.EXIT else (draft.next_key or following)
    other = draft.else_key if kind in Step.BRANCHING else None
    label = draft.name or (Step.Kind(kind).label if kind in Step.Kind.values else "New step")
    return {"id": str(key), "number": number, "label": label, "kind": kind,
            "next": None if leads is None else str(leads),
            "else_": None if other is None else str(other),
            "detail": _detail(form.instance, kind), "problems": problems, "active": active}


def _detail(step: Step, kind: str) -> str:
    """What the step does in a few words, from the unsaved row; "" when it cannot be told."""
    if kind not in Step.Kind.values:
        return ""
    if kind == Step.Kind.SEND and not step.pk:  # no variants before the first save
        template = step.template if step.template_id else None
        return f"Template: {template}" if template else "No template"
    try:
        return step_summary(step)
    except (TypeError, ValueError, AttributeError):  # a half-filled row
        return ""
