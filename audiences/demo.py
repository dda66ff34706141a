"""Demo customers whose events tell their journey, from a couple of thousand to the scale set.

Every value of customer number n comes from sha256 "dice" of n, so the data is the same on
every machine and a second run finds everything in place and adds nothing. PostgreSQL builds
it with INSERT ... SELECT over generate_series (audiences.demo_sql: a million customers in
about five minutes); other databases get the same rows from Python in batches, which is fine
for thousands.

Journeys follow the default stage rules: the first app_open moves awareness -> engagement, a
purchase -> conversion, a referral_sent -> advocacy, 30 quiet days -> retention. Each stage has
a script of events; its transitions point at the events that caused them. No script leaves a
gap of CHURN_DAYS between events after the first app open, so the only inactivity move is the
one that made retention customers."""

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import (
    REFERRAL_CODE_ALPHABET,
    Customer,
    Event,
    StageRule,
    StageTransition,
    Topic,
    TopicOptOut,
    customer_bucket,
)

DEMO_PREFIX = "demo-"
SQL_CHUNK = 100_000  # customers per transaction on PostgreSQL: ~500k events, ~30 s
PYTHON_CHUNK = 500  # customers per batch elsewhere
# Odd, so n -> n*M mod 2**50 is one-to-one: no two customers share a code. About 2**50 times
# the golden ratio, so neighbouring numbers get unlike codes.
REFERRAL_MULTIPLIER = 695_839_865_656_529

FIRST_NAMES = [
    "Ana", "Joao", "Maria", "Pedro", "Ines", "Tiago", "Sofia", "Miguel", "Lucia", "Carlos",
    "Emma", "Liam", "Olivia", "Noah", "Amelia", "Oliver", "Mia", "Lucas", "Chloe", "Hugo",
    "Yuki", "Haruto", "Priya", "Arjun", "Fatima", "Omar", "Lea", "Felix", "Zoe", "Mateo",
    "Camila", "Diego", "Aisha", "Kwame", "Nora", "Elias", "Ingrid", "Lars", "Marta", "Paolo",
]
LAST_NAMES = [
    "Silva", "Santos", "Ferreira", "Costa", "Oliveira", "Garcia", "Martinez", "Lopez", "Smith",
    "Johnson", "Brown", "Taylor", "Wilson", "Muller", "Schmidt", "Dubois", "Martin", "Bernard",
    "Rossi", "Bianchi", "Tanaka", "Sato", "Patel", "Sharma", "Khan", "Haddad", "Nielsen",
    "Jansen", "de Vries", "Kowalski", "Novak", "Mensah", "Okafor", "Kim", "Nguyen", "Chen",
]
# city, country, locale, IANA time zone. Lisbon twice: the benchmark's segment picks Lisbon.
PLACES = [
    ("Lisbon", "PT", "pt-PT", "Europe/Lisbon"), ("Lisbon", "PT", "pt-PT", "Europe/Lisbon"),
    ("Porto", "PT", "pt-PT", "Europe/Lisbon"), ("Madrid", "ES", "es-ES", "Europe/Madrid"),
    ("Barcelona", "ES", "es-ES", "Europe/Madrid"), ("London", "GB", "en-GB", "Europe/London"),
    ("Paris", "FR", "fr-FR", "Europe/Paris"), ("Berlin", "DE", "de-DE", "Europe/Berlin"),
    ("Amsterdam", "NL", "nl-NL", "Europe/Amsterdam"), ("Rome", "IT", "it-IT", "Europe/Rome"),
    ("New York", "US", "en-US", "America/New_York"),
    ("San Francisco", "US", "en-US", "America/Los_Angeles"),
    ("Toronto", "CA", "en-CA", "America/Toronto"),
    ("Sao Paulo", "BR", "pt-BR", "America/Sao_Paulo"),
    ("Mexico City", "MX", "es-MX", "America/Mexico_City"), ("Tokyo", "JP", "ja-JP", "Asia/Tokyo"),
    ("Mumbai", "IN", "en-IN", "Asia/Kolkata"), ("Sydney", "AU", "en-AU", "Australia/Sydney"),
    ("Cape Town", "ZA", "en-ZA", "Africa/Johannesburg"), ("Dubai", "AE", "ar-AE", "Asia/Dubai"),
]
CUISINES = ["portuguese", "italian", "japanese", "indian", "mexican", "thai", "vegan",
            "burgers", "chinese", "middle eastern", "korean", "french"]
PLANS = ["free", "free", "free", "plus", "plus", "pro"]
SIGNUP_CHANNELS = ["app_store", "google_play", "web", "referral", "instagram", "tiktok"]
RESTAURANTS = ["Tasca do Chico", "Sushi Aoi", "Curry Leaf", "La Taqueria", "Pasta Fresca",
               "Green Bowl", "Burger Lab", "Dragon Wok", "Le Petit Bistro", "Seoul Kitchen",
               "Falafel House", "Bangkok Street"]
