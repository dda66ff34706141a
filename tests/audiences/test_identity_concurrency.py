"""Merges at the same moment (a login retried, two devices logging in): each anonymous
customer is merged once, and nothing deadlocks. Needs PostgreSQL (row locks)."""

import threading

import pytest
from django.db import connection

from audiences.models import Customer, CustomerMerge, Event
from audiences.services_identity import customer_merge
from tests.audiences.identity_kit import person, track

pytestmark = [
    pytest.mark.postgres(reason="concurrent merges need PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def in_threads(work, count: int = 3) -> list:
    """Run ``work()`` in ``count`` threads started together, each on its own connection."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run():
        try:
            barrier.wait()
            results.append(work())
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def test_the_same_merge_at_once_merges_once_and_the_others_see_it_done():
    track(person("anon-1"), "screen_view", "screen_view")

    results = in_threads(lambda: customer_merge(external_id="user-1",
                                                anonymous_external_id="anon-1"))

    assert sorted(result.already_merged for result in results) == [False, True, True]
    assert CustomerMerge.objects.count() == 1
    assert Event.objects.filter(customer__external_id="user-1").count() == 2


def test_two_anonymous_customers_merging_into_one_new_customer_both_land():
    for name in ("anon-1", "anon-2"):
        track(person(name), "screen_view")
    names = iter(["anon-1", "anon-2"])

    in_threads(lambda: customer_merge(external_id="user-1", anonymous_external_id=next(names)),
               count=2)

    assert list(Customer.objects.values_list("external_id", flat=True)) == ["user-1"]
    assert Event.objects.filter(customer__external_id="user-1").count() == 2
