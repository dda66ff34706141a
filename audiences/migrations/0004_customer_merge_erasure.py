"""Identity: merges of anonymous customers into known ones, erasures, stage transitions that
outlive an erased customer (so the journey reports keep counting them), and external ids that
do not end like the API paths that follow them."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import audiences.models

from journeyhub.migration_ops import AlterForeignKeyNullable


class Migration(migrations.Migration):
    dependencies = [("audiences", "0003_segment_key")]

    operations = [
        migrations.CreateModel(
            name="CustomerMerge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("anonymous_external_id", models.CharField(db_index=True, max_length=255)),
                ("anonymous_customer_id", models.BigIntegerField(db_index=True)),
                ("moved", models.JSONField(default=dict,
                                           help_text="How many rows of each kind moved.")),
                ("merged_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("customer", models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE, related_name="merges",
                    to="audiences.customer")),
            ],
        ),
        migrations.CreateModel(
            name="CustomerErasure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("external_id_hash", models.CharField(
                    db_index=True, editable=False, max_length=64,
                    help_text='HMAC-SHA256 of the external id, keyed by SECRET_KEY: it answers '
                              '"was this id erased?" for someone who has the id, and gives the '
                              'id to no one.')),
                ("erased_by", models.CharField(max_length=200)),
                ("erased_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("removed", models.JSONField(default=dict,
                                             help_text="Rows removed or anonymised, by kind.")),
            ],
            options={"indexes": [models.Index(fields=["erased_at"],
                                              name="audiences_c_erased__350732_idx")]},
        ),
        migrations.AlterField(  # a validator only: no change in the database
            model_name="customer", name="external_id",
            field=models.CharField(max_length=255, unique=True,
                                   validators=[audiences.models.validate_external_id]),
        ),
        AlterForeignKeyNullable(
            model_name="stagetransition", name="customer",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                related_name="transitions", to="audiences.customer"),
        ),
    ]