DESTINATIONS = ["Lisbon", "Porto", "Madeira", "Azores", "Seville", "Kyoto", "Marrakesh",
                "Cape Town", "Rome", "Mexico City", "Bali", "Reykjavik"]
CAMPAIGNS = ["Welcome series", "Weekend offer", "Guide of the week", "We miss you",
             "New restaurants near you"]
REFERRAL_CHANNELS = ["whatsapp", "email", "sms", "link"]
CURRENCY = "EUR"
# Share of customers per stage, in percent, in journey order.
STAGE_MIX = [("awareness", 30), ("engagement", 28), ("conversion", 20), ("retention", 12),
             ("advocacy", 10)]
RECENT_DAYS = 30  # active customers' last event lies 0..29 days back
DORMANT_DAYS = (31, 120)  # retention customers went quiet 31..150 days back
OPT_OUT_PERCENT = {"offers": 12, "content": 6}
PUSH_OPT_OUT_PERCENT = 4

# Default stage rules (see audiences migration 0002), by name: a transition names its rule.
FIRST_OPEN, PURCHASE, REFERRAL, CHURN = "First app open", "Purchase", "Referral sent", "Churn risk"
CHURN_DAYS = 30


@dataclass(frozen=True)
class Step:
    """One scripted event: ``days`` before the customer's last activity (plus ``minutes``),
    kept for ``share`` percent of customers; steps of one ``group`` (an order and its
    purchase) share their dice. ``moves`` is the (from, to, rule) transition it causes."""

    key: str
    name: str
    days: int
    minutes: int = 0
    share: int = 100
    props: str = "none"
    group: str = ""
    moves: tuple[str, str, str] | None = None

    @property
    def dice_group(self) -> str:
        return self.group or self.key


def _order(key: str, days: int, share: int = 100, moves=None) -> list[Step]:
    return [
        Step(f"order_{key}", "order_placed", days, -20, share, "order", key),
        Step(f"purchase_{key}", "purchase", days, -18, share, "purchase", key, moves),
    ]


TO_ENGAGEMENT = ("awareness", "engagement", FIRST_OPEN)
TO_CONVERSION = ("engagement", "conversion", PURCHASE)
SCRIPTS: dict[str, list[Step]] = {
    "awareness": [
        Step("guide_1", "destination_guide_viewed", 6, props="guide"),
        Step("guide_2", "destination_guide_viewed", 0, props="guide"),
    ],
    "engagement": [
        Step("guide_1", "destination_guide_viewed", 20, props="guide"),
        Step("open_1", "app_open", 14, moves=TO_ENGAGEMENT),
        Step("guide_2", "destination_guide_viewed", 9, share=70, props="guide"),
        Step("opened_1", "notification_opened", 5, share=50, props="campaign"),
        Step("open_2", "app_open", 0),
    ],
    "conversion": [
        Step("open_1", "app_open", 40, moves=TO_ENGAGEMENT),
        Step("guide_1", "destination_guide_viewed", 35, share=80, props="guide"),
        *_order("1", 21, moves=TO_CONVERSION),
        Step("opened_1", "notification_opened", 7, share=60, props="campaign"),
        *_order("2", 0, share=60),
        Step("open_2", "app_open", 0),
    ],
    "retention": [
        Step("open_1", "app_open", 60, moves=TO_ENGAGEMENT),
        Step("guide_1", "destination_guide_viewed", 52, share=80, props="guide"),
        *_order("1", 40, moves=TO_CONVERSION),
        Step("opened_1", "notification_opened", 28, share=50, props="campaign"),
        *_order("2", 20),
        Step("open_2", "app_open", 0),
    ],
    "advocacy": [
        Step("open_1", "app_open", 95, moves=TO_ENGAGEMENT),
        *_order("1", 80, moves=TO_CONVERSION),
        Step("rating_1", "rating", 60, props="rating"),
        *_order("2", 25),
        Step("referral_1", "referral_sent", 3, props="referral",
             moves=("conversion", "advocacy", REFERRAL)),
        Step("opened_1", "notification_opened", 2, share=60, props="campaign"),
        Step("open_2", "app_open", 0),
    ],
}
# Retention customers were moved by the inactivity rule CHURN_DAYS after their last event.
INACTIVITY_MOVES = {"retention": ("conversion", "retention", CHURN)}


def external_id(n: int) -> str:
    return f"{DEMO_PREFIX}{n:06d}"


def first_step_days(stage: str) -> int:
    return max(step.days for step in SCRIPTS[stage])


