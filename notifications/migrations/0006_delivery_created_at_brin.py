"""A BRIN index on the delivery log's created_at, on PostgreSQL, for the analytics rollups:
rebuilding one day reads that day's part of the log instead of all of it.

BRIN, not a B-tree: it keeps one summary (min, max) per 128 pages, a few kB for 100M rows, and
a fan-out's insert adds nothing to it (new pages are summarised later, by autovacuum; with
autosummarize on, as soon as a range fills). It works because the fan-out appends each send's
rows together with one created_at, so the log is written in created_at order. Not declared in
Delivery.Meta: SQLite has no BRIN, and a development database is small enough to scan."""

from django.db import migrations

INDEX = "delivery_created_at_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON notifications_delivery "
            "USING brin (created_at) WITH (autosummarize = on)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("notifications", "0005_delivery_tracking_indexes"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
