"""Writes on a campaign's steps: replace them all (the API, journeys as code), remove some
(the admin's deleted rows), copy them (duplicate).

Customers may be enrolled on any step of a running journey. A removed step's enrollments are
moved, before the step is deleted, to where the step led (the first surviving step along its
'next' path), or exit with "step removed" when that path ends; links that pointed at it are
pointed there too."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from campaigns.engine.enrollments import enrollments_move
from campaigns.models import Campaign, Enrollment, Step, Variant
from campaigns.validation import draft_from_fields, steps_problems

STEP_FIELDS = ("kind", "name", "template", "duration", "local_time", "weekdays", "event_name",
               "event_filter", "segment", "percent", "attribute_key", "attribute_value", "stage")
VARIANT_FIELDS = ("name", "template", "weight")


@transaction.atomic
def steps_save(*, campaign: Campaign, steps: list[dict]) -> list[Step]:
    """Make ``steps`` the campaign's steps, in this order.

    Each item maps Step field names (STEP_FIELDS; absent = the field's default) to values,
    plus: ``key`` (any hashable naming the item, default its index), ``next``/``else`` (the key
    of the item linked to, or None), ``id`` (an existing step of this campaign to update in
    place, keeping its enrolled customers) and ``variants`` (a list of {name, template, weight};
    absent or empty = none). Existing steps not listed are removed as ``steps_remove`` does.
    Raises ValidationError({"steps": [...]}) naming the steps when the journey could not run."""
    Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    keys = [item.get("key", index) for index, item in enumerate(steps)]
    existing = {step.pk: step for step in campaign.steps.all()}
    _check_items(steps, keys, existing)
    listed = {item["id"] for item in steps if item.get("id") is not None}
    removed = [step for pk, step in existing.items() if pk not in listed]
    targets = _removal_targets(list(existing.values()), {s.pk for s in removed})
    by_key = {}
    for position, (key, item) in enumerate(zip(keys, steps, strict=True), start=1):
        by_key[key] = _step_write(campaign, existing.get(item.get("id")), item, position)
    for key, item in zip(keys, steps, strict=True):
        step = by_key[key]
        step.next_step = by_key.get(item.get("next"))
        step.else_step = by_key.get(item.get("else"))
        step.save(update_fields=["next_step", "else_step"])
        _variants_write(step, item.get("variants") or [])
    _move_off(removed, targets)
    Step.objects.filter(pk__in=[s.pk for s in removed]).delete()
    return list(by_key.values())


def _check_items(steps: list[dict], keys: list, existing: dict[int, Step]) -> None:
    errors = []
    if len(set(keys)) != len(keys):
        errors.append("Two steps have the same key.")
    ids = [item["id"] for item in steps if item.get("id") is not None]
    if len(set(ids)) != len(ids):
        errors.append("Two steps have the same id.")
    errors += [f"Step id {pk} is not a step of this campaign." for pk in ids if pk not in existing]
    if errors:
        raise ValidationError({"steps": errors})
    drafts = [
        draft_from_fields(
            key=key, position=position, fields=item, next_key=item.get("next"),
            else_key=item.get("else"),
            variant_weights=[v.get("weight", 0) for v in item["variants"]]
            if item.get("variants") else None,
        )
        for position, (key, item) in enumerate(zip(keys, steps, strict=True), start=1)
    ]
    problems = steps_problems(drafts)
    if problems:
        raise ValidationError({"steps": [m for key in keys for m in problems.get(key, [])]})


def _step_write(campaign: Campaign, step: Step | None, item: dict, position: int) -> Step:
    step = step or Step(campaign=campaign)
    for name in STEP_FIELDS:
        field = Step._meta.get_field(name)
        setattr(step, name, item[name] if name in item else field.get_default())
    step.position = position
    try:
        step.full_clean(exclude=["campaign", "next_step", "else_step"])
    except ValidationError as error:
        raise ValidationError({"steps": [
            f"Step {position}: {name}: {message}"
            for name, messages in error.message_dict.items() for message in messages
        ]})
    step.save()
    return step


def _variants_write(step: Step, variants: list[dict]) -> None:
    """Variants are matched by name, so a re-sent variant keeps its id (and its results)."""
    names = [v.get("name", "A") for v in variants]
    if len(set(names)) != len(names):
        raise ValidationError({"steps": [f"{step}: two A/B variants are named alike."]})
    step.variants.exclude(name__in=names).delete()
    for values in variants:
        variant = step.variants.filter(name=values.get("name", "A")).first() or Variant(step=step)
        for name in VARIANT_FIELDS:
            if name in values:
                setattr(variant, name, values[name])
        try:
            variant.full_clean(exclude=["step"], validate_unique=False)
        except ValidationError as error:
            raise ValidationError({"steps": [f"{step}, variant {variant.name}: {m}"
                                             for m in error.messages]})
        variant.save()


@transaction.atomic
def steps_remove(*, campaign: Campaign, steps: Iterable[Step]) -> None:
    """Remove steps, even from a running journey: links that pointed at a removed step (and
    steps that led to it by position) now lead where it led; its enrolled customers move there
    first (or exit with "step removed" when it led nowhere)."""
    Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    ordered = list(campaign.steps.all())
    removed_ids = {step.pk for step in steps}
    if not removed_ids <= {step.pk for step in ordered}:
        raise ValidationError("Only this campaign's steps can be removed from it.")
    targets = _removal_targets(ordered, removed_ids)
    for index, step in enumerate(ordered):
        if step.pk in removed_ids:
            continue
        following = ordered[index + 1].pk if index + 1 < len(ordered) else None
        leads_to = step.next_step_id or following
        changed = []
        if step.kind != Step.Kind.EXIT and leads_to in removed_ids:
            step.next_step_id = targets[leads_to]
            changed.append("next_step")
        if step.else_step_id in removed_ids:
            step.else_step_id = targets[step.else_step_id]
            changed.append("else_step")
        if changed:
            step.save(update_fields=changed)
    removed = [step for step in ordered if step.pk in removed_ids]
    _move_off(removed, targets)
    Step.objects.filter(pk__in=removed_ids).delete()


def _removal_targets(ordered: list[Step], removed_ids: set[int]) -> dict[int, int | None]:
    """For each removed step, the first surviving step its 'next' path reaches (None: the
    path ends, or loops among removed steps)."""
    ordered = sorted(ordered, key=lambda s: (s.position, s.pk))
    following = {s.pk: (ordered[i + 1].pk if i + 1 < len(ordered) else None)
                 for i, s in enumerate(ordered)}
    by_pk = {s.pk: s for s in ordered}
    targets: dict[int, int | None] = {}
    for pk in removed_ids:
        seen, current = set(), pk
        while current in removed_ids and current not in seen:
            seen.add(current)
            step = by_pk[current]
            current = None if step.kind == Step.Kind.EXIT else (
                step.next_step_id or following[current])
        targets[pk] = None if current in removed_ids else current
    return targets


def _move_off(removed: list[Step], targets: dict[int, int | None]) -> None:
    now = timezone.now()
    surviving = Step.objects.in_bulk([t for t in targets.values() if t is not None])
    for step in removed:
        target = targets.get(step.pk)
        if target is not None:
            enrollments_move(from_step=step, to_step=surviving[target], now=now)
        else:
            Enrollment.objects.filter(step=step, state=Enrollment.State.ACTIVE).update(
                state=Enrollment.State.EXITED, exited_at=now,
                exit_reason=Enrollment.ExitReason.STEP_REMOVED, next_run_at=None, waiting_for="",
            )


@transaction.atomic
def steps_copy(*, source: Campaign, target: Campaign) -> dict[int, Step]:
    """Copy ``source``'s steps and variants into ``target`` (which has none), links remapped
    to the copies. Returns {source step id: copy}."""
    originals = list(source.steps.all())
    copies = {}
    for step in originals:
        copy = Step(campaign=target, position=step.position,
                    **{name: getattr(step, name) for name in STEP_FIELDS})
        copy.save()
        copies[step.pk] = copy
    for step in originals:
        copy = copies[step.pk]
        copy.next_step = copies.get(step.next_step_id)
        copy.else_step = copies.get(step.else_step_id)
        copy.save(update_fields=["next_step", "else_step"])
    Variant.objects.bulk_create([
        Variant(step=copies[v.step_id], name=v.name, template_id=v.template_id, weight=v.weight)
        for v in Variant.objects.filter(step__in=originals)
    ])
    return copies
