"""import_customers: customers and devices from CSV and JSON Lines files, through the command."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audiences.models import Customer, StageTransition, Topic, TopicOptOut
from notifications.models import Device

pytestmark = pytest.mark.django_db

FCM = "fcm-{}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9Fq3x"
APNS = "ab" * 32
HEADER = ("external_id,first_name,email,time_zone,stage,attr.plan,attr.visits:number,"
          "attr.vip:boolean,opted_out_topics,push_opt_out,device_kind,device_token,"
          "device_platform")


def run(path, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_customers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def csv_file(tmp_path, *lines, header=HEADER, name="customers.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def news(db):
    return Topic.objects.get_or_create(key="news", defaults={"name": "News"})[0]


def test_a_csv_brings_customers_attributes_consent_and_devices(tmp_path, news):
    path = csv_file(
        tmp_path,
        f"u-1,Ana,ana@example.com,Europe/Lisbon,engagement,pro,3,yes,news,0,fcm,"
        f"{FCM.format(1)},android",
        f"u-2,Ben,,,,free,,,,1,apns,{APNS},",
    )

    out, err = run(path)

    assert "Customers were: 2 created, 0 updated, 0 unchanged." in out
    assert "Devices were: 2 created" in out and "Lines refused: 0 of 2." in out
    assert "lines/s" in err
    ana = Customer.objects.get(external_id="u-1")
    assert (ana.first_name, ana.email, ana.time_zone, ana.stage) == (
        "Ana", "ana@example.com", "Europe/Lisbon", "engagement")
    assert ana.attributes == {"plan": "pro", "visits": 3, "vip": True}
    assert list(ana.topic_opt_outs.values_list("topic__key", flat=True)) == ["news"]
    assert Device.objects.get(customer=ana).token == FCM.format(1)
    ben = Customer.objects.get(external_id="u-2")
    assert ben.push_opt_out and ben.locale == "en" and ben.time_zone == "UTC"
    assert Device.objects.get(customer=ben).platform == "ios"


def test_the_same_file_twice_changes_nothing(tmp_path, news):
    path = csv_file(tmp_path, f"u-1,Ana,,,retention,pro,,,news,,fcm,{FCM.format(1)},android")
    run(path)
    before = (list(Customer.objects.values()), list(Device.objects.values()),
              StageTransition.objects.count())

    out, _ = run(path)

    assert "0 created, 0 updated, 1 unchanged" in out
    assert (list(Customer.objects.values()), list(Device.objects.values()),
            StageTransition.objects.count()) == before


def test_an_existing_customer_keeps_what_the_file_leaves_empty(tmp_path, customer_factory,
                                                               news):
    customer_factory("u-1", first_name="Ana", email="ana@example.com",
                     attributes={"plan": "pro", "city": "Porto"}, opted_out_topics=["news"])
    path = csv_file(tmp_path, "u-1,,,,conversion,free,,,,,,,")

    out, _ = run(path)

    assert "0 created, 1 updated" in out
    ana = Customer.objects.get(external_id="u-1")
    assert (ana.first_name, ana.email, ana.stage) == ("Ana", "ana@example.com", "conversion")
    assert ana.attributes == {"plan": "free", "city": "Porto"}
    assert TopicOptOut.objects.filter(customer=ana).count() == 1  # an empty cell: no change
    move = StageTransition.objects.get(customer=ana)
    assert (move.from_stage, move.to_stage, move.cause) == (
        "awareness", "conversion", "Imported from a file")


def test_a_dash_opts_back_in_to_every_topic(tmp_path, customer_factory, news):
    customer_factory("u-1", opted_out_topics=["news"])

    run(csv_file(tmp_path, "u-1,,,,,,,,-,,,,"))

    assert not TopicOptOut.objects.exists()


def test_bad_lines_are_reported_with_their_number_and_the_good_ones_kept(tmp_path):
    path = csv_file(
        tmp_path,
        "u-1,Ana,not-an-email,Mars/Base,,,,,,,,,",
        "u-2,Ben,,,,,lots,,,,,,",
        "u-3,Cid,,,,,,,,,apns,nothex,",
        "u-4,Dee,,,,,,,,maybe,,,",
        "u-5,Eve,,,stage-x,,,,,,,,",
        "u-6,Fay,,,,,,,nosuchtopic,,,,",
        "u-7,Gus,,,,,,,,,,,",
    )

    out, _ = run(path)

    assert out.splitlines()[:6] == [
        "line 2: email: Enter a valid email address.; time_zone: 'Mars/Base' is not an IANA "
        "time zone (e.g. Europe/Lisbon).",
        "line 3: attr.visits:number: 'lots' is not a number.",
        "line 4: device_token: An APNs token is at least 64 hexadecimal digits (0-9, a-f; at "
        "most 200).",
        "line 5: push_opt_out: 'maybe' is not a yes/no value: use 1/0, true/false or yes/no.",
        "line 6: stage: 'stage-x' is not one of: advocacy, awareness, conversion, engagement, "
        "retention.",
        "line 7: opted_out_topics: Unknown topics: 'nosuchtopic'.",
    ]
    assert "Lines refused: 6 of 7." in out
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["u-7"]


def test_atomic_writes_nothing_when_a_line_is_refused_and_runs_again_once_fixed(tmp_path):
    bad = csv_file(tmp_path, "u-1,Ana,,,,,,,,,,,", "u-2,Ben,,Mars/Base,,,,,,,,,")

    out, _ = run(bad, "--atomic")

    assert "line 3: time_zone" in out and "--atomic: nothing was written" in out
    assert not Customer.objects.exists()
    fixed = csv_file(tmp_path, "u-1,Ana,,,,,,,,,,,", "u-2,Ben,,UTC,,,,,,,,,")
    out, _ = run(fixed, "--atomic")
    assert "2 created" in out and Customer.objects.count() == 2


def test_a_dry_run_reports_and_writes_nothing(tmp_path, customer_factory):
    customer_factory("u-1", first_name="Ana")
    path = csv_file(tmp_path, "u-1,Anabela,,,,,,,,,,,", "u-2,Ben,,,,,,,,,,,",
                    "u-3,,bad,,,,,,,,,,")

    out, _ = run(path, "--dry-run")

    assert "Customers would be: 1 created, 1 updated, 0 unchanged." in out
    assert "line 4: email" in out and "Dry run: nothing was written." in out
    assert list(Customer.objects.values_list("external_id", "first_name")) == [("u-1", "Ana")]


def test_a_customer_on_several_lines_adds_devices_but_may_not_disagree(tmp_path):
    path = csv_file(
        tmp_path,
        f"u-1,Ana,,,,,,,,,fcm,{FCM.format(1)},android",
        f"u-1,,,,,,,,,,apns,{APNS},",
        "u-1,Anna,,,,,,,,,,,",
        f"u-2,Ben,,,,,,,,,fcm,{FCM.format(1)},android",
    )

    out, _ = run(path)

    assert out.splitlines()[:2] == [
        "line 4: external_id: This customer is on line 2 with other values; further lines of "
        "a customer may only add devices.",
        "line 5: device_token: The same token is on line 2.",
    ]
    ana = Customer.objects.get(external_id="u-1")
    assert ana.first_name == "Ana"
    assert sorted(Device.objects.filter(customer=ana).values_list("kind", flat=True)) == [
        "apns", "fcm"]
    assert not Customer.objects.filter(external_id="u-2").exists()


def test_a_known_token_moves_to_the_customer_of_the_file(tmp_path, customer_factory):
    run(csv_file(tmp_path, f"old,,,,,,,,,,apns,{APNS},"))

    out, _ = run(csv_file(tmp_path, f"new,,,,,,,,,,apns,{APNS},"))

    assert "1 updated (1 moved from another customer)" in out
    assert Device.objects.get().customer.external_id == "new"


def test_json_lines_with_several_devices_and_null_deleting_an_attribute(tmp_path,
                                                                        customer_factory):
    customer_factory("u-1", attributes={"plan": "pro", "city": "Porto"})
    path = tmp_path / "customers.jsonl"
    lines = [
        {"external_id": "u-1", "attributes": {"city": None},
         "devices": [{"kind": "apns", "token": APNS},
                     {"kind": "fcm", "token": FCM.format(1), "platform": "android"}]},
        {"external_id": "u-2", "stage": "advocacy", "created_at": "2025-01-31T10:00:00Z"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines)
                    + '\n{"external_id": "u-3", "attributes": {"n": 1e999}}\n[1]\n{oops\n')

    out, _ = run(path)

    assert not [line for line in out.splitlines() if line.startswith(("line 1:", "line 2:"))]
    assert "line 3: attributes.n: Numbers must be finite" in out
    assert "line 4: Each line must be one JSON object." in out
    assert "line 5: Not valid JSON" in out
    assert Customer.objects.get(external_id="u-1").attributes == {"plan": "pro"}
    assert Device.objects.filter(customer__external_id="u-1").count() == 2
    u2 = Customer.objects.get(external_id="u-2")
    assert u2.stage == "advocacy" and u2.created_at.year == 2025


@pytest.mark.parametrize("header, message", [
    ("external_id,emial", "Line 1 (the header): unknown column 'emial'."),
    ("first_name", "Line 1 (the header): there is no external_id column."),
    ("external_id,email,email", "column 'email' appears twice"),
    ("external_id,attr.x:date", "the type is one of text, number, boolean, json"),
])
def test_a_header_problem_refuses_the_whole_file(tmp_path, header, message):
    path = csv_file(tmp_path, "u-1,x,y", header=header)

    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(path)
    assert not Customer.objects.exists()


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"external_id,first_name\nu-1,Ana\nu-2,Jo\xe3o\nu-3,Cid\n")

    out, _ = run(path)

    assert "line 3: Not UTF-8 (byte 0xe3 at position 7); save the file as UTF-8." in out
    assert Customer.objects.count() == 2


def test_a_line_over_a_megabyte_and_ten_million_empty_columns_are_refused_unread(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("w") as handle:
        handle.write("external_id,first_name\n")
        handle.write("u-1," + "x" * 3_000_000 + "\n")
        handle.write("," * 10_000_000 + "\n")
        handle.write("u-2,Ben\n")

    out, _ = run(path)

    assert "line 2: The line is longer than 1,048,576 bytes." in out
    assert "line 3: The line is longer than 1,048,576 bytes." in out
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["u-2"]


def test_a_line_with_more_cells_than_the_header(tmp_path):
    out, _ = run(csv_file(tmp_path, "u-1,Ana,x,y", header="external_id,first_name"))

    assert "line 2: The line has 4 cells; the header has 2." in out


def test_a_formula_is_kept_as_text(tmp_path):
    run(csv_file(tmp_path, 'u-1,"=HYPERLINK(""http://evil"")"', header="external_id,first_name"))

    assert Customer.objects.get().first_name == '=HYPERLINK("http://evil")'


def test_a_mapping_renames_columns_maps_values_and_fills_defaults(tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({
        "columns": {"user": "external_id", "push_token": "device_token", "os": "device_platform",
                    "ignored": None},
        "values": {"device_platform": {"Android": "android", "iOS": "ios"}},
        "defaults": {"device_kind": "fcm", "locale": "pt-BR"},
    }))
    path = csv_file(tmp_path, f"u-1,{FCM.format(1)},Android,zzz",
                    header="user,push_token,os,ignored")

    out, _ = run(path, "--map", str(mapping))

    assert "1 created" in out
    device = Device.objects.get()
    assert (device.kind, device.platform, device.customer.locale) == ("fcm", "android", "pt-BR")


def test_an_unreadable_mapping_is_a_command_error(tmp_path):
    mapping = tmp_path / "map.json"
    mapping.write_text('{"columns": []}')

    with pytest.raises(CommandError, match="JSON objects"):
        run(csv_file(tmp_path, "u-1"), "--map", str(mapping))


def test_referral_codes_from_another_system_and_referrers_in_the_same_file(tmp_path):
    path = csv_file(tmp_path, "friend,lisbon-42,", "newbie,,LISBON-42", "other,,NOPE",
                    header="external_id,referral_code,referred_by_code")

    out, _ = run(path)

    assert "line 4: referred_by_code: No customer has this referral code." in out
    friend = Customer.objects.get(external_id="friend")
    assert friend.referral_code == "LISBON-42"
    assert Customer.objects.get(external_id="newbie").referred_by == friend
    assert friend.events.filter(name="referral_signup").count() == 1
