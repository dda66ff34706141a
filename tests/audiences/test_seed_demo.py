import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Max, Sum
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences import demo, demo_data, demo_sql
from audiences.models import (
    Customer,
    Event,
    Stage,
    StageTransition,
    TopicOptOut,
    customer_bucket,
    validate_time_zone,
)
from audiences.services import EventInput, customer_upsert, events_track
from audiences.stages import stage_rules_apply_inactivity
from notifications import demo as notifications_demo
from notifications.models import Device

pytestmark = pytest.mark.django_db
needs_postgres = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="the SQL build runs on PostgreSQL only; SQLite gets the Python build",
)
COUNTED = (Customer, Event, StageTransition, TopicOptOut, Device, APNSDevice, GCMDevice,
           WebPushDevice)


def _seed(customers: int, **options) -> str:
    out = io.StringIO()
    call_command("seed_demo", customers=customers, stdout=out, **options)
    return out.getvalue()


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_seed_demo_creates_every_stage_with_events_devices_and_opt_outs():
    output = _seed(300)

    customers = Customer.objects.all()
    assert customers.count() == 300
    assert set(customers.values_list("stage", flat=True)) == set(Stage.values)
    assert {"app_open", "destination_guide_viewed", "order_placed", "purchase", "rating",
            "referral_sent", "notification_opened"} <= set(
        Event.objects.values_list("name", flat=True).distinct())
    assert Event.objects.count() > 3 * 300
    assert set(Device.objects.values_list("kind", flat=True)) == {"apns", "fcm", "webpush"}
    assert (APNSDevice.objects.count(), GCMDevice.objects.count(),
            WebPushDevice.objects.count()) == tuple(
        Device.objects.filter(kind=kind).count() for kind in ("apns", "fcm", "webpush"))
    assert TopicOptOut.objects.filter(topic__key="offers").exists()
    assert customers.filter(push_opt_out=True).exists()
    assert "events" in output and "devices" in output  # the time of each part


def test_seed_demo_rolls_up_the_demo_history_for_the_dashboard():
    from analytics.models import TransitionDay

    output = _seed(200)

    rolled = TransitionDay.objects.aggregate(total=Sum("transitions"))["total"]
    assert rolled == StageTransition.objects.count()
    assert "Analytics rollups" in output


def test_demo_customers_are_plausible():
    _seed(100)

    for customer in Customer.objects.all():
        validate_time_zone(customer.time_zone)
        assert customer.external_id.startswith("demo-") and len(customer.external_id) == 11
        assert customer.bucket == customer_bucket(customer.external_id)
        assert len(customer.referral_code) == 10
        assert {"city", "favourite_cuisine", "plan"} <= set(customer.attributes)
        assert "@example.com" in customer.email
    assert Customer.objects.values("referral_code").distinct().count() == 100
    order = Event.objects.filter(name="order_placed").first()
    assert set(order.properties) >= {"restaurant", "total"}
    assert Event.objects.filter(name="rating").first().properties["score"] == 5


def test_running_seed_demo_again_adds_nothing(settings):
    settings.DEBUG = True
    _seed(120)
    before = _counts()

    output = _seed(120)

    assert _counts() == before
    assert "exists; left as it is" in output


def test_a_larger_count_adds_only_the_missing_customers():
    _seed(80)
    first = set(Customer.objects.values_list("external_id", "referral_code"))

    _seed(130)

    assert Customer.objects.count() == 130
    assert first <= set(Customer.objects.values_list("external_id", "referral_code"))
    assert Device.objects.values("customer").distinct().count() <= 130


def test_each_customer_stage_and_dates_agree_with_their_transitions_and_events():
    _seed(150)

    last_event = dict(Event.objects.values("customer").annotate(at=Max("occurred_at"))
                      .values_list("customer", "at"))
    for customer in Customer.objects.exclude(stage="awareness"):
        transitions = list(customer.transitions.order_by("at"))
        assert transitions[-1].to_stage == customer.stage
        assert transitions[-1].at == customer.stage_changed_at
        pairs = zip(transitions, transitions[1:], strict=False)
        assert all(a.to_stage == b.from_stage for a, b in pairs)
        assert customer.last_seen_at == last_event[customer.pk]
    for transition in StageTransition.objects.exclude(event=None).select_related("event"):
        assert transition.event.name in transition.cause
        assert transition.at == transition.event.occurred_at


