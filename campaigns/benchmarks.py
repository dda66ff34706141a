"""Benchmarks of the journey engine (python manage.py bench NAME --size N)."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.demo_sql import bucket_sql, hash64_sql
from audiences.models import Customer, Segment
from campaigns.engine.tick import TICK_BATCH
from campaigns.models import Campaign, Enrollment, Step, StepSend
from campaigns.services import journeys_tick
from journeyhub.bench import BenchResult, benchmark, peak_rss_mb, timed
from notifications.models import Send, Template

PREFIX = "jtick-"  # the bench's own customers, kept between runs
CUSTOMER_CHUNK = 250_000  # customers inserted per statement while building the data set
CAMPAIGN_NAME = "bench: journey tick"

_CUSTOMERS_SQL = f"""
INSERT INTO audiences_customer (external_id, first_name, last_name, email, locale, time_zone,
    attributes, stage, referral_code, bucket, push_opt_out, created_at, updated_at)
SELECT x, 'Bench', '', '', 'en', zones[1 + n %% 4], '{{}}', 'awareness', 'JT' || n,
       {bucket_sql(hash64_sql("x"))}, false, now(), now()
FROM (SELECT n, '{PREFIX}' || lpad(n::text, 9, '0') AS x,
             ARRAY['UTC', 'Europe/Lisbon', 'America/New_York', 'Asia/Tokyo'] AS zones
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS n) AS numbered
ON CONFLICT DO NOTHING
"""

# N due enrollments, all standing at the first wait step with their wait over.
_ENROLL_SQL = """
INSERT INTO campaigns_enrollment (campaign_id, customer_id, step_id, state, "group",
    next_run_at, waiting_for, entered_at, exit_reason)
SELECT %(campaign)s, c.id, %(step)s, 'active', 'treatment', %(due)s, '', %(due)s, ''
FROM audiences_customer c WHERE c.external_id LIKE %(prefix)s
ORDER BY c.id LIMIT %(size)s
"""

# The reference: the same rows and columns as the tick writes, in one statement.
_REFERENCE_SQL = """
UPDATE campaigns_enrollment SET step_id = %(to_step)s, next_run_at = %(until)s
WHERE campaign_id = %(campaign)s AND state = 'active' AND next_run_at <= %(now)s
"""


@benchmark("journey_tick", default_size=100_000,
           help="Advance N due enrollments through a wait into a send step vs one raw UPDATE.")
def journey_tick(*, size: int, log) -> BenchResult:
    if connection.vendor != "postgresql":
        raise SystemExit("journey_tick needs PostgreSQL (DATABASE_URL).")
    _customers_ensure(size, log)
    journey, (first_wait, sending, second_wait) = _journey()
    now = timezone.now()
    _enrollments_reset(journey, first_wait, size, now, log)
    with timed() as ours:
        advanced = journeys_tick(now=now)
    sends = Send.objects.filter(step_send__campaign=journey)
    sent_to = sum(len(ids) for ids in sends.values_list("customer_ids", flat=True))
    log(f"ours: {advanced:,} advanced in {ours.seconds:.1f}s, {sends.count()} sends "
        f"for {sent_to:,} customers")
    at_second_wait = Enrollment.objects.filter(campaign=journey, step=second_wait,
                                               next_run_at=now + second_wait.duration).count()
    if advanced != size or sent_to != size or at_second_wait != size:
        raise AssertionError(f"advanced {advanced}, sent to {sent_to}, waiting {at_second_wait}"
                             f" (expected {size})")
    _sends_forget(journey)
    _enrollments_due_again(journey, first_wait, now)
    with timed() as ref:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_REFERENCE_SQL, {"to_step": second_wait.pk, "campaign": journey.pk,
                                            "until": now + second_wait.duration, "now": now})
            ref_rows = cursor.rowcount
    log(f"reference: {ref_rows:,} rows in {ref.seconds:.1f}s")
    return BenchResult(ours.seconds, "one raw UPDATE of the same rows (step, next_run_at)",
                       ref.seconds, extra={"rows": ref_rows, "tick_batch": TICK_BATCH,
                                           "peak_rss_mb": peak_rss_mb()})


def _customers_ensure(size: int, log) -> None:
    have = Customer.objects.filter(external_id__startswith=PREFIX).count()
    if have >= size:
        return
    log(f"creating {size - have:,} customers (once)")
    with connection.cursor() as cursor:
        for lo in range(have, size, CUSTOMER_CHUNK):
            cursor.execute(_CUSTOMERS_SQL, {"lo": lo, "hi": min(lo + CUSTOMER_CHUNK, size) - 1})
        cursor.execute("ANALYZE audiences_customer")


def _journey() -> tuple[Campaign, list[Step]]:
    journey = Campaign.objects.filter(name=CAMPAIGN_NAME).first()
    if journey is None:
        segment, _ = Segment.objects.get_or_create(name="bench: everyone",
                                                   defaults={"rules": {"all": []}})
        template, _ = Template.objects.get_or_create(
            name="bench: journey", defaults={"title": "Hi {{ customer.first_name }}",
                                             "body": "Your journey goes on"})
        journey = Campaign.objects.create(
            name=CAMPAIGN_NAME, kind=Campaign.Kind.JOURNEY, status=Campaign.Status.RUNNING,
            trigger=Campaign.Trigger.SEGMENT, trigger_segment=segment,
            respect_quiet_hours=False)
        Step.objects.bulk_create([
            Step(campaign=journey, position=0, kind=Step.Kind.WAIT, duration=timedelta(hours=1)),
            Step(campaign=journey, position=1, kind=Step.Kind.SEND, template=template),
            Step(campaign=journey, position=2, kind=Step.Kind.WAIT, duration=timedelta(days=1)),
        ])
    return journey, list(journey.steps.order_by("position"))


def _enrollments_reset(journey: Campaign, first_wait: Step, size: int, now, log) -> None:
    """Exactly ``size`` enrollments, due at the first wait (kept between runs when they fit)."""
    _sends_forget(journey)
    if Enrollment.objects.filter(campaign=journey).count() != size:
        log(f"enrolling {size:,} customers")
        Enrollment.objects.filter(campaign=journey)._raw_delete(Enrollment.objects.db)
        with connection.cursor() as cursor:
            cursor.execute(_ENROLL_SQL, {"campaign": journey.pk, "step": first_wait.pk,
                                         "due": now - timedelta(hours=2), "size": size,
                                         "prefix": f"{PREFIX}%"})
    _enrollments_due_again(journey, first_wait, now)


def _enrollments_due_again(journey: Campaign, first_wait: Step, now) -> None:
    """Back to the first wait, due, then VACUUM: both sides start from the same table."""
    Enrollment.objects.filter(campaign=journey).update(
        step=first_wait, state=Enrollment.State.ACTIVE, next_run_at=now - timedelta(minutes=1),
        waiting_for="", exited_at=None, exit_reason="")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaigns_enrollment")


def _sends_forget(journey: Campaign) -> None:
    """The bench's sends were handed over for fan-out; they are not delivered here."""
    send_ids = list(StepSend.objects.filter(campaign=journey).values_list("send_id", flat=True))
    StepSend.objects.filter(campaign=journey).delete()
    Send.objects.filter(pk__in=send_ids).delete()
