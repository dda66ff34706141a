import json
from datetime import UTC, datetime

import pytest

from journeyhub.api_json import ApiJSONEncoder
from journeyhub.json_deep import DeepSafeDecoder, DeepSafeEncoder, dumps_deep, loads_deep

SAMPLES = [
    {}, [], "", "ünï\u2028\"\\", 0, -12, 3.25, 1e-300, 2**63 - 1, True, False, None,
    {"a": [1, {"b": [None, "c", {}]}, []], "é": {"x": -0.5}, "B": 1},
    [[[]], [{}], {"k": [[1, 2], [3]]}],
]


@pytest.mark.parametrize("value", SAMPLES)
@pytest.mark.parametrize("indent", [None, 0, 2])
@pytest.mark.parametrize(("ensure_ascii", "sort_keys"), [(True, False), (False, True)])
def test_dumps_deep_writes_what_json_dumps_writes(value, indent, ensure_ascii, sort_keys):
    options = {"indent": indent, "ensure_ascii": ensure_ascii, "sort_keys": sort_keys}

    assert dumps_deep(value, **options) == json.dumps(value, **options)


@pytest.mark.parametrize("value", SAMPLES)
@pytest.mark.parametrize("separators", [None, (",", ":")])
def test_loads_deep_reads_what_json_loads_reads(value, separators):
    text = json.dumps(value, separators=separators, indent=None if separators else 1)

    assert loads_deep(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "[1,]", '{"a" 1}', "[1 2]", "nul", '{"a": 1}x', "[",
                                  '{"a":', "[-]", "01", "{1: 2}"])
def test_loads_deep_refuses_what_is_not_json(text):
    with pytest.raises(json.JSONDecodeError):
        loads_deep(text)


def test_a_hundred_thousand_levels_round_trip_without_recursion():
    text = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"

    value = json.loads(text, cls=DeepSafeDecoder)

    assert json.dumps(value, cls=DeepSafeEncoder) == text


def test_the_api_encoder_falls_back_keeping_its_separators_and_default():
    deep: list = []
    for _ in range(5000):
        deep = [deep]

    text = json.dumps({"at": datetime(2026, 1, 2, tzinfo=UTC), "v": deep}, cls=ApiJSONEncoder,
                      separators=(",", ":"))

    assert text.startswith('{"at":"2026-01-02T00:00:00Z","v":[[[')
    assert text.endswith("]]]}") and " " not in text
