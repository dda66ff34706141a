"""Devices of the demo customers: APNs, FCM and Web Push, with django-push-notifications rows.

Like audiences.demo, every value comes from dice of the customer's number. A customer's
devices are made together, so one who has any device (even one whose token changed since, as
the demo Web Push sink does) gets none added: a second run adds nothing. Tokens look like real
ones (64 hex digits for APNs, an FCM registration token, a push-service endpoint with
p256dh/auth keys for Web Push) but reach nobody, and the Web Push keys are not real P-256
points: in demo mode seed_demo hands the first web devices to the demo sink, which gives them
real keys."""

import base64
import hashlib
import time
from dataclasses import dataclass

from django.db import connection
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.demo import dice
from audiences.demo_data import Timings, external_id
from audiences.demo_sql import external_id_sql
from audiences.models import Customer, Topic
from notifications.models import Device, Template

MOBILE_IN_AWARENESS = 35  # percent of awareness customers who installed the app already
IOS_PERCENT = 45  # of mobile devices; the rest are Android (FCM)
WEB_PERCENT = {"awareness": 50, "other": 20}  # customers who subscribed to Web Push
SANDBOX_PERCENT = 2  # internal testers' builds
INACTIVE_PERCENT = 4  # tokens the provider reported as unregistered
APP_VERSIONS = ["4.2.0", "4.3.1", "4.4.0", "4.4.2", "5.0.0"]
WEB_VERSIONS = ["web-2026.10", "web-2026.11"]
BROWSERS = ["CHROME", "CHROME", "FIREFOX", "SAFARI", "EDGE"]
PUSH_SERVICES = {
    "CHROME": "https://fcm.googleapis.com/fcm/send/",
    "FIREFOX": "https://updates.push.services.mozilla.com/wpush/v2/",
    "SAFARI": "https://web.push.apple.com/",
    "EDGE": "https://wns2-par02p.notify.windows.com/w/?token=",
}
PLATFORMS = {"apns": "ios", "fcm": "android", "webpush": "web"}
UNREGISTERED = "Unregistered by the provider"


# --- Python ----------------------------------------------------------------------------------

