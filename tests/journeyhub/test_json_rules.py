import pytest
from django.core.exceptions import ValidationError

from journeyhub.json_rules import JSON_MAX_DEPTH, json_problem, validate_storable_json


def nested(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    {}, [], "text", 1, -1.5, True, None, {"a": [1, {"b": "c"}]}, 2**63 - 1, -(2**63), 9.2e18,
    1e-300,
    nested(JSON_MAX_DEPTH),
])
def test_storable_values_have_no_problem(value):
    assert json_problem(value) is None


@pytest.mark.parametrize(("value", "path"), [
    ({"a": float("inf")}, "a"),
    ({"a": [1, float("-inf")]}, "a[1]"),
    ({"a": {"b": float("nan")}}, "a.b"),
    ({"n": 2**63}, "n"),
    ({"n": -(2**63) - 1}, "n"),
    ({"f": 1e19}, "f"),
    ({"s": "a\x00b"}, "s"),
    ({"s": ["\ud800"]}, "s[0]"),
    ({"k\x00": 1}, "value"),
    (float("inf"), "value"),
])
def test_each_problem_is_found_with_its_path(value, path):
    where, reason = json_problem(value)

    assert where == path
    assert reason


def test_one_level_past_the_limit_is_refused():
    where, reason = json_problem({"deep": nested(JSON_MAX_DEPTH)})

    assert reason == f"Nested more than {JSON_MAX_DEPTH} levels deep."


def test_a_value_far_deeper_than_the_recursion_limit_is_walked_without_recursion():
    assert json_problem(nested(100_000), max_depth=200_000) is None


def test_the_validator_names_the_path_in_its_message():
    with pytest.raises(ValidationError) as error:
        validate_storable_json({"plan": {"price": float("inf")}})

    assert error.value.messages[0].startswith("plan.price: ")
