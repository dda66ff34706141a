"""Several workers tick at once: each enrollment is advanced by exactly one of them, and a
send step sends each customer once. Needs PostgreSQL (row locks, SKIP LOCKED)."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from audiences.models import Customer, Segment
from campaigns.engine.enrollments import enrollments_enter_audience
from campaigns.engine.entry import enrollment_enter
from campaigns.engine.tick import enrollments_advance
from campaigns.models import Campaign, Enrollment, Step
from tests.campaigns.engine_kit import campaign, send, sends_of, template, wait
from tests.threads_kit import in_threads

pytestmark = [
    pytest.mark.postgres(reason="concurrent ticks need PostgreSQL row locks (SKIP LOCKED)"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WORKERS = 3



def test_concurrent_ticks_advance_each_enrollment_once_and_send_once():
    Customer.objects.bulk_create(
        Customer(external_id=f"c{i}", referral_code=f"R{i}", bucket=i % 10_000)
        for i in range(600))
    journey = campaign("Race", steps=[wait(hours=1), send(template()), wait(days=1)],
                       trigger=Campaign.Trigger.SEGMENT,
                       trigger_segment=Segment.objects.create(name="All", rules={"all": []}))
    enrollments_enter_audience(campaign=journey, now=T0)

    def tick_until_done():
        advanced = 0
        while count := enrollments_advance(now=T0 + timedelta(hours=2), limit=25):
            advanced += count
        return advanced

    advanced = in_threads(tick_until_done)
    assert sum(advanced) == 600
    assert sum(1 for a in advanced if a) >= 2, "the workers did not overlap"
    last_wait = journey.steps.get(position=2)
    assert Enrollment.objects.filter(step=last_wait, state="active").count() == 600
    sent_to = Counter(pk for s in sends_of(journey) for pk in s.customer_ids)
    assert len(sent_to) == 600 and set(sent_to.values()) == {1}
    assert {s.step_send.step_id for s in sends_of(journey)} == {
        journey.steps.get(kind=Step.Kind.SEND).pk}


def test_concurrent_entries_never_exceed_max_enrollments():
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"c{i}", referral_code=f"R{i}", bucket=i) for i in range(12))
    journey = campaign("Limited", steps=[wait(days=1)], trigger=Campaign.Trigger.EVENT,
                       trigger_event_name="signup", max_enrollments=5)
    queue = list(customers)
    lock = threading.Lock()

    def enter_some():
        entered = 0
        while True:
            with lock:
                if not queue:
                    return entered
                customer = queue.pop()
            entered += enrollment_enter(campaign=journey, customer=customer) is not None

    assert sum(in_threads(enter_some)) == 5
    assert Enrollment.objects.filter(campaign=journey).count() == 5
