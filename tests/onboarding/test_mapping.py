"""--map files: one of their columns feeding several of ours, and values mapped to nothing."""

import io
import json

import pytest

from onboarding.files import FileProblem, Mapping, csv_lines, jsonl_lines

TOKEN = "fcm-token-1:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9"
SPLIT = Mapping(
    columns={"os": ["device_kind", "device_platform"], "lang": ["locale", "device_locale"]},
    values={"device_kind": {"ios": "apns", "android": "fcm", "web": None},
            "device_platform": {"ios": "ios", "android": "android"},
            "locale": {"unknown": None}},
)


def items(text: str, mapping: Mapping) -> list:
    return [(line.item, line.error) for line in csv_lines(io.BytesIO(text.encode()), mapping)]


def test_one_column_feeds_several_of_ours_each_with_its_values():
    (item, error), = items(f"external_id,os,device_token,lang\nu-1,android,{TOKEN},pt\n",
                           SPLIT)

    assert error is None
    assert item == {"external_id": "u-1", "locale": "pt",
                    "devices": [{"kind": "fcm", "platform": "android", "token": TOKEN,
                                 "locale": "pt"}]}


def test_a_device_value_mapped_to_null_leaves_the_line_without_its_device():
    (item, error), = items(f"external_id,os,device_token,lang\nu-1,web,{TOKEN},pt\n", SPLIT)

    assert error is None and item == {"external_id": "u-1", "locale": "pt"}


def test_a_customer_value_mapped_to_null_is_left_out_as_an_empty_cell():
    (item, _), = items(f"external_id,os,device_token,lang\nu-1,ios,{'ab' * 32},unknown\n",
                       SPLIT)

    assert "locale" not in item
    assert item["devices"][0] == {"kind": "apns", "platform": "ios", "token": "ab" * 32,
                                  "locale": "unknown"}  # device_locale has no values of its own


def test_a_column_fed_twice_is_refused_in_the_header():
    mapping = Mapping(columns={"a": ["locale", "device_locale"], "b": "locale"})

    with pytest.raises(FileProblem, match="column 'locale' appears twice"):
        items("external_id,a,b\nu-1,en,pt\n", mapping)


def test_json_lines_follow_the_same_mapping():
    mapping = Mapping(columns={"uid": "external_id", "lang": ["locale"], "tz": "time_zone"},
                      values={"locale": {"xx": None}, "time_zone": {"CET": "Europe/Paris"}})
    lines = [{"uid": "u-1", "lang": "xx", "tz": "CET"}, {"uid": "u-2", "lang": "fr"}]
    text = "".join(json.dumps(line) + "\n" for line in lines)

    first, second = jsonl_lines(io.BytesIO(text.encode()), mapping)

    assert first.item == {"external_id": "u-1", "time_zone": "Europe/Paris"}
    assert second.item == {"external_id": "u-2", "locale": "fr"}


@pytest.mark.parametrize("data, message", [
    ({"columns": {"a": 3}}, "maps to a column name, a list of them, or null"),
    ({"columns": {"a": []}}, "maps to a column name, a list of them, or null"),
    ({"columns": {"a": ["locale", None]}}, "maps to a column name, a list of them, or null"),
    ({"values": {"locale": ["en"]}}, "maps their values to ours"),
    ({"values": {"push_opt_out": {"t": True}}}, "maps their values to ours, as text"),
])
def test_a_mapping_file_of_the_wrong_shape_is_refused(tmp_path, data, message):
    path = tmp_path / "map.json"
    path.write_text(json.dumps(data))

    with pytest.raises(FileProblem, match=message):
        Mapping.load(str(path))


def test_an_unknown_preset_name_is_reported_as_a_missing_file():
    with pytest.raises(FileProblem, match="cannot be read"):
        Mapping.load("no-such-preset")
