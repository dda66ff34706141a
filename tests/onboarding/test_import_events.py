"""import_events: past events from files, deduplicated, starting no journey."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from audiences.models import Customer, Event, Segment, StageRule, StageTransition
from audiences.selectors import segment_count
from audiences.signals import event_tracked, stage_changed

pytestmark = pytest.mark.django_db

HEADER = "customer_id,name,occurred_at,event_id,prop.amount:number,prop.restaurant"


def run(path, *args) -> str:
    out = StringIO()
    call_command("import_events", str(path), "--no-progress", *args, stdout=out,
                 stderr=StringIO())
    return out.getvalue()


def csv_file(tmp_path, *lines, header=HEADER):
    path = tmp_path / "events.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def announced():
    """What the apps above would hear: imported history must tell them nothing."""
    heard = []

    def listen(sender, **kwargs):
        heard.append(kwargs)

    event_tracked.connect(listen, dispatch_uid="test-import-events")
    stage_changed.connect(listen, dispatch_uid="test-import-events-stage")
    yield heard
    event_tracked.disconnect(dispatch_uid="test-import-events")
    stage_changed.disconnect(dispatch_uid="test-import-events-stage")


def test_history_is_stored_once_and_moves_last_activity(tmp_path, customer_factory, announced):
    ana = customer_factory("u-1")
    path = csv_file(
        tmp_path,
        "u-1,order_placed,2026-10-01T12:00:00Z,o-1,23.5,Luigi's",
        "u-1,order_placed,2026-10-05T12:00:00Z,,12,Sushi Aoi",
        "u-1,order_placed,2026-10-05T12:00:00Z,,12,Sushi Aoi",
        "u-1,order_placed,2026-10-07T12:00:00Z,o-1,99,Again",
    )

    out = run(path)

    assert "Events were: 2 created, 2 already there (duplicates)." in out
    events = Event.objects.filter(customer=ana).order_by("occurred_at")
    assert [(e.client_event_id, e.properties) for e in events][0] == (
        "o-1", {"amount": 23.5, "restaurant": "Luigi's"})
    assert events[1].client_event_id.startswith("imported:")
    ana.refresh_from_db()
    assert ana.last_seen_at == datetime(2026, 10, 5, 12, tzinfo=UTC)
    assert announced == []
    assert "0 created, 4 already there" in run(path)
    assert Event.objects.count() == 2


def test_did_x_n_times_segments_count_imported_history(tmp_path, customer_factory):
    customer_factory("u-1")
    customer_factory("u-2")
    days_ago = [(timezone.now() - timedelta(days=days)).isoformat() for days in (1, 2)]
    run(csv_file(tmp_path, f"u-1,order_placed,{days_ago[0]},a,,",
                 f"u-1,order_placed,{days_ago[1]},b,,",
                 f"u-2,order_placed,{days_ago[1]},c,,"))
    segment = Segment.objects.create(
        name="Two orders", rules={"event": {"name": "order_placed", "min_count": 2,
                                            "within_days": 30}})

    assert segment_count(segment) == 1


def test_unknown_customers_are_refused_unless_asked_to_create_them(tmp_path):
    path = csv_file(tmp_path, "nobody,app_opened,2026-10-01T12:00:00Z,,,")

    assert "line 2: customer_id: No customer has this external id" in run(path)
    assert not Customer.objects.exists()

    out = run(path, "--create-customers")
    assert "Customers were created: 1" in out
    assert Customer.objects.get().events.count() == 1


def test_stage_rules_run_only_when_asked_and_start_no_journey(tmp_path, customer_factory,
                                                             announced):
    StageRule.objects.all().delete()
    StageRule.objects.create(name="Ordered", kind="event", event_name="order_placed",
                             to_stage="conversion")
    ana = customer_factory("u-1")
    ben = customer_factory("u-2")
    run(csv_file(tmp_path, "u-1,order_placed,2026-10-01T12:00:00Z,a,,"))
    ana.refresh_from_db()
    assert ana.stage == "awareness"

    out = run(csv_file(tmp_path, "u-2,order_placed,2026-10-01T12:00:00Z,b,,"),
              "--apply-stage-rules")

    ben.refresh_from_db()
    assert ben.stage == "conversion" and "stage moves: 1" in out
    move = StageTransition.objects.get(customer=ben)
    assert move.cause == "Ordered: order_placed event (imported history)"
    assert announced == []


def test_bad_lines_keep_their_numbers_and_atomic_writes_nothing(tmp_path, customer_factory):
    customer_factory("u-1")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([
        json.dumps({"customer_id": "u-1", "name": "a", "occurred_at": "2026-10-01T00:00:00Z"}),
        json.dumps({"customer_id": "u-1", "name": "b", "occurred_at": "2099-01-01T00:00:00Z"}),
        json.dumps({"customer_id": "u-1", "name": "c\u0000"}),
        json.dumps({"customer_id": "u-1", "name": "d", "properties": [1]}),
        '{"customer_id": "u-1", "name": "e", "properties": {"x": 1e999}}',
    ]) + "\n")

    out = run(path, "--atomic")

    assert out.splitlines()[:4] == [
        "line 2: occurred_at: Must not be more than a day in the future.",
        "line 3: name: Must not contain NUL characters or lone surrogates.",
        'line 4: properties: Expected a dictionary of items but got type "list".',
        "line 5: properties.x: Numbers must be finite (no Infinity or NaN, nor one too "
        "large to hold).",
    ]
    assert not Event.objects.exists()
    assert "1 created" in run(path)
