"""Enrollments and conversions outlive an erased customer (customer null, still counted in
reports), and enrollments gain the exit reasons of a merge and of an erasure. On PostgreSQL
dropping NOT NULL only changes the catalogue."""

import django.db.models.deletion
from django.db import migrations, models

from journeyhub.migration_ops import AlterForeignKeyNullable


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0001_initial"),
        ("campaigns", "0004_stepsend_outlives_its_step"),
    ]

    operations = [
        AlterForeignKeyNullable(
            model_name="conversion", name="customer",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                related_name="+", to="audiences.customer"),
        ),
        AlterForeignKeyNullable(
            model_name="enrollment", name="customer",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                related_name="enrollments", to="audiences.customer"),
        ),
        migrations.AlterField(
            model_name="enrollment", name="exit_reason",
            field=models.CharField(blank=True, choices=[
                ("completed", "Reached the end"), ("exit_step", "Exit step"),
                ("goal", "Reached the goal"), ("campaign_ended", "Campaign ended or archived"),
                ("step_removed", "Its step was removed"),
                ("error", "A step failed for it (see the worker log)"),
                ("merged", "The customer was merged into another one, already enrolled"),
                ("erased", "The customer was erased"),
            ], max_length=20),
        ),
    ]
