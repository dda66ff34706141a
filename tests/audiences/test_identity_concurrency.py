"""Merges at the same moment (a login retried, two devices logging in): each anonymous
customer is merged once, and nothing deadlocks. Needs PostgreSQL (row locks)."""


import pytest

from audiences.models import Customer, CustomerMerge, Event
from audiences.services_identity import customer_merge
from tests.audiences.identity_kit import person, track
from tests.threads_kit import in_threads

pytestmark = [
    pytest.mark.postgres(reason="concurrent merges need PostgreSQL row locks"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]



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