def stage_changed_offset(stage: str) -> timedelta | None:
    """When the customer entered their stage, relative to their last activity."""
    if stage in INACTIVITY_MOVES:
        return timedelta(days=CHURN_DAYS)
    moves = [step for step in SCRIPTS[stage] if step.moves]
    if not moves:
        return None
    last = min(moves, key=lambda step: (step.days, -step.minutes))
    return timedelta(days=-last.days, minutes=last.minutes)


# --- Python: dice and rows (PostgreSQL computes the same in audiences.demo_sql) --------------

def dice(seed: str) -> list[int]:
    """Sixteen numbers 0..65535 from sha256(seed): byte pairs, big-endian."""
    digest = hashlib.sha256(seed.encode()).digest()
    return [digest[i] * 256 + digest[i + 1] for i in range(0, 32, 2)]


def referral_code(n: int) -> str:
    x = (n * REFERRAL_MULTIPLIER) % 2**50
    return "".join(REFERRAL_CODE_ALPHABET[(x >> (5 * i)) & 31] for i in range(10))


def _stage_of(roll: int) -> str:
    total = 0
    for stage, percent in STAGE_MIX:
        total += percent
        if roll % 100 < total:
            return stage
    raise AssertionError("STAGE_MIX must add up to 100")


def _recency(stage: str, days_roll: int, seconds_roll: int) -> timedelta:
    days = (DORMANT_DAYS[0] + days_roll % DORMANT_DAYS[1] if stage in INACTIVITY_MOVES
            else days_roll % RECENT_DAYS)
    return timedelta(days=days, seconds=seconds_roll % 86400)


def customer_row(n: int, now: datetime) -> tuple[Customer, list[str]]:
    """Customer number n, unsaved, and the topic keys they opted out of."""
    d = dice(f"demo:customer:{n}")
    first, last = FIRST_NAMES[d[0] % len(FIRST_NAMES)], LAST_NAMES[d[1] % len(LAST_NAMES)]
    city, country, locale, time_zone = PLACES[d[2] % len(PLACES)]
    stage = _stage_of(d[5])
    anchor = now - _recency(stage, d[6], d[7])
    changed = stage_changed_offset(stage)
    customer = Customer(
        external_id=external_id(n), first_name=first, last_name=last,
        email=f"{first}.{last}.{n}@example.com".lower().replace(" ", ""), locale=locale,
        time_zone=time_zone, stage=stage, last_seen_at=anchor,
        stage_changed_at=anchor + changed if changed is not None else None,
        attributes={
            "city": city, "country": country, "favourite_cuisine": CUISINES[d[3] % len(CUISINES)],
            "plan": PLANS[d[4] % len(PLANS)],
            "signup_channel": SIGNUP_CHANNELS[d[12] % len(SIGNUP_CHANNELS)],
        },
        referral_code=referral_code(n), bucket=customer_bucket(external_id(n)),
        push_opt_out=d[11] % 100 < PUSH_OPT_OUT_PERCENT,
        created_at=anchor - timedelta(days=first_step_days(stage) + 1 + d[8] % 14),
        updated_at=now,
    )
    opt_outs = [key for i, (key, percent) in enumerate(OPT_OUT_PERCENT.items())
                if d[9 + i] % 100 < percent]
    return customer, opt_outs


def event_properties(kind: str, d: list[int]) -> dict:
    total = round((d[1] % 6800 + 1200) / 100, 2)
    return {
        "none": lambda: {},
        "guide": lambda: {"destination": DESTINATIONS[d[0] % len(DESTINATIONS)]},
        "order": lambda: {"restaurant": RESTAURANTS[d[0] % len(RESTAURANTS)], "total": total,
                          "items": 1 + d[2] % 4},
        "purchase": lambda: {"total": total, "currency": CURRENCY},
        "campaign": lambda: {"campaign": CAMPAIGNS[d[0] % len(CAMPAIGNS)]},
        "rating": lambda: {"score": 5, "restaurant": RESTAURANTS[d[0] % len(RESTAURANTS)]},
        "referral": lambda: {"channel": REFERRAL_CHANNELS[d[0] % len(REFERRAL_CHANNELS)]},
    }[kind]()


def event_rows(n: int, customer: Customer) -> list[tuple[Event, Step]]:
    rows = []
    for step in SCRIPTS[customer.stage]:
        d = dice(f"demo:event:{n}:{step.dice_group}")
        if d[3] % 100 >= step.share:
            continue
        occurred = customer.last_seen_at - timedelta(days=step.days, minutes=-step.minutes)
        rows.append((Event(
            customer=customer, name=step.name, properties=event_properties(step.props, d),
            occurred_at=occurred, received_at=occurred + timedelta(seconds=d[4] % 120),
            client_event_id=f"demo:{step.key}",
        ), step))
    return rows


