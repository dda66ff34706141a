"""Two rebuilds of the same days at once (the beat refresh and a manual rollups_rebuild) must
not both insert them."""

import threading

import pytest
from django.db import connections
from django.db.models import Sum

from analytics.models import DeliveryDay
from analytics.rollups import rollups_rebuild
from tests.analytics.rollup_data import D1, D2, campaign_world


@pytest.mark.postgres(reason="row locks and concurrent transactions")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_rebuilds_of_a_day_leave_it_counted_once():
    world = campaign_world()
    start, errors = threading.Barrier(4), []

    def rebuild():
        try:
            start.wait()
            rollups_rebuild(since=D1, until=D2)
        except Exception as exc:  # reported below: a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rebuild) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    sent = DeliveryDay.objects.filter(campaign_id=world.campaign.pk, status="sent").aggregate(
        n=Sum("deliveries"))["n"]
    assert sent == 6
    assert DeliveryDay.objects.count() == 8

