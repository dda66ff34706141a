"""The demo data set computed by PostgreSQL itself: the rows of audiences.demo's Python build,
as INSERT ... SELECT over generate_series, a chunk of customers per call.

The dice are the same sha256 byte pairs (get_byte), the picks the same modulo, so a test can
compare both builds row by row. Each row's hash is computed once (MATERIALIZED, OFFSET 0):
inlined, every use of a die would hash again."""

import time
from datetime import datetime, timedelta

from django.db import connection

from audiences.demo_data import (
    CAMPAIGNS,
    CHURN_DAYS,
    CUISINES,
    CURRENCY,
    DEMO_PREFIX,
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
    Timings,
    first_step_days,
    rule_ids,
    stage_changed_offset,
    transition_cause,
)
from audiences.models import (
    BUCKET_COUNT,
    REFERRAL_CODE_ALPHABET,
    Customer,
    Event,
    StageTransition,
    Topic,
    TopicOptOut,
)

TWO_TO_64 = 2**64  # a negative bigint of PostgreSQL is the unsigned value minus this


def _die(digest: str, i: int) -> str:
    return f"(get_byte({digest}, {2 * i}) * 256 + get_byte({digest}, {2 * i + 1}))"


def _pick(array_param: str, size: int, roll: str) -> str:
    return f"(%({array_param})s::text[])[1 + mod({roll}, {size})]"


def external_id_sql(n: str) -> str:
    """external_id(n) in SQL; lpad alone would cut numbers of seven digits and more."""
    return (f"'{DEMO_PREFIX}' || CASE WHEN {n} < 1000000 THEN lpad({n}::text, 6, '0') "
            f"ELSE {n}::text END")


def hash64_sql(text: str) -> str:
    """The first 8 bytes of sha256(text) as PostgreSQL reads them: a SIGNED bigint."""
    return (f"('x' || substr(encode(sha256(convert_to({text}, 'UTF8')), 'hex'), 1, 16))"
            f"::bit(64)::bigint")


def bucket_sql(hash64: str) -> str:
    """customer_bucket() from hash64_sql(): a negative value is the unsigned one minus 2**64."""
    return (f"mod({hash64}::numeric + CASE WHEN {hash64} < 0 THEN {TWO_TO_64} ELSE 0 END, "
            f"{BUCKET_COUNT})::int")


def _referral_x_sql(n: str) -> str:
    """n * M mod 2**50, in numeric: the product overflows bigint."""
    return f"mod({n}::numeric * {REFERRAL_MULTIPLIER}, {2**50})::bigint"


def _referral_sql(x: str) -> str:
    """The referral code from _referral_x_sql()."""
    return " || ".join(
        f"substr('{REFERRAL_CODE_ALPHABET}', (({x} >> {5 * i}) & 31)::int + 1, 1)"
        for i in range(10)
    )


def _stage_case(roll: str) -> str:
    whens, total = [], 0
    for stage, percent in STAGE_MIX:
        total += percent
        whens.append(f"WHEN mod({roll}, 100) < {total} THEN '{stage}'")
    return f"CASE {' '.join(whens)} END"


