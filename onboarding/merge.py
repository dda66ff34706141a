"""The merge: staged customers (onboarding.staging) into customers, consent, devices and
referrals, with one set-based statement per step, whatever the number of rows.

Order: refuse what the rows cannot be together (one customer twice with different values, one
token on two lines, a referral code taken); find who exists; decide each customer's outcome
(created, updated, unchanged) by comparing what was sent with what is stored; then write only
what differs. Sending the same rows again therefore finds everything unchanged and writes
nothing. Runs inside the caller's transaction; PostgreSQL and SQLite differ only in the JSON
functions and in how attributes merge (see _attributes_sqlite)."""

import json
from dataclasses import dataclass, field

from django.db import connection

from audiences.models import Customer, Event, StageTransition, Topic, TopicOptOut
from audiences.services import REFERRAL_SIGNUP_EVENT
from notifications.models import Device
from onboarding.codes import referral_codes
from onboarding.merge_devices import DeviceSteps
from onboarding.sql_steps import SqlSteps
from onboarding.staging import CUSTOMERS as S
from onboarding.staging import DEVICES as D

PRIMARY = "(s.primary_line IS NULL OR s.primary_line = s.line)"  # the row that speaks for it
CODE_RETRIES = 5  # fresh referral codes drawn for new customers whose code was taken meanwhile
ATTRIBUTE_BATCH = 1000  # rows whose attributes SQLite merges per round trip
PROFILE_TEXT = ("first_name", "last_name", "email", "locale", "time_zone", "stage",
                "referral_code")
WORK_MEM = "64MB"  # per sort or hash of this one transaction, for the length of the merge


class CreatedMeanwhile(Exception):
    """Customers this merge was creating were created by another transaction a moment before
    (the same customers sent twice at once): this merge must run again, and will then update
    them. Nothing is written before it is raised, if its transaction is rolled back."""


@dataclass
class MergeSummary:
    customers: dict[str, int] = field(default_factory=dict)  # created/updated/unchanged
    devices: dict[str, int] = field(default_factory=dict)  # created/updated/moved/unchanged
    refused_lines: int = 0
    referral_events: list[tuple[int, int, str]] = field(default_factory=list)  # id, customer


def stage_merge(*, now, stage_cause: str | None = None, unit: str = "line") -> MergeSummary:
    """Merge the staged rows. ``stage_cause`` records file-set stage changes as transitions
    (files may set a stage; the API may not). Returns what changed; the staging table keeps
    each line's ``status`` and ``error``; errors name other rows as ``unit`` N (a file's
    line, a batch's item)."""
    merge = _Merge(now=now, stage_cause=stage_cause, unit=unit)
    return merge.run()