def _b64(seed: str) -> str:
    """43 URL-safe base64 characters from sha256(seed)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _permission(roll: int, kind: str) -> str:
    roll %= 100
    if roll < 85:
        return Device.Permission.GRANTED
    if roll < 91:
        return Device.Permission.DENIED
    if roll < 95 and kind == "apns":
        return Device.Permission.PROVISIONAL
    return Device.Permission.NOT_DETERMINED


@dataclass
class DevicePlan:
    customer: Customer
    kind: str
    token: str
    app_version: str
    environment: str
    permission: str
    is_active: bool
    browser: str = ""
    p256dh: str = ""
    auth: str = ""


def device_plans(n: int, customer: Customer) -> list[DevicePlan]:
    d = dice(f"demo:device:{n}")
    kinds = []
    if customer.stage != "awareness" or d[0] % 100 < MOBILE_IN_AWARENESS:
        kinds.append("apns" if d[1] % 100 < IOS_PERCENT else "fcm")
    web_share = WEB_PERCENT["awareness" if customer.stage == "awareness" else "other"]
    if d[2] % 100 < web_share:
        kinds.append("webpush")
    return [_plan(n, customer, kind, d) for kind in kinds]


def _plan(n: int, customer: Customer, kind: str, d: list[int]) -> DevicePlan:
    slot = 1 if kind == "webpush" else 0  # the web device rolls its own dice
    versions = WEB_VERSIONS if kind == "webpush" else APP_VERSIONS
    plan = DevicePlan(
        customer=customer, kind=kind, token="", app_version=versions[d[3 + slot] % len(versions)],
        environment="sandbox" if d[5] % 100 < SANDBOX_PERCENT else "production",
        permission=_permission(d[6 + slot], kind), is_active=d[8 + slot] % 100 >= INACTIVE_PERCENT,
    )
    if kind == "apns":
        plan.token = hashlib.sha256(f"demo:apns:{n}".encode()).hexdigest()
    elif kind == "fcm":
        plan.token = (_b64(f"demo:fcm:{n}:0")[:22] + ":APA91b"
                      + "".join(_b64(f"demo:fcm:{n}:{i}") for i in (1, 2, 3)))
    else:
        plan.browser = BROWSERS[d[10] % len(BROWSERS)]
        plan.token = (PUSH_SERVICES[plan.browser] + _b64(f"demo:web:{n}:0")
                      + _b64(f"demo:web:{n}:1"))
        plan.p256dh = "B" + (_b64(f"demo:p256dh:{n}:0") + _b64(f"demo:p256dh:{n}:1"))[:86]
        plan.auth = _b64(f"demo:auth:{n}")[:22]
    return plan


def _provider_row(plan: DevicePlan):
    common = {"registration_id": plan.token, "active": plan.is_active,
              "date_created": plan.customer.created_at}
    if plan.kind == "apns":
        return APNSDevice(**common)
    if plan.kind == "fcm":
        return GCMDevice(cloud_message_type="FCM", **common)
    return WebPushDevice(p256dh=plan.p256dh, auth=plan.auth, browser=plan.browser, **common)


def _seed_python(lo: int, hi: int, timings: Timings) -> None:
    started = time.perf_counter()
    customers = Customer.objects.filter(
        external_id__in=[external_id(n) for n in range(lo, hi + 1)]
    ).only("pk", "external_id", "stage", "locale", "time_zone", "created_at", "last_seen_at")
    plans = [plan for c in customers for plan in device_plans(int(c.external_id[5:]), c)]
    plans = _not_stored(plans)
    providers = [_provider_row(plan) for plan in plans]
    for model in (APNSDevice, GCMDevice, WebPushDevice):
        model.objects.bulk_create([row for row in providers if isinstance(row, model)])
    Device.objects.bulk_create([
        Device(customer=plan.customer, kind=plan.kind, platform=PLATFORMS[plan.kind],
               **{plan.kind: row}, app_version=plan.app_version, locale=plan.customer.locale,
               time_zone=plan.customer.time_zone, environment=plan.environment,
               permission=plan.permission, is_active=plan.is_active,
               deactivated_reason="" if plan.is_active else UNREGISTERED,
               created_at=plan.customer.created_at,
               last_seen_at=plan.customer.last_seen_at or plan.customer.created_at)
        for plan, row in zip(plans, providers, strict=True)
    ])
    timings.add("devices", started, len(plans))


def _not_stored(plans: list[DevicePlan]) -> list[DevicePlan]:
    """Plans for customers without any device yet, whose token is free."""
    owned = set(Device.objects.filter(customer__in={plan.customer.pk for plan in plans})
                .values_list("customer_id", flat=True))
    stored = set()
    for kind, model in (("apns", APNSDevice), ("fcm", GCMDevice), ("webpush", WebPushDevice)):
        tokens = [plan.token for plan in plans if plan.kind == kind]
        stored |= {(kind, token) for token in model.objects.filter(registration_id__in=tokens)
                   .values_list("registration_id", flat=True)}
    return [plan for plan in plans if (plan.kind, plan.token) not in stored
            and plan.customer.pk not in owned]


# --- PostgreSQL ------------------------------------------------------------------------------

def _b64_sql(seed: str) -> str:
    return (f"rtrim(translate(encode(sha256(convert_to({seed}, 'UTF8')), 'base64'), '+/', '-_'),"
            f" '=')")


def _die(i: str) -> str:
    """Die number i (an SQL expression) of the device dice ``d``."""
    return f"(get_byte(d, 2 * ({i})) * 256 + get_byte(d, 2 * ({i}) + 1))"


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]"


def _case(column: str, values: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{key}' THEN {value}" for key, value in values.items())
    return f"CASE {column} {whens} END"


def _seed_in(n: str, salt: str, i: int | None = None) -> str:
    suffix = "" if i is None else f" || ':{i}'"
    return f"'demo:{salt}:' || {n}{suffix}"


PLANNED_SQL = """
DROP TABLE IF EXISTS demo_devices;
CREATE TEMP TABLE demo_devices ON COMMIT DROP AS
WITH c AS MATERIALIZED (  -- d computed once per customer, not once per use
    SELECT cu.id AS customer_id, n, cu.stage, cu.locale, cu.time_zone, cu.created_at,
           coalesce(cu.last_seen_at, cu.created_at) AS last_seen_at,
           sha256(convert_to('demo:device:' || n, 'UTF8')) AS d
    FROM generate_series({lo}::bigint, {hi}::bigint) AS n
    JOIN {customer} cu ON cu.external_id = {external_id}
    WHERE NOT EXISTS (SELECT 1 FROM {device} dv WHERE dv.customer_id = cu.id)
), planned AS (
    SELECT c.*, CASE WHEN mod({d1}, 100) < {ios} THEN 'apns' ELSE 'fcm' END AS kind, 0 AS slot
    FROM c WHERE stage <> 'awareness' OR mod({d0}, 100) < {mobile_in_awareness}
    UNION ALL
    SELECT c.*, 'webpush', 1 FROM c
    WHERE mod({d2}, 100) < CASE WHEN stage = 'awareness' THEN {web_awareness} ELSE {web_other} END
), shaped AS (
    SELECT planned.*,
           CASE WHEN kind = 'webpush' THEN ({browsers})[1 + mod({d10}, {browser_count})] ELSE ''
           END AS browser,
           CASE WHEN kind = 'webpush' THEN ({web_versions})[1 + mod({d_version}, {web_count})]
                ELSE ({app_versions})[1 + mod({d_version}, {app_count})] END AS app_version,
           CASE WHEN mod({d5}, 100) < {sandbox} THEN 'sandbox' ELSE 'production' END
               AS environment,
           CASE WHEN mod({d_permission}, 100) < 85 THEN 'granted'
                WHEN mod({d_permission}, 100) < 91 THEN 'denied'
                WHEN mod({d_permission}, 100) < 95 AND kind = 'apns' THEN 'provisional'
                ELSE 'not_determined' END AS permission,
           mod({d_active}, 100) >= {inactive} AS is_active
    FROM planned
), tokened AS (
    SELECT shaped.*,
           CASE kind
               WHEN 'apns' THEN encode(sha256(convert_to({apns_seed}, 'UTF8')), 'hex')
               WHEN 'fcm' THEN substr({fcm_0}, 1, 22) || ':APA91b' || {fcm_1} || {fcm_2} || {fcm_3}
               ELSE {push_service} || {web_0} || {web_1} END AS token,
           CASE WHEN kind = 'webpush' THEN 'B' || substr({p256dh_0} || {p256dh_1}, 1, 86)
                ELSE '' END AS p256dh,
           CASE WHEN kind = 'webpush' THEN substr({auth}, 1, 22) ELSE '' END AS auth
    FROM shaped
)
SELECT * FROM tokened t
WHERE NOT (kind = 'apns' AND EXISTS (SELECT 1 FROM {apns} p WHERE p.registration_id = t.token))
  AND NOT (kind = 'fcm' AND EXISTS (SELECT 1 FROM {fcm} p WHERE p.registration_id = t.token))
  AND NOT (kind = 'webpush'
           AND EXISTS (SELECT 1 FROM {webpush} p WHERE p.registration_id = t.token))
