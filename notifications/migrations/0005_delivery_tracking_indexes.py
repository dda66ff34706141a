"""Indexes for the analytics rollup refresh: late receipts and opens (partial, so the fan-out's
inserts, NULL there, skip them), batches claimed since a moment, and sends started or finished
since then.

On PostgreSQL they are built CONCURRENTLY, so a delivery log of 100M rows keeps taking
inserts and updates meanwhile (a plain CREATE INDEX would block writes for minutes). That
needs a migration outside a transaction. If a concurrent build fails (a deadlock, a cancel),
PostgreSQL leaves an INVALID index: DROP INDEX it and run migrate again."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, a plain CREATE INDEX elsewhere (SQLite)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("notifications", "0004_send_kinds"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(condition=models.Q(("received_at__isnull", False)),
                               fields=["received_at"], name="delivery_received_at"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="delivery",
            index=models.Index(condition=models.Q(("opened_at__isnull", False)),
                               fields=["opened_at"], name="delivery_opened_at"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="send",
            index=models.Index(fields=["started_at"], name="send_started_at"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="send",
            index=models.Index(fields=["finished_at"], name="send_finished_at"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="deliverybatch",
            index=models.Index(fields=["claimed_at"], name="batch_claimed_at"),
        ),
    ]
