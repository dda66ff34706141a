"""Fixtures any test may use. Keep this small and generic; an area's own fixtures live in
tests/<area>/conftest.py."""

import pytest
from django.core.cache import cache
from django.db import connection


def pytest_runtest_setup(item):
    """``@pytest.mark.postgres(reason="...")``: the test needs PostgreSQL; elsewhere (SQLite,
    the zero-setup default) it is skipped, saying why."""
    marker = item.get_closest_marker("postgres")
    if marker and connection.vendor != "postgresql":
        why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        pytest.skip(f"needs PostgreSQL: {why}" if why else "needs PostgreSQL")


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
