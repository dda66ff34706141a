"""Writes on campaigns: create and edit, launch, pause, resume, archive, duplicate, delete, and
the beat entry points ``campaign_run``, ``journeys_tick`` and ``segment_entries_process``.
Keyword-only arguments, one transaction each.

Status changes follow TRANSITIONS and nothing else; the campaign's beat row is rewritten in the
same transaction as every change (campaigns.schedules). Steps are edited through ``steps_save``
and ``steps_remove``, which move enrolled customers off a removed step first, so editing a
running journey never strands anyone."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns import tasks
from campaigns.engine.enrollments import enrollments_enter_audience, enrollments_exit_all
from campaigns.engine.tick import enrollments_advance_all
from campaigns.models import Campaign, Conversion, Enrollment, Step, StepSend
from campaigns.schedules import campaign_beat_sync, crontab_errors
from campaigns.services_steps import steps_copy, steps_remove, steps_save  # noqa: F401 (API)
from campaigns.validation import steps_problems
from notifications.models import Send
from notifications.services import send_cancel, send_pause, send_resume

S = Campaign.Status
# Every status change a campaign may make. SCHEDULED -> DRAFT un-schedules a broadcast so its
# time can be edited; COMPLETED is reached only by the tick's bookkeeping, never by staff.
TRANSITIONS: dict[str, set[str]] = {
    S.DRAFT: {S.SCHEDULED, S.RUNNING, S.ARCHIVED},
    S.SCHEDULED: {S.RUNNING, S.PAUSED, S.DRAFT, S.ARCHIVED},
    S.RUNNING: {S.PAUSED, S.COMPLETED, S.ARCHIVED},
    S.PAUSED: {S.SCHEDULED, S.RUNNING, S.ARCHIVED},
    S.COMPLETED: {S.ARCHIVED},
    S.ARCHIVED: set(),
}
# Campaigns that may be deleted outright; the others are archived first, so that nobody deletes
# a campaign customers are walking through.
DELETABLE = {S.DRAFT, S.COMPLETED, S.ARCHIVED}
# Fields the campaign's kind decides; changing the kind after launch would orphan its runs.
EDITABLE_ONLY_IN_DRAFT = {"kind"}
ENROLLMENT_DELETE_CHUNK = 10_000  # bounded memory when a big campaign is deleted
OPEN_SENDS = {Send.Status.QUEUED, Send.Status.FANNING_OUT, Send.Status.SENDING}
COPY_SKIPS = {"id", "name", "status", "beat_task", "created_by", "created_at", "updated_at",
              "launched_at", "finished_at"}


def transition_check(campaign: Campaign, to: str) -> None:
    """Raise ValidationError unless ``campaign`` may move from its status to ``to``."""
    if to in TRANSITIONS[campaign.status]:
        return
    allowed = sorted(TRANSITIONS[campaign.status])
    then = f"it can only become {' or '.join(allowed)}" if allowed else "it cannot change"
    raise ValidationError(
        f"A {campaign.status} campaign cannot become {to}: {then}.", code="invalid_transition"
    )


def _transition(campaign: Campaign, to: str, **fields) -> Campaign:
    transition_check(campaign, to)
    campaign.status = to
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save(update_fields=["status", "updated_at", *fields])
    campaign_beat_sync(campaign=campaign)
    return campaign


def _locked(campaign: Campaign) -> Campaign:
    """The campaign re-read under a row lock, so two staff clicking at once change it once."""
    fresh = Campaign.objects.select_for_update().get(pk=campaign.pk)
    campaign.__dict__.update(fresh.__dict__)
    return campaign


# --- Create and edit ---------------------------------------------------------------------------


def campaign_problems(campaign: Campaign) -> dict[str, list[str]]:
    """Field errors for a campaign as it stands: the model's rules and a valid schedule."""
    errors: dict[str, list[str]] = {}
    try:
        campaign.full_clean(exclude=["beat_task", "created_by"])
    except ValidationError as error:
        errors.update(error.message_dict)
    if campaign.kind == Campaign.Kind.RECURRING and campaign.crontab:
        for name, messages in crontab_errors(campaign.crontab, campaign.crontab_time_zone).items():
            errors.setdefault(name, []).extend(messages)
    return errors


@transaction.atomic
def campaign_save(*, campaign: Campaign | None = None, fields: dict,
                  steps: list[dict] | None = None, user=None) -> Campaign:
    """Create (``campaign=None``) or update a campaign from model field values, and replace its
    steps when ``steps`` is given (see ``steps_save``). The beat row follows the new values."""
    if campaign is None:
        campaign = Campaign(created_by=user)
    elif campaign.pk:
        _locked(campaign)
        _edit_check(campaign, fields)
    for name, value in fields.items():
        setattr(campaign, name, value)
    if errors := campaign_problems(campaign):
        raise ValidationError(errors)
    campaign.save()
    if steps is not None:
        steps_save(campaign=campaign, steps=steps)
    campaign_beat_sync(campaign=campaign)
    return campaign


