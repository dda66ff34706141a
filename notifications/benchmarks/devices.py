"""The audiences of the send and broadcast benchmarks: N customers with one device each of one
kind, written by three INSERT ... SELECT over generate_series (PostgreSQL), once per database.

Each (kind, size) has an external id prefix of its own, so a larger run leaves a smaller one
intact and a benchmark's segment is "external_id contains the prefix"."""

from django.core.management.base import CommandError
from django.db import connection, transaction
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences import demo as audiences_demo
from audiences.demo_data import Timings
from audiences.demo_sql import bucket_sql, hash64_sql
from audiences.models import Customer
from notifications.models import Device

PREFIXES = {"fcm": "sendbench-{size}-", "apns": "sendbench-apns-{size}-",
            "webpush": "sendbench-webpush-{size}-"}
PLATFORMS = {"fcm": "android", "apns": "ios", "webpush": "web"}
CHUNK = 100_000  # customers per statement group: bounded transactions at a million

# The token each kind's device gets, from the customer's external id x
_PROVIDER_ROWS = {
    "fcm": ("push_notifications_gcmdevice", "registration_id, active, cloud_message_type",
            "'token-' || x, true, 'FCM'", "'token-' || c.external_id"),
    "apns": ("push_notifications_apnsdevice", "registration_id, active",
             "encode(sha256(convert_to(x, 'UTF8')), 'hex'), true",
             "encode(sha256(convert_to(c.external_id, 'UTF8')), 'hex')"),
    "webpush": ("push_notifications_webpushdevice",
                "registration_id, active, p256dh, auth, browser",
                "%(endpoint)s || x, true, %(p256dh)s, %(auth)s, 'CHROME'",
                "%(endpoint)s || c.external_id"),
}
_CUSTOMERS_SQL = f"""
INSERT INTO audiences_customer (external_id, first_name, last_name, email, locale, time_zone,
       attributes, stage, referral_code, bucket, push_opt_out, created_at, updated_at)
SELECT x, 'Bench', '', '', 'en', 'UTC', '{{}}', 'awareness', upper(substr(md5(x), 1, 16)),
       {bucket_sql(hash64_sql('x'))}, false, now(), now()
FROM (SELECT %(prefix)s || lpad(n::text, 8, '0') AS x
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS n) s
ON CONFLICT DO NOTHING"""
_DEVICES_SQL = """
INSERT INTO notifications_device (customer_id, kind, platform, {kind}_id, app_version, locale,
       time_zone, environment, permission, is_active, deactivated_reason, created_at,
       last_seen_at)
SELECT c.id, %(kind)s, %(platform)s, p.id, '5.0.0', 'en', 'UTC', 'production', 'granted', true,
       '', now(), now()
FROM audiences_customer c JOIN {table} p ON p.registration_id = {token}
WHERE c.external_id >= %(first)s AND c.external_id <= %(last)s
  AND NOT EXISTS (SELECT 1 FROM notifications_device d WHERE d.customer_id = c.id)"""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise CommandError("The delivery benchmarks write their audience with PostgreSQL SQL "
                           "and run real workers: set DATABASE_URL.")


def audience_prefix(kind: str, size: int) -> str:
    return PREFIXES[kind].format(size=size)


def bench_devices_ensure(kind: str, size: int, log, **token_params) -> None:
    """``size`` customers of ``audience_prefix(kind, size)`` with one active ``kind`` device
    each (Web Push needs ``endpoint``, ``p256dh`` and ``auth``: the endpoint is this prefix
    plus the external id)."""
    require_postgresql()
    prefix = audience_prefix(kind, size)
    have = Device.objects.filter(customer__external_id__startswith=prefix).count()
    if have >= size:
        return
    log(f"creating {size - have:,} customers with one {kind} device each (once)")
    table, columns, values, token = _PROVIDER_ROWS[kind]
    for lo in range(have, size, CHUNK):
        hi = min(lo + CHUNK, size)
        params = {"prefix": prefix, "lo": lo, "hi": hi, "kind": kind,
                  "platform": PLATFORMS[kind], "first": f"{prefix}{lo:08d}",
                  "last": f"{prefix}{hi - 1:08d}", **token_params}
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CUSTOMERS_SQL, params)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {values} "
                           "FROM (SELECT %(prefix)s || lpad(n::text, 8, '0') AS x FROM "
                           "generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) AS n) s "
                           "ON CONFLICT DO NOTHING", params)
            cursor.execute(_DEVICES_SQL.format(kind=kind, table=table, token=token), params)
        log(f"  {hi:,} of {size:,}")
    audiences_demo.analyze(Timings(), [Customer, Device, GCMDevice, APNSDevice, WebPushDevice])


def webpush_endpoints_point_at(base: str, size: int) -> None:
    """The benchmark's subscriptions live on a push service whose port changes each run."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE push_notifications_webpushdevice SET registration_id = "
            "%(base)s || substring(registration_id from '/push/(.*)$') "
            "WHERE registration_id LIKE 'https://127.0.0.1:%%/push/' || %(prefix)s || '%%'",
            {"base": base, "prefix": audience_prefix("webpush", size)})