class _Merge(SqlSteps, DeviceSteps):
    names = {
        "S": S, "D": D, "C": Customer._meta.db_table, "T": Topic._meta.db_table,
        "O": TopicOptOut._meta.db_table, "E": Event._meta.db_table,
        "ST": StageTransition._meta.db_table, "DV": Device._meta.db_table,
    }

    def __init__(self, *, now, stage_cause, unit):
        super().__init__(now=now)
        self.stage_cause, self.unit = stage_cause, unit

    def run(self) -> MergeSummary:
        self._index_stage()
        self.facts = self._facts()
        repeated = self._refuse_repeated_customers()
        if self.facts["devices"]:
            self._stage_devices()
            repeated += self._refuse_repeated_tokens()
        self._find_customers()
        if self.facts["referral_code"] or self.facts["referred_by_code"]:
            self._refuse_referral_conflicts()
        if repeated or self.facts["referral_code"] or self.facts["referred_by_code"]:
            self._refuse_with_primary()
        if not self.pg:
            self._attributes_sqlite()
        if self.facts["devices"]:
            self._find_devices()
        self._decide()
        summary = self._summary()
        self._write_customers()
        if self.facts["topics"]:
            self._write_topics()
        if self.facts["devices"]:
            self._write_devices()
        if self.facts["referred_by_code"]:
            summary.referral_events = self._write_referrals()
        return summary

    # --- plumbing ------------------------------------------------------------------------

    def insert_and_fill(self, insert: str, params, *, returning: str, fill: str,
                        refill: str) -> None:
        """Insert rows, then note their ids in the staging table. PostgreSQL does both in one
        statement (``fill`` reads the inserted rows as ``new``), without looking the rows up
        again in a table of millions; elsewhere ``refill`` looks them up."""
        if self.pg:
            self.sql(f"WITH new AS ({insert} RETURNING {returning}) {fill}", params)
        else:
            self.sql(insert, params)
            self.sql(refill)


    # --- refusals ------------------------------------------------------------------------

    def _index_stage(self) -> None:
        if self.pg:  # joins of a million staged rows hash in memory instead of spilling
            self.sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
        self.sql("CREATE INDEX jh_stage_customer_line ON {S} (line)")
        self.sql("CREATE INDEX jh_stage_customer_eid ON {S} (external_id)")
        if self.pg:
            self.sql("ANALYZE {S}")

    def _facts(self) -> dict[str, int]:
        """How many staged rows set each of the optional parts: steps about parts no row sets
        are skipped (each would read the whole staging table for nothing)."""
        parts = ("referral_code", "referred_by_code", "topics", "devices")
        counts = self.rows(f"SELECT {', '.join(f'COUNT({part})' for part in parts)} FROM {{S}}")
        facts = dict(zip(parts, counts[0], strict=True))
        if facts["referral_code"]:
            self.sql("CREATE INDEX jh_stage_customer_code ON {S} (referral_code)")
        return facts

    def _refuse_repeated_customers(self) -> int:
        """A customer on several lines: the first line that sets customer fields speaks for
        them (else the first line); the others may only add devices, and are refused if they
        set customer fields differently. Returns how many lines name a customer again."""
        repeated = self.sql("""
            UPDATE {S} AS s SET primary_line = g.p FROM (
                SELECT external_id,
                       COALESCE(MIN(CASE WHEN fp IS NOT NULL THEN line END), MIN(line)) AS p
                FROM {S} WHERE error IS NULL GROUP BY external_id HAVING COUNT(*) > 1
            ) AS g
            WHERE s.external_id = g.external_id AND s.error IS NULL""")
        if repeated:
            self.sql(f"""
                UPDATE {{S}} AS s SET error = 'external_id: This customer is on {self.unit} '
                    || s.primary_line || ' with other values; further {self.unit}s of a '
                    || 'customer may only add devices.'
                WHERE s.primary_line IS NOT NULL AND s.line <> s.primary_line
                  AND s.fp IS NOT NULL AND s.error IS NULL
                  AND s.fp <> (SELECT p.fp FROM {{S}} AS p WHERE p.line = s.primary_line)""")
        return repeated

    def _find_customers(self) -> None:
        self.sql("""
            UPDATE {S} AS s SET customer_id = c.id FROM {C} AS c
            WHERE c.external_id = s.external_id AND s.error IS NULL""")

    def _refuse_referral_conflicts(self) -> None:
        self.sql(f"""
            UPDATE {{S}} AS s SET error = 'referral_code: Another customer has this code.'
            WHERE s.error IS NULL AND s.referral_code IS NOT NULL AND {PRIMARY}
              AND (EXISTS (SELECT 1 FROM {{C}} AS c WHERE c.referral_code = s.referral_code
                           AND c.external_id <> s.external_id)
                   OR EXISTS (SELECT 1 FROM {{S}} AS o WHERE o.referral_code = s.referral_code
                              AND o.external_id <> s.external_id AND o.line < s.line
                              AND o.error IS NULL))""")
        self.sql(f"""
            UPDATE {{S}} AS s SET error = 'referred_by_code: A customer cannot refer themselves.'
            WHERE s.error IS NULL AND s.referred_by_code IS NOT NULL AND {PRIMARY}
              AND (s.referred_by_code = s.referral_code
                   OR EXISTS (SELECT 1 FROM {{C}} AS c WHERE c.id = s.customer_id
                              AND c.referral_code = s.referred_by_code))""")
        self.sql(f"""
            UPDATE {{S}} AS s SET error = 'referred_by_code: No customer has this referral code.'
            WHERE s.error IS NULL AND s.referred_by_code IS NOT NULL AND {PRIMARY}
              AND NOT EXISTS (SELECT 1 FROM {{C}} AS c WHERE c.referral_code = s.referred_by_code)
              AND NOT EXISTS (SELECT 1 FROM {{S}} AS o WHERE o.referral_code = s.referred_by_code
                              AND o.error IS NULL)""")

    def _refuse_with_primary(self) -> None:
        """A customer's first line refused takes their other lines with it; a refused line's
        devices are not written."""
        self.sql(f"""
            UPDATE {{S}} AS s SET error = 'external_id: Refused with {self.unit} '
                || s.primary_line || ', this customer''s first {self.unit}.'
            WHERE s.error IS NULL AND s.primary_line IS NOT NULL AND s.primary_line <> s.line
              AND EXISTS (SELECT 1 FROM {S} AS p WHERE p.line = s.primary_line
                          AND p.error IS NOT NULL)""")
        self.sql("DELETE FROM {D} WHERE line IN (SELECT line FROM {S} WHERE error IS NOT NULL)")

    # --- what would change ---------------------------------------------------------------

    def _attributes_sqlite(self) -> None:
        """SQLite has no jsonb: merge sent attributes into stored ones in Python, a batch at a
        time, keeping in ``attrs_full`` only results that differ from what is stored."""
        after = -1
        while True:
            batch = self.rows(f"""
                SELECT s.line, s.attrs_set, s.attrs_del, c.attributes
                FROM {{S}} AS s JOIN {{C}} AS c ON c.id = s.customer_id
                WHERE s.error IS NULL AND s.attrs_set IS NOT NULL AND {PRIMARY} AND s.line > %s
                ORDER BY s.line LIMIT {ATTRIBUTE_BATCH}""", [after])
            if not batch:
                return
            changes = []
            for line, sent, deleted, stored in batch:
                stored = json.loads(stored) if stored else {}
                merged = {**stored, **json.loads(sent)}
                for key in json.loads(deleted or "[]"):
                    merged.pop(key, None)
                if merged != stored:
                    changes.append((json.dumps(merged, ensure_ascii=False), line))
            with connection.cursor() as cursor:
                cursor.executemany(f"UPDATE {S} SET attrs_full = %s WHERE line = %s", changes)
            after = batch[-1][0]

    def _merged_attributes(self) -> str:
        if not self.pg:
            return "COALESCE(s.attrs_full, c.attributes)"
        return ("CASE WHEN s.attrs_set IS NULL THEN c.attributes "
                "WHEN s.attrs_del IS NULL THEN c.attributes || s.attrs_set ELSE "
                "(c.attributes || s.attrs_set) - ARRAY(SELECT jsonb_array_elements_text("
                "s.attrs_del)) END")

    def _fields_differ(self) -> str:
        """True when the staged row ``s`` changes the stored customer ``c``."""
        checks = [f"(s.{name} IS NOT NULL AND c.{name} <> s.{name})" for name in PROFILE_TEXT]
        checks.append("(s.push_opt_out IS NOT NULL AND c.push_opt_out <> s.push_opt_out)")
        if self.pg:
            checks.append(f"(s.attrs_set IS NOT NULL AND c.attributes <> "
                          f"{self._merged_attributes()})")
        else:
            checks.append("s.attrs_full IS NOT NULL")
        return "(" + " OR ".join(checks) + ")"

    def _referral_due(self) -> str:
        return ("(s.referred_by_code IS NOT NULL AND c.referred_by_id IS NULL AND (EXISTS ("
                "SELECT 1 FROM {C} AS r WHERE r.referral_code = s.referred_by_code "
                "AND r.id <> c.id) OR EXISTS (SELECT 1 FROM {S} AS o "
                "WHERE o.referral_code = s.referred_by_code AND o.error IS NULL)))")

    def _topics_differ(self) -> str:
        return f"""(s.topics IS NOT NULL AND (
            EXISTS (SELECT 1 FROM {{O}} AS o JOIN {{T}} AS t ON t.id = o.topic_id
                    WHERE o.customer_id = s.customer_id
                      AND t.key NOT IN (SELECT j.value FROM {self.elements('s.topics')}))
            OR EXISTS (SELECT 1 FROM {self.elements('s.topics')} JOIN {{T}} AS t
                       ON t.key = j.value
                       WHERE NOT EXISTS (SELECT 1 FROM {{O}} AS o
                                         WHERE o.customer_id = s.customer_id
                                           AND o.topic_id = t.id))))"""

    def _decide(self) -> None:
        """The outcome of each known customer: updated or unchanged. New customers keep no
        status until they are inserted (then: created), so a first import of a million new
        customers rewrites no staged row here."""
        customer = self._fields_differ()
        if self.facts["referred_by_code"]:
            customer += f" OR {self._referral_due()}"
        changes = [f"EXISTS (SELECT 1 FROM {{C}} AS c WHERE c.id = s.customer_id "
                   f"AND ({customer}))"]
        if self.facts["topics"]:
            changes.append(self._topics_differ())
        if self.facts["devices"]:
            changes.append("EXISTS (SELECT 1 FROM {D} AS d WHERE d.external_id = s.external_id "
                           "AND (d.device_id IS NULL OR d.changed))")
        self.sql(f"""
            UPDATE {{S}} AS s SET status = CASE WHEN {' OR '.join(changes)}
                THEN 'updated' ELSE 'unchanged' END
            WHERE s.error IS NULL AND s.customer_id IS NOT NULL AND {PRIMARY}""")
        self.sql("""
            UPDATE {S} AS s SET status = (SELECT p.status FROM {S} AS p
                                          WHERE p.line = s.primary_line)
            WHERE s.error IS NULL AND s.customer_id IS NOT NULL
              AND s.primary_line IS NOT NULL AND s.line <> s.primary_line""")
        self.sql("UPDATE {S} SET status = 'invalid' WHERE error IS NOT NULL")

    def _summary(self) -> MergeSummary:
        summary = MergeSummary()
        for status, count in self.rows(f"""
                SELECT COALESCE(s.status, 'created'), COUNT(*) FROM {{S}} AS s
                WHERE s.error IS NULL AND {PRIMARY} GROUP BY COALESCE(s.status, 'created')"""):
            summary.customers[status] = count
        summary.refused_lines = self.rows("SELECT COUNT(*) FROM {S} WHERE error IS NOT NULL")[0][0]
        (created, updated, moved, total), = self.rows("""
            SELECT COALESCE(SUM(CASE WHEN device_id IS NULL THEN 1 ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN changed THEN 1 ELSE 0 END), 0),
                   COALESCE(SUM(CASE WHEN moved THEN 1 ELSE 0 END), 0), COUNT(*)
            FROM {D}""")
        summary.devices = {"created": created, "updated": updated, "moved": moved,
                           "unchanged": total - created - updated}
        return summary

    # --- writes --------------------------------------------------------------------------

    def _write_customers(self) -> None:
        if self.stage_cause is not None:
            self.sql(f"""
                INSERT INTO {{ST}} (customer_id, from_stage, to_stage, at, cause)
                SELECT c.id, c.stage, s.stage, %s, %s FROM {{S}} AS s
                JOIN {{C}} AS c ON c.id = s.customer_id
                WHERE s.status = 'updated' AND {PRIMARY} AND s.stage IS NOT NULL
                  AND s.stage <> c.stage""", [self.now, self.stage_cause])
        sets = ", ".join(f"{name} = COALESCE(s.{name}, c.{name})"
                         for name in PROFILE_TEXT + ("push_opt_out",))
        self.sql(f"""
            UPDATE {{C}} AS c SET {sets},
                stage_changed_at = CASE WHEN s.stage IS NOT NULL AND s.stage <> c.stage
                                        THEN %s ELSE c.stage_changed_at END,
                attributes = {self._merged_attributes() if self.pg else
                              'COALESCE(s.attrs_full, c.attributes)'},
                updated_at = %s
            FROM {{S}} AS s
            WHERE c.id = s.customer_id AND s.status = 'updated' AND {PRIMARY}
              AND {self._fields_differ()}""", [self.now, self.now])
        self._insert_customers()

    def _insert_customers(self) -> None:
        """New customers, inserted in the order of their external ids: each index on it then
        grows at one end instead of at a million random places (a third less time)."""
        defaults = {name: Customer._meta.get_field(name).default
                    for name in ("locale", "time_zone", "stage")}
        for _ in range(CODE_RETRIES):
            self.insert_and_fill(f"""
                INSERT INTO {{C}} (external_id, first_name, last_name, email, locale, time_zone,
                    attributes, stage, stage_changed_at, referral_code, bucket, push_opt_out,
                    created_at, updated_at)
                SELECT s.external_id, COALESCE(s.first_name, ''), COALESCE(s.last_name, ''),
                    COALESCE(s.email, ''), COALESCE(s.locale, %s), COALESCE(s.time_zone, %s),
                    COALESCE(s.attrs_set, '{{{{}}}}'), COALESCE(s.stage, %s),
                    CASE WHEN s.stage IS NOT NULL THEN %s END,
                    COALESCE(s.referral_code, s.new_code), s.bucket,
                    COALESCE(s.push_opt_out, FALSE), COALESCE(s.created_at, %s), %s
                FROM {{S}} AS s
                WHERE s.error IS NULL AND s.customer_id IS NULL AND {PRIMARY}
                ORDER BY s.external_id
                ON CONFLICT DO NOTHING""",
                [defaults["locale"], defaults["time_zone"], defaults["stage"], self.now,
                 self.now, self.now],
                returning="id, external_id",
                fill="""UPDATE {S} AS s SET customer_id = new.id, status = 'created'
                        FROM new WHERE s.external_id = new.external_id
                          AND s.error IS NULL""",
                refill="""UPDATE {S} AS s SET customer_id = c.id, status = 'created'
                          FROM {C} AS c WHERE s.customer_id IS NULL AND s.error IS NULL
                            AND c.external_id = s.external_id""")
            left = self.rows(f"""
                SELECT s.line, EXISTS (SELECT 1 FROM {{C}} AS c
                                       WHERE c.external_id = s.external_id)
                FROM {{S}} AS s WHERE s.error IS NULL AND s.customer_id IS NULL
                  AND {PRIMARY}""")
            if not left:
                return
            if any(created_elsewhere for _, created_elsewhere in left):
                raise CreatedMeanwhile()
            self._redraw_codes([line for line, _ in left])
        raise RuntimeError("New customers could not be given unique referral codes.")

    def _redraw_codes(self, lines: list[int]) -> None:
        """A drawn referral code collided with a stored one (rare: 50 random bits)."""
        with connection.cursor() as cursor:
            cursor.executemany(f"UPDATE {S} SET new_code = %s WHERE line = %s",
                               list(zip(referral_codes(len(lines)), lines, strict=True)))

    def _write_topics(self) -> None:
        changed = f"s.topics IS NOT NULL AND s.status IN ('created', 'updated') AND {PRIMARY}"
        self.sql(f"""
            DELETE FROM {{O}} WHERE customer_id IN (
                SELECT s.customer_id FROM {{S}} AS s WHERE {changed})
            AND NOT EXISTS (
                SELECT 1 FROM {{S}} AS s, {self.elements('s.topics')}, {{T}} AS t
                WHERE s.customer_id = {{O}}.customer_id AND {changed}
                  AND t.key = j.value AND t.id = {{O}}.topic_id)""")
        self.sql(f"""
            INSERT INTO {{O}} (customer_id, topic_id, created_at)
            SELECT s.customer_id, t.id, %s FROM {{S}} AS s, {self.elements('s.topics')},
                {{T}} AS t
            WHERE {changed} AND t.key = j.value
            ON CONFLICT DO NOTHING""", [self.now])

    def _write_referrals(self) -> list[tuple[int, int, str]]:
        """Link new referees to their referrer (the first referrer stays) and record a
        REFERRAL_SIGNUP_EVENT on the referrer, once per referee (its client event id)."""
        changed = f"s.referred_by_code IS NOT NULL AND s.status IN ('created', 'updated') " \
                  f"AND {PRIMARY}"
        self.sql(f"""
            UPDATE {{C}} AS c SET referred_by_id = r.id
            FROM {{S}} AS s JOIN {{C}} AS r ON r.referral_code = s.referred_by_code
            WHERE c.id = s.customer_id AND {changed} AND c.referred_by_id IS NULL
              AND r.id <> c.id""")
        properties = ("jsonb_build_object('referred_customer', s.external_id)" if self.pg
                      else "json_object('referred_customer', s.external_id)")
        return self.rows(f"""
            INSERT INTO {{E}} (customer_id, name, properties, occurred_at, received_at,
                client_event_id)
            SELECT r.id, %s, {properties}, %s, %s,
                SUBSTR('referral:' || s.external_id, 1, 100)
            FROM {{S}} AS s JOIN {{C}} AS c ON c.id = s.customer_id
            JOIN {{C}} AS r ON r.id = c.referred_by_id AND r.referral_code = s.referred_by_code
            WHERE {changed}
            ON CONFLICT DO NOTHING
            RETURNING id, customer_id, name""", [REFERRAL_SIGNUP_EVENT, self.now, self.now])