def _edit_check(campaign: Campaign, fields: dict) -> None:
    if campaign.status == S.ARCHIVED:
        raise ValidationError("An archived campaign cannot be changed; duplicate it instead.")
    changed = {name for name in EDITABLE_ONLY_IN_DRAFT
               if name in fields and fields[name] != getattr(campaign, name)}
    if changed and campaign.status != S.DRAFT:
        raise ValidationError({name: f"Only a draft campaign's {name} can change; this one is "
                                     f"{campaign.status}." for name in changed})


# --- Status ---------------------------------------------------------------------------------


def launch_problems(campaign: Campaign) -> dict[str, list[str]]:
    """Everything that stops a launch: field errors, and the steps' problems under "steps"."""
    errors = campaign_problems(campaign)
    steps = list(campaign.steps.all())
    if not steps:
        errors["steps"] = ["Add at least one step before launching."]
    else:
        messages = [m for problems in steps_problems(steps).values() for m in problems]
        if messages:
            errors["steps"] = messages
    return errors


@transaction.atomic
def campaign_launch(*, campaign: Campaign, user=None) -> Campaign:
    """Start a draft. A broadcast with a future send time is SCHEDULED (its one-off beat row
    fires campaign_run then); anything else runs now: a broadcast is enrolled by campaign_run
    right after commit, a recurring campaign at each crontab time, a journey as customers
    trigger it."""
    _locked(campaign)
    now = timezone.now()
    later = campaign.kind == Campaign.Kind.BROADCAST and campaign.send_at and campaign.send_at > now
    transition_check(campaign, S.SCHEDULED if later else S.RUNNING)
    if errors := launch_problems(campaign):
        raise ValidationError(errors)
    if later:
        return _transition(campaign, S.SCHEDULED)
    _transition(campaign, S.RUNNING, launched_at=now)
    if campaign.kind == Campaign.Kind.BROADCAST:
        _run_on_commit(campaign)
    return campaign


def _run_on_commit(campaign: Campaign) -> None:
    campaign_id = campaign.pk
    transaction.on_commit(lambda: tasks.campaign_run.delay(campaign_id))


@transaction.atomic
def campaign_unschedule(*, campaign: Campaign, user=None) -> Campaign:
    """A scheduled broadcast back to draft, so its time or content can be edited."""
    _locked(campaign)
    return _transition(campaign, S.DRAFT)


@transaction.atomic
def campaign_pause(*, campaign: Campaign, user=None) -> Campaign:
    """Stop enrolling and advancing; the campaign's sends still in progress pause too."""
    _locked(campaign)
    _transition(campaign, S.PAUSED)
    for send in _sends(campaign, OPEN_SENDS):
        send_pause(send=send)
    return campaign


@transaction.atomic
def campaign_resume(*, campaign: Campaign, user=None) -> Campaign:
    """Carry on: a broadcast paused before its time is scheduled again (or runs now if its time
    has passed); everything else runs, and the sends paused with it resume."""
    _locked(campaign)
    now = timezone.now()
    pending = campaign.kind == Campaign.Kind.BROADCAST and campaign.launched_at is None
    if pending and campaign.send_at and campaign.send_at > now:
        return _transition(campaign, S.SCHEDULED)
    _transition(campaign, S.RUNNING, launched_at=campaign.launched_at or now)
    if pending:
        _run_on_commit(campaign)
    for send in _sends(campaign, {Send.Status.PAUSED}):
        send_resume(send=send)
    return campaign


@transaction.atomic
def campaign_archive(*, campaign: Campaign, user=None) -> Campaign:
    """End the campaign for good: active enrollments exit (campaign ended), sends not yet
    delivered are cancelled, and the beat row goes."""
    _locked(campaign)
    transition_check(campaign, S.ARCHIVED)
    now = timezone.now()
    enrollments_exit_all(campaign=campaign, reason=Enrollment.ExitReason.CAMPAIGN_ENDED,
                         now=now)
    for send in _sends(campaign, OPEN_SENDS | {Send.Status.PAUSED}):
        send_cancel(send=send)
    return _transition(campaign, S.ARCHIVED, finished_at=campaign.finished_at or now)


def _sends(campaign: Campaign, statuses: set[str]) -> list[Send]:
    return list(Send.objects.filter(step_send__campaign=campaign, status__in=statuses))


@transaction.atomic
def campaign_delete(*, campaign: Campaign, user=None) -> None:
    """Delete a draft, completed or archived campaign with its enrollments, results and beat
    row. Enrollments go in chunks so a big campaign's delete keeps memory bounded."""
    _locked(campaign)
    if campaign.status not in DELETABLE:
        raise ValidationError(
            f"A {campaign.status} campaign cannot be deleted; archive it first."
        )
    campaign.status = S.ARCHIVED  # so the beat sync below removes the row
    campaign_beat_sync(campaign=campaign)
    Conversion.objects.filter(campaign=campaign).delete()
    enrollments = Enrollment.objects.filter(campaign=campaign)
    while ids := list(enrollments.values_list("pk", flat=True)[:ENROLLMENT_DELETE_CHUNK]):
        Enrollment.objects.filter(pk__in=ids).delete()
    StepSend.objects.filter(campaign=campaign).delete()
    Step.objects.filter(campaign=campaign).update(next_step=None, else_step=None)
    campaign.delete()


