"""Segments get a key: the name the API, the send command and other segments' rules use.
Existing segments take a key made from their name (``Lisbon foodies`` -> ``lisbon-foodies``),
with ``-2``, ``-3``... when two names give the same key, and ``segment-<id>`` when a name has
no letters or digits to make one of."""

from django.db import migrations, models
from django.utils.text import slugify

KEY_MAX = 50


def _key_for(name: str, pk: int, taken: set[str]) -> str:
    base = slugify(name)[:KEY_MAX].strip("-") or f"segment-{pk}"
    key, number = base, 1
    while key in taken:
        number += 1
        suffix = f"-{number}"
        key = f"{base[:KEY_MAX - len(suffix)]}{suffix}"
    return key


def fill_keys(apps, schema_editor):
    Segment = apps.get_model("audiences", "Segment")
    taken: set[str] = set()
    for segment in Segment.objects.order_by("pk").only("pk", "name"):
        segment.key = _key_for(segment.name, segment.pk, taken)
        taken.add(segment.key)
        segment.save(update_fields=["key"])


class Migration(migrations.Migration):
    dependencies = [("audiences", "0002_default_topics_and_stage_rules")]

    operations = [
        migrations.AddField(
            model_name="segment", name="key",
            field=models.SlugField(db_index=False, max_length=50, null=True),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="segment", name="key",
            field=models.SlugField(
                max_length=50, unique=True,
                help_text="How the API, the send command and other segments' rules name this "
                          "segment: letters, digits, - and _. Renaming it breaks code that uses "
                          "the old key.",
            ),
        ),
    ]