@dataclass
class Timings:
    """Seconds and rows per part of the seeding, summed over chunks."""

    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, part: str, started: float, rows: int) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started
        self.rows[part] = self.rows.get(part, 0) + rows


def rule_ids() -> dict[str, int]:
    return dict(StageRule.objects.values_list("name", "pk"))


def transition_cause(rule: str, event_name: str | None) -> str:
    """The same wording as audiences.stages uses."""
    if event_name is None:
        return f"{rule}: no event for {CHURN_DAYS} days"
    return f"{rule}: {event_name} event"


def _seed_python(lo: int, hi: int, now: datetime, timings: Timings) -> None:
    started = time.perf_counter()
    ids = [external_id(n) for n in range(lo, hi + 1)]
    stored = Customer.objects.filter(external_id__in=ids)
    existing = set(stored.values_list("external_id", flat=True))
    built = [(n, *customer_row(n, now)) for n in range(lo, hi + 1)
             if external_id(n) not in existing]
    Customer.objects.bulk_create([customer for _, customer, _ in built])
    timings.add("customers", started, len(built))

    started = time.perf_counter()
    events = [(event, step) for n, customer, _ in built for event, step in event_rows(n, customer)]
    Event.objects.bulk_create([event for event, _ in events], batch_size=1000)
    timings.add("events", started, len(events))

    started = time.perf_counter()
    transitions = _transitions_python(built, events)
    StageTransition.objects.bulk_create(transitions, batch_size=1000)
    timings.add("transitions", started, len(transitions))

    started = time.perf_counter()
    topics = dict(Topic.objects.values_list("key", "pk"))
    opt_outs = [TopicOptOut(customer=customer, topic_id=topics[key], created_at=customer.created_at)
                for _, customer, keys in built for key in keys if key in topics]
    TopicOptOut.objects.bulk_create(opt_outs, batch_size=1000)
    timings.add("opt-outs", started, len(opt_outs))


def _transitions_python(built, events) -> list[StageTransition]:
    rules = rule_ids()
    rows = [
        StageTransition(customer=event.customer, from_stage=step.moves[0], to_stage=step.moves[1],
                        at=event.occurred_at, cause=transition_cause(step.moves[2], event.name),
                        rule_id=rules.get(step.moves[2]), event=event)
        for event, step in events if step.moves
    ]
    for _, customer, _ in built:
        if customer.stage in INACTIVITY_MOVES:
            from_stage, to_stage, rule = INACTIVITY_MOVES[customer.stage]
            rows.append(StageTransition(
                customer=customer, from_stage=from_stage, to_stage=to_stage,
                at=customer.stage_changed_at, cause=transition_cause(rule, None),
                rule_id=rules.get(rule),
            ))
    return rows


def customers_seed_range(*, lo: int, hi: int, now: datetime, timings: Timings) -> None:
    """Create demo customers lo..hi that do not exist yet, with their events, transitions and
    topic opt-outs. Call inside a transaction: a chunk is all there or not at all."""
    if connection.vendor == "postgresql":
        from audiences.demo_sql import seed_sql  # imports this module: import it when needed

        seed_sql(lo, hi, now, timings)
    else:
        _seed_python(lo, hi, now, timings)


def chunks(count: int) -> list[tuple[int, int]]:
    size = SQL_CHUNK if connection.vendor == "postgresql" else PYTHON_CHUNK
    return [(lo, min(lo + size - 1, count)) for lo in range(1, count + 1, size)]


def seed(*, customers: int, log=lambda message: None, per_chunk=None,
         now: datetime | None = None) -> Timings:
    """Make demo customers 1..customers exist with their events, transitions and opt-outs.

    ``per_chunk(lo, hi, timings)`` runs in each chunk's transaction: upper apps add what
    belongs to those customers (seed_demo adds devices). Returns the time and rows per part."""
    now = now or timezone.now().replace(microsecond=0)
    timings, started = Timings(), time.perf_counter()
    for lo, hi in chunks(customers):
        with transaction.atomic():
            customers_seed_range(lo=lo, hi=hi, now=now, timings=timings)
            if per_chunk is not None:
                per_chunk(lo, hi, timings)
        log(f"{hi:>10,} / {customers:,} customers  {time.perf_counter() - started:8.1f}s")
    if any(timings.rows.values()):
        analyze(timings, [Customer, Event, StageTransition, TopicOptOut])
    return timings


def analyze(timings: Timings, models: list) -> None:
    """Fresh planner statistics after bulk inserts: without them PostgreSQL plans queries on a
    million new rows as if the tables were empty."""
    if connection.vendor != "postgresql":
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(model._meta.db_table for model in models))
    timings.add("analyze", started, 0)