"""

# One statement: each provider insert hands its new ids to the device insert, which joins
# only the chunk's rows (a join on the whole provider tables would grow with every chunk).
DEVICES_SQL = """
WITH apns AS (
    INSERT INTO {apns} (name, active, user_id, date_created, application_id, device_id,
                        registration_id)
    SELECT NULL, is_active, NULL, created_at, NULL, NULL, token
    FROM demo_devices WHERE kind = 'apns'
    RETURNING id, registration_id
), fcm AS (
    INSERT INTO {fcm} (name, active, user_id, date_created, application_id, device_id,
                       registration_id, cloud_message_type)
    SELECT NULL, is_active, NULL, created_at, NULL, NULL, token, 'FCM'
    FROM demo_devices WHERE kind = 'fcm'
    RETURNING id, registration_id
), webpush AS (
    INSERT INTO {webpush} (name, active, user_id, date_created, application_id, registration_id,
                           p256dh, auth, browser)
    SELECT NULL, is_active, NULL, created_at, NULL, token, p256dh, auth, browser
    FROM demo_devices WHERE kind = 'webpush'
    RETURNING id, registration_id
)
INSERT INTO {device} (customer_id, kind, platform, apns_id, fcm_id, webpush_id, app_version,
                      locale, time_zone, environment, permission, is_active, deactivated_reason,
                      created_at, last_seen_at)
SELECT d.customer_id, d.kind, {platform}, a.id, f.id, w.id, d.app_version, d.locale,
       d.time_zone, d.environment, d.permission, d.is_active,
       CASE WHEN d.is_active THEN '' ELSE '{unregistered}' END, d.created_at, d.last_seen_at