def test_replaying_the_demo_events_through_the_stage_rules_gives_the_same_journeys():
    """The strongest check that the story is consistent: the real rules, fed the same events
    in order, move fresh customers exactly as the demo says."""
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    demo.seed(customers=60, now=now)

    for original in Customer.objects.filter(external_id__startswith="demo-"):
        replay, _ = customer_upsert(external_id=f"replay-{original.external_id}")
        for event in original.events.order_by("occurred_at"):
            events_track(items=[EventInput(name=event.name, occurred_at=event.occurred_at,
                                            properties=event.properties, customer=replay)])
    stage_rules_apply_inactivity(now=now)

    for original in Customer.objects.filter(external_id__startswith="demo-"):
        replay = Customer.objects.get(external_id=f"replay-{original.external_id}")
        assert replay.stage == original.stage, original.external_id
        path = list(replay.transitions.order_by("at", "pk").values_list("from_stage", "to_stage"))
        assert path == list(original.transitions.order_by("at", "pk")
                            .values_list("from_stage", "to_stage")), original.external_id


def test_in_demo_mode_web_devices_subscribe_to_the_demo_sink_once(settings, tmp_path):
    settings.DEMO_WEBPUSH_SINK = True
    settings.DEMO_VAPID_FILE = tmp_path / "demo-vapid.json"

    _seed(60)
    web = Device.objects.filter(kind="webpush").select_related("webpush")
    assert web.exists() and all(device.demo_inbox for device in web)
    assert all("/demo/webpush/" in device.token for device in web)
    assert settings.DEMO_VAPID_FILE.exists()
    before = _counts()

    output = _seed(60)

    assert _counts() == before  # the changed tokens do not bring back the old devices
    assert "0 new web device inbox(es)" in output


def test_without_demo_mode_no_device_gets_a_demo_inbox(settings):
    settings.DEMO_WEBPUSH_SINK = False

    _seed(60)

    assert Device.objects.filter(kind="webpush").exists()
    assert not Device.objects.filter(demo_inbox__isnull=False).exists()


def test_demo_admin_is_created_when_debug_is_on(settings):
    settings.DEBUG = True

    output = _seed(5)

    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password("journeyhub")
    assert "Created superuser 'admin'" in output


def test_demo_admin_is_skipped_when_debug_is_off_unless_a_password_is_given(settings):
    settings.DEBUG = False

    output = _seed(5)
    assert "DEBUG is off" in output
    assert not get_user_model().objects.filter(username="admin").exists()

    _seed(5, admin_password="s3cret-demo-pass")
    assert get_user_model().objects.get(username="admin").check_password("s3cret-demo-pass")


def test_seed_demo_refuses_a_count_below_one():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="at least 1"):
        _seed(0)


@needs_postgres
def test_bucket_computed_in_sql_equals_customer_bucket():
    ids = [demo_data.external_id(n) for n in range(1, 400)] + [
        "demo-1000000", "ana@example.com", "Zoë-ß-東京", "x" * 255, "a\\b", "",
    ]
    bucket = demo_sql.bucket_sql(demo_sql.hash64_sql("id"))
    sql = f"SELECT id, {bucket} FROM unnest(%s::text[]) AS id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids])
        computed = dict(cursor.fetchall())
        cursor.execute(f"SELECT count(*) FROM unnest(%s::text[]) AS id "
                       f"WHERE {demo_sql.hash64_sql('id')} < 0", [ids])
        negatives = cursor.fetchone()[0]

    assert negatives > 100  # the signed case is really exercised
    assert computed == {external_id: customer_bucket(external_id) for external_id in ids}


@needs_postgres
def test_sql_build_gives_the_same_rows_as_the_python_build():
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    timings = demo_data.Timings()
    demo.customers_seed_range(lo=1, hi=80, now=now, timings=timings)
    notifications_demo.devices_seed_range(lo=1, hi=80, timings=timings)

    for n in range(1, 81):
        stored = Customer.objects.get(external_id=demo_data.external_id(n))
        expected, opt_outs = demo.customer_row(n, now)
        for name in ("first_name", "last_name", "email", "locale", "time_zone", "stage",
                     "stage_changed_at", "last_seen_at", "referral_code", "bucket",
                     "push_opt_out", "created_at", "attributes"):
            assert getattr(stored, name) == getattr(expected, name), (n, name)
        assert sorted(stored.topic_opt_outs.values_list("topic__key", flat=True)) == sorted(
            opt_outs)
        events = {(e.client_event_id, e.name, e.occurred_at, e.received_at,
                   tuple(sorted(e.properties.items()))) for e in stored.events.all()}
        assert events == {(e.client_event_id, e.name, e.occurred_at, e.received_at,
                           tuple(sorted(e.properties.items())))
                          for e, _ in demo.event_rows(n, expected)}, n
        devices = {(d.kind, d.token, d.app_version, d.permission, d.is_active, d.environment)
                   for d in stored.devices.select_related("apns", "fcm", "webpush")}
        assert devices == {(p.kind, p.token, p.app_version, p.permission, p.is_active,
                            p.environment)
                           for p in notifications_demo.device_plans(n, stored)}, n


def test_referral_codes_of_neighbours_look_unrelated():
    codes = [demo.referral_code(n) for n in range(1, 50)]
    assert len(set(codes)) == len(codes)
    assert len({code[-3:] for code in codes}) > 40
