"""A send's rows still queued at its expiry are skipped then, to the second, by its own task in
a real worker process (no beat, no minute sweep running): scheduled when the send is created
near its expiry, or by a sweep once a far expiry comes near."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time

from notifications.models import Delivery, Send, Template
from notifications.services import deliveries_sweep, send_create, send_fan_out
from tests.notifications.test_controls import outcomes, person, send_due_batches
from tests.notifications.test_worker_faults import redis_broker  # noqa: F401  (a fixture)
from tests.workers import Worker

pytestmark = [pytest.mark.broker,
              pytest.mark.postgres(reason="the worker process shares the test database")]


def wait_until_done(sends, worker, seconds=60):
    deadline = time.monotonic() + seconds
    while Send.objects.filter(pk__in=[s.pk for s in sends]).exclude(status="done").exists():
        assert time.monotonic() < deadline, worker.log()[-3000:]
        time.sleep(0.2)
    for send in sends:
        send.refresh_from_db()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_queued_rows_are_skipped_at_the_expiry_by_its_own_task(redis_broker, tmp_path, settings):  # noqa: F811
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    offer = Template.objects.create(name="Offer", title="Hi", body="20% off")
    customers = [person(f"c{i:02}", zone="UTC") for i in range(20)]
    worker = Worker(redis_broker, "default", tmp_path / "expiry.log")
    try:
        worker.wait_until_ready()
        expires_at = timezone.now() + timedelta(seconds=8)
        # Near its expiry: scheduled at creation. 10 go now, 10 wait a minute (the throttle).
        soon = send_create(template=offer, customer_ids=[c.pk for c in customers],
                           throttle_per_minute=10, expires_at=expires_at,
                           respect_quiet_hours=False)
        send_fan_out(send_id=soon.pk)
        send_due_batches(soon)
        # Created two minutes before its expiry: the sweep schedules it once it is near.
        with freeze_time(expires_at - timedelta(minutes=2)):
            later = send_create(template=offer, customer_ids=[c.pk for c in customers[:5]],
                                expires_at=expires_at, respect_quiet_hours=False)
            send_fan_out(send_id=later.pk)
        deliveries_sweep()  # nobody sends its rows: no worker takes the send queue
        assert outcomes(soon) == {("sent", ""): 10, ("queued", ""): 10}
        assert outcomes(later) == {("queued", ""): 5}

        wait_until_done([soon, later], worker)
    finally:
        worker.stop()

    assert outcomes(soon) == {("sent", ""): 10, ("skipped", "expired"): 10}
    assert outcomes(later) == {("skipped", "expired"): 5}
    for send in (soon, later):  # at the expiry, not at the next minute's sweep
        assert expires_at <= send.finished_at < expires_at + timedelta(seconds=5)
    assert not Delivery.objects.filter(status="queued").exists()