FROM demo_devices d
LEFT JOIN apns a ON d.kind = 'apns' AND a.registration_id = d.token
LEFT JOIN fcm f ON d.kind = 'fcm' AND f.registration_id = d.token
LEFT JOIN webpush w ON d.kind = 'webpush' AND w.registration_id = d.token
"""


def _tables() -> dict[str, str]:
    return {"apns": APNSDevice._meta.db_table, "fcm": GCMDevice._meta.db_table,
            "webpush": WebPushDevice._meta.db_table, "device": Device._meta.db_table,
            "customer": Customer._meta.db_table}


def _planned_sql(lo: int, hi: int) -> str:
    push_service = _case("browser", {b: f"'{url}'" for b, url in PUSH_SERVICES.items()})
    return PLANNED_SQL.format(
        lo=int(lo), hi=int(hi), external_id=external_id_sql("n"), **_tables(),
        d0=_die("0"), d1=_die("1"), d2=_die("2"), d5=_die("5"), d10=_die("10"),
        d_version=_die("3 + slot"), d_permission=_die("6 + slot"), d_active=_die("8 + slot"),
        ios=IOS_PERCENT, mobile_in_awareness=MOBILE_IN_AWARENESS,
        web_awareness=WEB_PERCENT["awareness"], web_other=WEB_PERCENT["other"],
        browsers=_array(BROWSERS), browser_count=len(BROWSERS),
        web_versions=_array(WEB_VERSIONS), web_count=len(WEB_VERSIONS),
        app_versions=_array(APP_VERSIONS), app_count=len(APP_VERSIONS),
        sandbox=SANDBOX_PERCENT, inactive=INACTIVE_PERCENT,
        apns_seed=_seed_in("n", "apns"), push_service=push_service,
        **{f"fcm_{i}": _b64_sql(_seed_in("n", "fcm", i)) for i in range(4)},
        **{f"web_{i}": _b64_sql(_seed_in("n", "web", i)) for i in range(2)},
        **{f"p256dh_{i}": _b64_sql(_seed_in("n", "p256dh", i)) for i in range(2)},
        auth=_b64_sql(_seed_in("n", "auth")),
    )


def _seed_sql(lo: int, hi: int, timings: Timings) -> None:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_planned_sql(lo, hi))
        platform = _case("d.kind", {kind: f"'{p}'" for kind, p in PLATFORMS.items()})
        cursor.execute(DEVICES_SQL.format(**_tables(), platform=platform,
                                          unregistered=UNREGISTERED))
        timings.add("devices", started, cursor.rowcount)


def devices_seed_range(*, lo: int, hi: int, timings: Timings) -> None:
    """Give demo customers lo..hi their devices, skipping tokens already stored. Call inside a
    transaction, after audiences.demo.customers_seed_range for the same range."""
    if connection.vendor == "postgresql":
        _seed_sql(lo, hi, timings)
    else:
        _seed_python(lo, hi, timings)


# One template per journey stage, after the examples push notifications are known for.
DEMO_TEMPLATES = [
    {"name": "Destination guide", "topic": "content",
     "title": "{{ customer.first_name|default:'Traveller' }}, 48 hours in "
              "{{ customer.attributes.city|default:'Lisbon' }}",
     "body": "Our guide: where to eat, what to see, and the view nobody tells you about.",
     "url": "/guides/{{ customer.attributes.city|default:'lisbon'|lower }}",
     "translations": [("pt", "{{ customer.first_name|default:'Viajante' }}, 48 horas em "
                             "{{ customer.attributes.city|default:'Lisboa' }}",
                       "O nosso guia: onde comer, o que ver e a vista de que ninguém fala.")]},
    {"name": "Order update", "topic": "transactional", "priority": "high",
     "title": "{{ customer.first_name|default:'Hi' }}, your order is on its way",
     "body": "Your order from {{ last.order_placed.restaurant|default:'the restaurant' }} "
             "has left the kitchen.",
     "url": "/orders/{{ last.order_placed.order_id }}"},
    {"name": "Limited-time offer", "topic": "offers",
     "title": "24 hours only: 20% off",
     "body": "{{ customer.first_name|default:'Hey' }}, your favourite "
             "{{ customer.attributes.favourite_cuisine|default:'dishes' }} are 20% off until "
             "midnight.",
     "url": "/offers/today"},
    {"name": "We saved you a seat", "topic": "content",
     "title": "New this week in {{ customer.attributes.city|default:'your city' }}",
     "body": "Five places that opened since your last visit. Take a look?",
     "url": "/discover"},
    {"name": "Referral ask", "topic": "offers",
     "title": "Glad you liked it, {{ customer.first_name|default:'friend' }}!",
     "body": "Share your code {{ customer.referral_code }}: your friends get 10% off their "
             "first order, and so do you.",
     "url": "{{ customer.referral_link }}"},
]


def templates_seed() -> int:
    """The demo templates, created once (an edited template is left as the staff left it)."""
    topics = {topic.key: topic for topic in Topic.objects.all()}
    created = 0
    for spec in DEMO_TEMPLATES:
        fields = {k: v for k, v in spec.items() if k not in ("name", "topic", "translations")}
        template, new = Template.objects.get_or_create(
            name=spec["name"], defaults={**fields, "topic": topics.get(spec["topic"])},
        )
        if new:
            created += 1
            for locale, title, body in spec.get("translations", []):
                template.translations.create(locale=locale, title=title, body=body)
    return created