@transaction.atomic
def campaign_duplicate(*, campaign: Campaign, user=None) -> Campaign:
    """A draft copy, named "Copy of ...", with its steps, links and A/B variants."""
    values = {f.attname: getattr(campaign, f.attname) for f in Campaign._meta.concrete_fields
              if f.name not in COPY_SKIPS}
    copy = Campaign.objects.create(
        **values, name=_copy_name(campaign.name), status=S.DRAFT, created_by=user,
        created_at=timezone.now(),
    )
    steps_copy(source=campaign, target=copy)
    return copy


def _copy_name(name: str) -> str:
    max_length = Campaign._meta.get_field("name").max_length
    base = f"Copy of {name}"[:max_length]
    candidate, number = base, 2
    while Campaign.objects.filter(name=candidate).exists():
        suffix = f" ({number})"
        candidate, number = base[: max_length - len(suffix)] + suffix, number + 1
    return candidate


# --- Runs -----------------------------------------------------------------------------------


def campaign_run(*, campaign_id: int, now=None) -> int:
    """The beat entry point (and a broadcast's launch): enroll the campaign's segment now.
    A scheduled broadcast whose time came starts running; a broadcast enrolls once, a recurring
    campaign on every run (engine skips customers already enrolled). Returns customers enrolled."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.kind == Campaign.Kind.JOURNEY:
            return 0
        if campaign.kind == Campaign.Kind.BROADCAST and campaign.status == S.SCHEDULED:
            _transition(campaign, S.RUNNING, launched_at=now)
        if campaign.status != S.RUNNING:
            return 0
        if campaign.ends_at and now >= campaign.ends_at:
            _transition(campaign, S.COMPLETED, finished_at=now)
            return 0
        if not campaign.is_live(now) or _broadcast_enrolled(campaign):
            return 0
        entered = enrollments_enter_audience(campaign=campaign, now=now)
        if entered:
            _tick_soon()
        if campaign.kind == Campaign.Kind.BROADCAST and not entered:
            _transition(campaign, S.COMPLETED, finished_at=now)  # nobody to send to
    return entered


def segment_entries_process(*, now=None) -> int:
    """The beat entry point of segment-trigger journeys: enroll the customers now in each
    one's segment who may enter, and advance them at once. Returns customers enrolled."""
    now = now or timezone.now()
    journeys = Campaign.objects.filter(kind=Campaign.Kind.JOURNEY, status=S.RUNNING,
                                       trigger=Campaign.Trigger.SEGMENT)
    entered = sum(enrollments_enter_audience(campaign=campaign, now=now)
                  for campaign in journeys if campaign.is_live(now))
    if entered:
        _tick_soon()
    return entered


def _tick_soon() -> None:
    """Advance what was just enrolled now, not at the next minute's tick."""
    transaction.on_commit(lambda: tasks.journeys_tick.delay())


def journeys_tick(*, now=None) -> int:
    """The beat's tick: advance the due enrollments (campaigns.engine.tick), then mark the
    campaigns whose enrollments have all ended as completed. Returns how many advanced."""
    now = now or timezone.now()
    advanced = enrollments_advance_all(now=now)
    campaigns_complete_finished(now=now)
    return advanced


def _broadcast_enrolled(campaign: Campaign) -> bool:
    return (campaign.kind == Campaign.Kind.BROADCAST
            and Enrollment.objects.filter(campaign=campaign).exists())


def campaigns_complete_finished(*, now=None, ids: Iterable[int] | None = None) -> int:
    """Running campaigns that are over become COMPLETED and lose their beat row: a broadcast
    whose enrollments have all exited, and any campaign past its end date with no one still
    walking it; in both cases once every send it made is finished (each row sent, skipped or
    failed). Cheap enough for every tick (an EXISTS per running campaign)."""
    now = now or timezone.now()
    active = Enrollment.objects.filter(campaign=OuterRef("pk"), state=Enrollment.State.ACTIVE)
    # Its messages count too: a broadcast whose enrollments all walked past the send step is
    # still sending while its send has rows queued (deferred, throttled).
    sending = StepSend.objects.filter(campaign=OuterRef("pk"),
                                      send__status__in=OPEN_SENDS | {Send.Status.PAUSED})
    running = (Campaign.objects.filter(status=S.RUNNING).exclude(Exists(active))
               .exclude(Exists(sending)))
    if ids is not None:
        running = running.filter(pk__in=list(ids))
    broadcast_done = running.filter(kind=Campaign.Kind.BROADCAST).filter(
        Exists(Enrollment.objects.filter(campaign=OuterRef("pk")))
    )
    ended = running.filter(ends_at__lte=now)
    done = 0
    finished = {*broadcast_done.values_list("pk", flat=True), *ended.values_list("pk", flat=True)}
    for campaign_id in sorted(finished):
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
            if campaign.status == S.RUNNING:
                _transition(campaign, S.COMPLETED, finished_at=now)
                done += 1
    return done
