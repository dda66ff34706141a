"""Migration 0003 gives existing segments keys made from their names, unique."""

from importlib import import_module

migration = import_module("audiences.migrations.0003_segment_key")


def keys_for(*names: str) -> list[str]:
    taken: set[str] = set()
    keys = []
    for pk, name in enumerate(names, start=1):
        keys.append(migration._key_for(name, pk, taken))
        taken.add(keys[-1])
    return keys


def test_names_become_slugs_and_clashes_get_a_number():
    assert keys_for("Lisbon foodies", "lisbon foodies!", "Lisbon  Foodies") == [
        "lisbon-foodies", "lisbon-foodies-2", "lisbon-foodies-3"]


def test_a_name_without_letters_or_digits_takes_its_id():
    assert keys_for("Everyone", "★★★") == ["everyone", "segment-2"]


def test_long_names_fit_the_key_even_with_a_number():
    keys = keys_for("x" * 100, "x" * 100)

    assert keys == ["x" * 50, "x" * 48 + "-2"]
