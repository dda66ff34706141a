from django.db import migrations

TOPICS = [
    ("transactional", "Transactional", "Order and account updates the customer asked for."),
    ("offers", "Offers", "Discounts, promotions and limited-time offers."),
    ("content", "Content", "Guides, tips and news."),
]

STAGE_RULES = [
    # name, kind, event_name, first_time_only, inactivity_days, from_stages, to_stage, priority
    ("First app open", "event", "app_open", True, None, ["awareness"], "engagement", 10),
    ("Purchase", "event", "purchase", False, None,
     ["awareness", "engagement", "retention"], "conversion", 20),
    ("Referral sent", "event", "referral_sent", False, None, [], "advocacy", 30),
    ("Churn risk", "inactivity", "", False, 30,
     ["engagement", "conversion", "advocacy"], "retention", 40),
]


def create_defaults(apps, schema_editor):
    Topic = apps.get_model("audiences", "Topic")
    StageRule = apps.get_model("audiences", "StageRule")
    for key, name, description in TOPICS:
        Topic.objects.get_or_create(key=key, defaults={"name": name, "description": description})
    if StageRule.objects.exists():
        return
    for name, kind, event_name, first, days, from_stages, to_stage, priority in STAGE_RULES:
        StageRule.objects.create(
            name=name, kind=kind, event_name=event_name, first_time_only=first,
            inactivity_days=days, from_stages=from_stages, to_stage=to_stage, priority=priority,
        )


class Migration(migrations.Migration):
    dependencies = [("audiences", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
