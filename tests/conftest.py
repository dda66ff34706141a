"""Fixtures any test may use. Keep this small and generic; an area's own fixtures live in
tests/<area>/conftest.py."""

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache, so throttle counters and cached lookups from one
    test cannot decide another's outcome."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def customer_factory(db):
    """``customer_factory("ext-1", first_name="Ana")`` stores a customer through the service."""
    from audiences.services import customer_upsert

    def make(external_id: str, **fields):
        customer, _ = customer_upsert(external_id=external_id, **fields)
        return customer

    return make
