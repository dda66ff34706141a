"""Batches at the same moment that name the same customers in opposite orders (two backends, a
retry): each lands, none fails on a deadlock. Needs PostgreSQL (row locks)."""

import pytest

from audiences.models import Customer
from notifications.models import Device
from onboarding.services import customers_batch_upsert
from tests.threads_kit import in_threads

pytestmark = [
    pytest.mark.postgres(reason="concurrent batches need PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
FCM = "race-{:04d}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9Fq3x"


def items(order, plan: str) -> list[dict]:
    return [{"external_id": f"c-{i}", "attributes": {"plan": plan},
             "devices": [{"kind": "fcm", "token": FCM.format(i), "platform": "android"}]}
            for i in order]


def test_overlapping_batches_in_opposite_orders_all_land():
    customers_batch_upsert(items=items(range(300), "free"))  # known customers to update
    forward, backward = list(range(600)), list(reversed(range(600)))
    batches = iter([items(forward, "pro"), items(backward, "pro"), items(forward, "pro")])

    results = in_threads(lambda: customers_batch_upsert(items=next(batches)), count=3)

    assert all(r["status"] in ("created", "updated", "unchanged") for run in results for r in run)
    assert Customer.objects.filter(external_id__startswith="c-").count() == 600
    assert all(attributes == {"plan": "pro"}
               for attributes in Customer.objects.values_list("attributes", flat=True))
    assert Device.objects.count() == 600
