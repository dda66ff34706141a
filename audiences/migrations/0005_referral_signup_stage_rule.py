from django.db import migrations

RULE = {"name": "Referral sign-up", "kind": "event", "event_name": "referral_signup",
        "first_time_only": False, "from_stages": [], "to_stage": "advocacy", "priority": 30}


def add_rule(apps, schema_editor):
    """A friend signing up with a customer's code moves the customer to advocacy (as sending a
    referral does), unless a rule for referral_signup exists already."""
    StageRule = apps.get_model("audiences", "StageRule")
    if not StageRule.objects.filter(event_name=RULE["event_name"]).exists():
        StageRule.objects.create(**RULE)


def remove_rule(apps, schema_editor):
    apps.get_model("audiences", "StageRule").objects.filter(
        name=RULE["name"], event_name=RULE["event_name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("audiences", "0004_customer_merge_erasure")]
    operations = [migrations.RunPython(add_rule, remove_rule)]
