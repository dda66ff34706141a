"""The Marketer, Analyst and Admin groups (defined in analytics.roles, re-applied after every
migrate so later models reach them too)."""

from django.db import migrations


def roles_create(apps, schema_editor):
    from analytics.roles import permissions_create_all, roles_apply

    using = schema_editor.connection.alias
    permissions_create_all(apps=apps, using=using)
    roles_apply(apps=apps, using=using)


def roles_delete(apps, schema_editor):
    from analytics.roles import ADMIN, ANALYST, MARKETER

    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(
        name__in=[MARKETER, ANALYST, ADMIN]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0003_analytics_access"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audiences", "0002_default_topics_and_stage_rules"),
        ("notifications", "0004_send_kinds"),
        ("campaigns", "0001_initial"),
        ("journeyhub", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, roles_delete)]