def _per_stage(expression_by_stage: dict[str, str], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN '{stage}' THEN {expr}" for stage, expr in expression_by_stage.items())
    return f"CASE stage {whens} ELSE {default} END"


def _seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


# The chunk's new customers, for the parts that follow; gone at commit.
NEW_CUSTOMERS_TABLE_SQL = """
DROP TABLE IF EXISTS demo_new;
CREATE TEMP TABLE demo_new (id bigint PRIMARY KEY, n bigint, stage text, anchor timestamptz,
                            created_at timestamptz, opt_outs text[]) ON COMMIT DROP
"""
CUSTOMERS_SQL = """
WITH numbered AS (
    SELECT n, {external_id} AS external_id
    FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS n
), src AS MATERIALIZED (  -- computed once per row; inlined, each use would hash again
    SELECT numbered.*, sha256(convert_to('demo:customer:' || n, 'UTF8')) AS d,
           {hash64} AS hash64, {referral_x} AS referral_x
    FROM numbered
), fresh AS (
    SELECT src.*, {stage} AS stage, mod({d2}, {places}) + 1 AS place
    FROM src
    WHERE NOT EXISTS (SELECT 1 FROM {customer} c WHERE c.external_id = src.external_id)
), timed AS (
    SELECT fresh.*,
           %(now)s::timestamptz - make_interval(
               days => CASE WHEN stage = 'retention' THEN {dormant_from} + mod({d6}, {dormant_span})
                            ELSE mod({d6}, {recent_days}) END,
               secs => mod({d7}, 86400)) AS anchor
    FROM fresh
), shaped AS (
    SELECT timed.*,
           {first_name} AS first_name, {last_name} AS last_name,
           (%(cities)s::text[])[place] AS city,
           anchor - make_interval(days => {first_days} + 1 + mod({d8}, 14)) AS created_at,
           array_remove(ARRAY[{opt_outs}], NULL) AS opt_outs
    FROM timed
), inserted AS (
    INSERT INTO {customer} (
        external_id, first_name, last_name, email, locale, time_zone, attributes, stage,
        stage_changed_at, last_seen_at, referral_code, referred_by_id, bucket, push_opt_out,
        created_at, updated_at)
    SELECT external_id, first_name, last_name,
           replace(lower(first_name || '.' || last_name || '.' || n || '@example.com'), ' ', ''),
           (%(locales)s::text[])[place], (%(time_zones)s::text[])[place],
           jsonb_build_object(
               'city', city, 'country', (%(countries)s::text[])[place],
               'favourite_cuisine', {cuisine}, 'plan', {plan}, 'signup_channel', {channel}),
           stage, anchor + make_interval(secs => {changed_secs}), anchor, {referral}, NULL,
           {bucket}, mod({d11}, 100) < {push_opt_out}, created_at, %(now)s::timestamptz
    FROM shaped
    RETURNING id, external_id
)
INSERT INTO demo_new
SELECT inserted.id, shaped.n, shaped.stage, shaped.anchor, shaped.created_at, shaped.opt_outs
FROM inserted JOIN shaped USING (external_id);
"""


def _customers_sql() -> str:
    d = [_die("d", i) for i in range(16)]
    opt_outs = ", ".join(
        f"CASE WHEN mod({d[9 + i]}, 100) < {percent} THEN '{key}' END"
        for i, (key, percent) in enumerate(OPT_OUT_PERCENT.items())
    )
    changed = {stage: str(_seconds(stage_changed_offset(stage)))
               for stage in SCRIPTS if stage_changed_offset(stage) is not None}
    return CUSTOMERS_SQL.format(
        external_id=external_id_sql("n"), stage=_stage_case(d[5]), d2=d[2], d6=d[6], d7=d[7],
        d8=d[8], d11=d[11], places=len(PLACES), customer=Customer._meta.db_table,
        dormant_from=DORMANT_DAYS[0], dormant_span=DORMANT_DAYS[1], recent_days=RECENT_DAYS,
        first_name=_pick("first_names", len(FIRST_NAMES), d[0]),
        last_name=_pick("last_names", len(LAST_NAMES), d[1]),
        first_days=_per_stage({s: str(first_step_days(s)) for s in SCRIPTS}),
        opt_outs=opt_outs, cuisine=_pick("cuisines", len(CUISINES), d[3]),
        plan=_pick("plans", len(PLANS), d[4]),
        channel=_pick("channels", len(SIGNUP_CHANNELS), d[12]), changed_secs=_per_stage(changed),
        referral=_referral_sql("referral_x"), referral_x=_referral_x_sql("n"),
        hash64=hash64_sql("external_id"), bucket=bucket_sql("hash64"),
        push_opt_out=PUSH_OPT_OUT_PERCENT,
    )


def _steps_values() -> tuple[str, dict]:
    rows, params = [], {}
    for stage, steps in SCRIPTS.items():
        for i, step in enumerate(steps):
            key = f"s_{stage}_{i}"
            params.update({f"{key}_key": step.key, f"{key}_group": step.dice_group,
                           f"{key}_name": step.name, f"{key}_props": step.props})
            rows.append(f"('{stage}', %({key}_key)s, %({key}_group)s, %({key}_name)s, "
                        f"{step.days}, {step.minutes}, {step.share}, %({key}_props)s)")
    return ",\n".join(rows), params


EVENTS_SQL = """
INSERT INTO {event} (customer_id, name, properties, occurred_at, received_at, client_event_id)
SELECT c.id, s.name, {properties}, t.occurred_at,
       t.occurred_at + make_interval(secs => mod({d4}, 120)), 'demo:' || s.key
FROM demo_new c
JOIN (VALUES {steps}) AS s(stage, key, grp, name, days, minutes, share, props)
  ON s.stage = c.stage
CROSS JOIN LATERAL (
    SELECT sha256(convert_to('demo:event:' || c.n || ':' || s.grp, 'UTF8')) AS d,
           c.anchor - make_interval(days => s.days) + make_interval(mins => s.minutes)
               AS occurred_at
    OFFSET 0  -- keeps the subquery whole, so each die reads d instead of hashing again
) t
WHERE mod({d3}, 100) < s.share
"""


def _events_sql() -> tuple[str, dict]:
    d = [_die("t.d", i) for i in range(16)]
    total = f"round((mod({d[1]}, 6800) + 1200) / 100.0, 2)"
    restaurant = _pick("restaurants", len(RESTAURANTS), d[0])
    properties = f"""CASE s.props
        WHEN 'guide' THEN jsonb_build_object(
            'destination', {_pick("destinations", len(DESTINATIONS), d[0])})
        WHEN 'order' THEN jsonb_build_object(
            'restaurant', {restaurant}, 'total', {total}, 'items', 1 + mod({d[2]}, 4))
        WHEN 'purchase' THEN jsonb_build_object('total', {total}, 'currency', '{CURRENCY}')
        WHEN 'campaign' THEN jsonb_build_object(
            'campaign', {_pick("campaigns", len(CAMPAIGNS), d[0])})
        WHEN 'rating' THEN jsonb_build_object('score', 5, 'restaurant', {restaurant})
        WHEN 'referral' THEN jsonb_build_object(
            'channel', {_pick("referral_channels", len(REFERRAL_CHANNELS), d[0])})
        ELSE '{{}}'::jsonb END"""
    steps, params = _steps_values()
    sql = EVENTS_SQL.format(event=Event._meta.db_table, properties=properties, d3=d[3], d4=d[4],
                            steps=steps)
    return sql, params


TRANSITIONS_SQL = """
INSERT INTO {transition} (customer_id, from_stage, to_stage, at, cause, rule_id, event_id)
SELECT e.customer_id, m.from_stage, m.to_stage, e.occurred_at, m.cause, m.rule_id, e.id
FROM demo_new c
JOIN (VALUES {moves}) AS m(stage, client_event_id, from_stage, to_stage, cause, rule_id)
  ON m.stage = c.stage
JOIN {event} e ON e.customer_id = c.id AND e.client_event_id = m.client_event_id
UNION ALL
SELECT c.id, m.from_stage, m.to_stage, c.anchor + make_interval(days => {churn_days}), m.cause,
       m.rule_id, NULL
FROM demo_new c
JOIN (VALUES {inactive}) AS m(stage, from_stage, to_stage, cause, rule_id) ON m.stage = c.stage
"""


def _transitions_sql() -> tuple[str, dict]:
    rules, params, moves, inactive = rule_ids(), {}, [], []
    for stage, steps in SCRIPTS.items():
        for i, step in enumerate(s for s in steps if s.moves):
            key = f"m_{stage}_{i}"
            from_stage, to_stage, rule = step.moves
            params.update({f"{key}_id": f"demo:{step.key}",
                           f"{key}_cause": transition_cause(rule, step.name),
                           f"{key}_rule": rules.get(rule)})
            moves.append(f"('{stage}', %({key}_id)s, '{from_stage}', '{to_stage}', "
                         f"%({key}_cause)s, %({key}_rule)s::bigint)")
    for stage, (from_stage, to_stage, rule) in INACTIVITY_MOVES.items():
        params.update({f"i_{stage}_cause": transition_cause(rule, None),
                       f"i_{stage}_rule": rules.get(rule)})
        inactive.append(f"('{stage}', '{from_stage}', '{to_stage}', %(i_{stage}_cause)s, "
                        f"%(i_{stage}_rule)s::bigint)")
    sql = TRANSITIONS_SQL.format(
        transition=StageTransition._meta.db_table, event=Event._meta.db_table,
        moves=", ".join(moves), inactive=", ".join(inactive), churn_days=CHURN_DAYS,
    )
    return sql, params


OPT_OUTS_SQL = """
INSERT INTO {opt_out} (customer_id, topic_id, created_at)
SELECT c.id, t.id, c.created_at
FROM demo_new c CROSS JOIN LATERAL unnest(c.opt_outs) AS k(key) JOIN {topic} t ON t.key = k.key
"""


def _sql_params(lo: int, hi: int, now: datetime) -> dict:
    return {
        "lo": lo, "hi": hi, "now": now, "first_names": FIRST_NAMES, "last_names": LAST_NAMES,
        "cities": [p[0] for p in PLACES], "countries": [p[1] for p in PLACES],
        "locales": [p[2] for p in PLACES], "time_zones": [p[3] for p in PLACES],
        "cuisines": CUISINES, "plans": PLANS, "channels": SIGNUP_CHANNELS,
        "restaurants": RESTAURANTS, "destinations": DESTINATIONS, "campaigns": CAMPAIGNS,
        "referral_channels": REFERRAL_CHANNELS,
    }


def seed_sql(lo: int, hi: int, now: datetime, timings: Timings) -> None:
    params = _sql_params(lo, hi, now)
    events_sql, event_params = _events_sql()
    transitions_sql, transition_params = _transitions_sql()
    opt_outs_sql = OPT_OUTS_SQL.format(opt_out=TopicOptOut._meta.db_table,
                                       topic=Topic._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(NEW_CUSTOMERS_TABLE_SQL)
        parts = [
            ("customers", _customers_sql(), params),
            ("events", events_sql, {**params, **event_params}),
            ("transitions", transitions_sql, transition_params),
            ("opt-outs", opt_outs_sql, {}),
        ]
        for part, sql, part_params in parts:
            started = time.perf_counter()
            cursor.execute(sql, part_params)
            rows = cursor.rowcount
            if part == "customers":
                cursor.execute("SELECT count(*) FROM demo_new")
                rows = cursor.fetchone()[0]
            timings.add(part, started, rows)
