"""Demo customers whose events tell their journey, from a couple of thousand to the scale set.

Every value of customer number n comes from sha256 "dice" of n, so the data is the same on
every machine and a second run finds everything in place and adds nothing. PostgreSQL builds
it with INSERT ... SELECT over generate_series (audiences.demo_sql: a million customers in
about five minutes); other databases get the same rows from Python in batches, which is fine
for thousands. What the data set holds, both builds read from audiences.demo_data."""

import hashlib
import time
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.demo_data import (
    CAMPAIGNS,
    CUISINES,
    CURRENCY,
    DESTINATIONS,
    DORMANT_DAYS,
    FIRST_NAMES,
    INACTIVITY_MOVES,
    LAST_NAMES,
    OPT_OUT_PERCENT,
    PLACES,
    PLANS,
    PUSH_OPT_OUT_PERCENT,
    RECENT_DAYS,
    REFERRAL_CHANNELS,
    REFERRAL_MULTIPLIER,
    RESTAURANTS,
    SCRIPTS,
    SIGNUP_CHANNELS,
    STAGE_MIX,
    Step,
    Timings,
    external_id,
    first_step_days,
    rule_ids,
    stage_changed_offset,
    transition_cause,
)
from audiences.demo_sql import seed_sql
from audiences.models import (
    REFERRAL_CODE_ALPHABET,
    Customer,
    Event,
    StageTransition,
    Topic,
    TopicOptOut,
    customer_bucket,
)

SQL_CHUNK = 100_000  # customers per transaction on PostgreSQL: ~500k events, ~30 s
PYTHON_CHUNK = 500  # customers per batch elsewhere


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
