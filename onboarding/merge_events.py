"""The merge of staged history (onboarding.staging EVENTS) into events, with set-based SQL.

Each event is stored once per customer and sender's id: an id already stored, or repeated
further down the file, is a duplicate. Customers' last activity moves forward to their newest
imported event. Imported events are not announced, so no journey starts from history; event
stage rules run over them only when asked."""

from dataclasses import dataclass, field

from django.db import connection

from audiences.models import Customer, Event, StageRule
from audiences.stages import stage_rule_apply_quietly
from onboarding.codes import referral_codes
from onboarding.sql_steps import SqlSteps
from onboarding.staging import EVENTS as S

CODE_RETRIES = 5  # as onboarding.merge: fresh codes for customers whose drawn code was taken


@dataclass
class EventsSummary:
    events: dict[str, int] = field(default_factory=dict)  # created / duplicate
    customers_created: int = 0
    refused_lines: int = 0
    stage_moves: int = 0


def events_merge(*, now, create_customers: bool, apply_stage_rules: bool) -> EventsSummary:
    merge = _EventsMerge(now=now)
    summary = EventsSummary()
    merge.index()
    summary.customers_created = merge.customers(create=create_customers)
    merge.duplicates()
    rule_customers = merge.rule_customers() if apply_stage_rules else []
    summary.events = merge.insert()
    merge.last_seen()
    for rule, customer_ids in rule_customers:
        cause = f"{rule.name}: {rule.event_name} event (imported history)"
        summary.stage_moves += stage_rule_apply_quietly(rule=rule, customer_ids=customer_ids,
                                                        cause=cause)
    summary.refused_lines = merge.rows("SELECT COUNT(*) FROM {S} WHERE error IS NOT NULL")[0][0]
    return summary


class _EventsMerge(SqlSteps):
    names = {"S": S, "C": Customer._meta.db_table, "E": Event._meta.db_table}

    def index(self) -> None:
        self.sql("CREATE INDEX jh_stage_event_line ON {S} (line)")
        self.sql("CREATE INDEX jh_stage_event_key ON {S} (external_id, client_event_id, line)")
        if self.pg:
            self.sql("ANALYZE {S}")

    def customers(self, *, create: bool) -> int:
        self._find_customers()
        if not create:
            self.sql("""
                UPDATE {S} SET error = 'customer_id: No customer has this external id; import '
                    || 'the customers first, or allow new ones (--create-customers).'
                WHERE customer_id IS NULL AND error IS NULL""")
            return 0
        created = 0
        for _ in range(CODE_RETRIES):
            created += self.sql("""
                INSERT INTO {C} (external_id, first_name, last_name, email, locale, time_zone,
                    attributes, stage, referral_code, bucket, push_opt_out, created_at,
                    updated_at)
                SELECT s.external_id, '', '', '', %s, %s, '{{}}', %s, MIN(s.new_code),
                    MIN(s.bucket), FALSE, %s, %s
                FROM {S} AS s WHERE s.customer_id IS NULL AND s.error IS NULL
                GROUP BY s.external_id
                ON CONFLICT DO NOTHING""", [*_defaults(), self.now, self.now])
            self._find_customers()
            left = [line for (line,) in self.rows(
                "SELECT line FROM {S} WHERE customer_id IS NULL AND error IS NULL")]
            if not left:
                return created
            with connection.cursor() as cursor:  # a drawn referral code was taken: draw again
                cursor.executemany(f"UPDATE {S} SET new_code = %s WHERE line = %s",
                                   list(zip(referral_codes(len(left)), left, strict=True)))
        raise RuntimeError("New customers could not be given unique referral codes.")

    def _find_customers(self) -> None:
        self.sql("""
            UPDATE {S} AS s SET customer_id = c.id FROM {C} AS c
            WHERE c.external_id = s.external_id AND s.customer_id IS NULL
              AND s.error IS NULL""")

    def duplicates(self) -> None:
        self.sql("""
            UPDATE {S} AS s SET status = 'duplicate'
            WHERE s.error IS NULL AND (
                EXISTS (SELECT 1 FROM {S} AS o WHERE o.external_id = s.external_id
                        AND o.client_event_id = s.client_event_id AND o.line < s.line
                        AND o.error IS NULL)
                OR EXISTS (SELECT 1 FROM {E} AS e WHERE e.customer_id = s.customer_id
                           AND e.client_event_id = s.client_event_id))""")

    def rule_customers(self) -> list[tuple[StageRule, list[int]]]:
        """Per active event rule, in priority order, the customers it would move: those with
        a new event of its name (and, for a first-time rule, none of that name before)."""
        plan = []
        for rule in StageRule.objects.filter(is_active=True, kind=StageRule.Kind.EVENT):
            first_only = ("AND NOT EXISTS (SELECT 1 FROM {E} AS e WHERE "
                          "e.customer_id = s.customer_id AND e.name = s.name)"
                          if rule.first_time_only else "")
            ids = [pk for (pk,) in self.rows(f"""
                SELECT DISTINCT s.customer_id FROM {{S}} AS s
                WHERE s.error IS NULL AND s.status IS NULL AND s.name = %s {first_only}""",
                [rule.event_name])]
            if ids:
                plan.append((rule, ids))
        return plan

    def insert(self) -> dict[str, int]:
        created = self.sql("""
            INSERT INTO {E} (customer_id, name, properties, occurred_at, received_at,
                client_event_id)
            SELECT s.customer_id, s.name, s.properties, s.occurred_at, %s, s.client_event_id
            FROM {S} AS s WHERE s.error IS NULL AND s.status IS NULL
            ON CONFLICT DO NOTHING""", [self.now])
        duplicates = self.rows("SELECT COUNT(*) FROM {S} WHERE status = 'duplicate'")[0][0]
        return {"created": created, "duplicate": duplicates}

    def last_seen(self) -> None:
        self.sql("""
            UPDATE {C} AS c SET last_seen_at = m.newest
            FROM (SELECT customer_id, MAX(occurred_at) AS newest FROM {S}
                  WHERE error IS NULL AND status IS NULL GROUP BY customer_id) AS m
            WHERE c.id = m.customer_id
              AND (c.last_seen_at IS NULL OR c.last_seen_at < m.newest)""")


def _defaults() -> list:
    return [Customer._meta.get_field(name).default for name in ("locale", "time_zone", "stage")]
