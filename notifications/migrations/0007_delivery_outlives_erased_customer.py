"""A delivery outlives an erased customer: its customer becomes null (the row keeps counting in
reports), ``erasure_id`` names the erasure so the rollups still count that customer once per
send, and a row still queued when its customer is erased is skipped as ``customer_erased``.

Dropping NOT NULL only changes the catalogue on PostgreSQL, and the new column is nullable
without a default: neither rewrites nor scans the log."""

import django.db.models.deletion
from django.db import migrations, models

from journeyhub.migration_ops import AlterForeignKeyNullable


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0001_initial"),
        ("notifications", "0006_delivery_created_at_brin"),
    ]

    operations = [
        AlterForeignKeyNullable(
            model_name="delivery", name="customer",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                related_name="+", to="audiences.customer"),
        ),
        migrations.AddField(
            model_name="delivery", name="erasure_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="delivery", name="reason",
            field=models.CharField(blank=True, choices=[
                ("frequency_capped", "Frequency capped"),
                ("quiet_hours_deferred", "Deferred to the end of quiet hours"),
                ("opted_out", "Opted out"), ("no_active_device", "No active device"),
                ("expired", "Expired before sending"),
                ("render_error", "Template failed to render"),
                ("dead_token", "Token no longer valid"),
                ("provider_rejected", "Refused by the provider"),
                ("retries_exhausted", "Temporary errors, gave up"),
                ("send_cancelled", "Send cancelled"),
                ("customer_erased", "Customer erased before sending"),
            ], max_length=30),
        ),
    ]
