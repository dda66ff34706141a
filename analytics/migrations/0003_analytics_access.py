from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0002_rollups_per_step"),
    ]

    operations = [
        migrations.CreateModel(
            name="AnalyticsAccess",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
            ],
            options={
                "permissions": [("export_data", "Can export raw data and reports"),
                                ("view_dashboard", "Can see the analytics dashboard")],
                "managed": False,
                "default_permissions": (),
            },
        ),
    ]
