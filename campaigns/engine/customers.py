"""What journey steps read and change on customers, for a whole hop of them at once.

audiences writes customers one at a time (customer_upsert, customer_stage_set); a journey step
changes thousands in one tick, so these are their set-based equivalents: one UPDATE per step,
and for stages the same StageTransition rows and stage_changed signals as audiences records."""

import json

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import Customer, Stage, StageTransition
from audiences.signals import stage_changed
from notifications.selectors import customer_time_zone


def customers_bucket_and_zone(ids: list[int]) -> dict[int, tuple[int, str]]:
    """Customer id -> (bucket, time zone): what splits, variants and local times read. The
    zone is the customer's delivery zone (notifications.selectors.customer_time_zone)."""
    customers = Customer.objects.annotate(jh_zone=customer_time_zone())
    if connection.vendor != "postgresql":
        return {pk: (bucket, zone) for pk, bucket, zone in customers.filter(
            pk__in=ids).values_list("pk", "bucket", "jh_zone")}
    # One array parameter, not 10,000.
    sql, params = customers.values_list("pk", "bucket", "jh_zone").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS jh_customers(id, bucket, zone) "
                       f"WHERE id = ANY(%s)", [*params, list(set(ids))])
        return {pk: (bucket, zone) for pk, bucket, zone in cursor.fetchall()}


def customers_attribute_set(*, customer_ids: list[int], key: str, value) -> int:
    """Set one custom attribute on these customers (a None value removes it)."""
    if not customer_ids:
        return 0
    table = Customer._meta.db_table
    now = timezone.now()
    if connection.vendor == "postgresql":
        if value is None:
            expression, params = "attributes - %s", [key]
        else:
            expression, params = "attributes || jsonb_build_object(%s, %s::jsonb)", \
                [key, json.dumps(value)]
        sql = f"UPDATE {table} SET attributes = {expression}, updated_at = %s WHERE id = ANY(%s)"
        params += [now, list(customer_ids)]
    else:
        path = "$." + json.dumps(key)  # a quoted member name: any key is safe
        expression = "json_remove(attributes, %s)" if value is None else \
            "json_set(attributes, %s, json(%s))"
        params = [path] if value is None else [path, json.dumps(value)]
        marks = ", ".join("%s" for _ in customer_ids)
        sql = f"UPDATE {table} SET attributes = {expression}, updated_at = %s WHERE id IN ({marks})"
        params += [now, *customer_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def customers_stage_set(*, customer_ids: list[int], stage: str, cause: str) -> int:
    """Move these customers to ``stage``: one UPDATE, one transition row each, and
    ``stage_changed`` for each after commit. Customers already there are left alone."""
    if stage not in Stage.values or not customer_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        movable = list(Customer.objects.select_for_update().filter(pk__in=customer_ids)
                       .exclude(stage=stage).order_by("pk")  # one lock order: no deadlocks
                       .values_list("pk", "stage"))
        if not movable:
            return 0
        Customer.objects.filter(pk__in=[pk for pk, _ in movable]).update(
            stage=stage, stage_changed_at=now)
        transitions = StageTransition.objects.bulk_create(
            StageTransition(customer_id=pk, from_stage=old, to_stage=stage, at=now, cause=cause)
            for pk, old in movable)
        transaction.on_commit(lambda: _announce(transitions))
    return len(movable)


def _announce(transitions: list[StageTransition]) -> None:
    for transition in transitions:
        stage_changed.send(
            sender=Customer, customer_id=transition.customer_id,
            from_stage=transition.from_stage, to_stage=transition.to_stage,
            cause=transition.cause, transition_id=transition.pk,
        )
