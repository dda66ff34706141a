"""Segment rules (JSON) compiled into one ORM filter over customers.

A rule is an object with exactly one key naming its type. Groups ``{"all": [...]}``,
``{"any": [...]}`` and ``{"not": {...}}`` nest; ``{"all": []}`` matches everyone. Leaf types
live in a registry (``register_rule``) so that upper apps add their own (notifications adds
"device") without audiences importing them. The marketer's reference with examples is in the
README ("Segments").

Compiling never evaluates customers in Python: it builds one ``Q`` of lookups and EXISTS
subqueries. Every leaf is two-valued (never SQL NULL), so ``not`` means exactly "does not
match", with no NULL trap. Compilation validates as it goes and reports every mistake by its
path, e.g. ``all[2].event.min_count: must be a positive integer``.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from audiences.models import BUCKET_COUNT, Event, Segment, SegmentMember, Stage, Topic, TopicOptOut
from audiences.segment_sql import ExistsAmong, JSONKeyTest
from journeyhub.json_rules import json_problem

GROUPS = ("all", "any", "not")
MAX_DEPTH = 12  # deeper nesting is a mistake, and each level is another SQL sub-expression
MAX_LEAVES = 200  # leaf rules per compile, referenced segments included: bounds the SQL size
MAX_DAYS = 36_500  # a century; larger windows overflow datetime arithmetic
MAX_ERRORS = 20  # reported at once; the rest follow once these are fixed
MAX_SEGMENT_ID = 2**63 - 1  # a larger id cannot be a primary key (and would overflow SQL)
RULES_REQUIRED = 'Write the rules; {"all": []} matches everyone.'
JSON_KEY = re.compile(r'[^"\\\x00-\x1f]+')  # SQLite JSON paths cannot escape these

RuleCompiler = Callable[[Any, "RuleContext"], Q]
_RULES: dict[str, RuleCompiler] = {}


def register_rule(name: str) -> Callable[[RuleCompiler], RuleCompiler]:
    """Register ``func(spec, ctx) -> Q`` as the compiler of rule type ``name``.

    ``spec`` is the raw JSON under the rule's key; the function validates it with the ``ctx``
    helpers (which raise with the rule's path) and returns a two-valued Q over Customer."""
    def decorator(func: RuleCompiler) -> RuleCompiler:
        if name in GROUPS or _RULES.get(name, func) is not func:
            raise ImproperlyConfigured(f"Segment rule type {name!r} is already taken.")
        _RULES[name] = func
        return func
    return decorator


def known_rule_types() -> list[str]:
    return [*GROUPS, *sorted(_RULES)]


class RuleError(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path or 'rules'}: {message}")


@dataclass
class _Findings:
    """Shared by all contexts of one compilation."""

    errors: list[RuleError] = field(default_factory=list)
    leaves: int = 0
    topics: dict[str, str] = field(default_factory=dict)  # topic key -> path of first use


@dataclass(frozen=True)
class RuleContext:
    """Where the compiler is in the rules (for error paths), plus the helpers rule compilers
    use to read their spec. Every helper raises RuleError naming the offending key."""

    now: datetime
    path: str = ""
    depth: int = 0
    segment_chain: tuple[int, ...] = ()
    findings: _Findings = field(default_factory=_Findings)

    def at(self, part: str | int) -> "RuleContext":
        if isinstance(part, int):
            return replace(self, path=f"{self.path}[{part}]")
        return replace(self, path=f"{self.path}.{part}" if self.path else part)

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        raise RuleError(self.at(key).path if key else self.path, message)

    def fields(self, spec: Any, *, required=(), optional=()) -> dict:
        """Check that spec is an object with all ``required`` keys and no others."""
        allowed = [*required, *optional]
        if not isinstance(spec, dict):
            self.fail(f"must be an object with keys: {', '.join(allowed)}")
        unknown = [key for key in spec if key not in allowed]
        if unknown:
            self.fail(f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
        missing = [key for key in required if key not in spec]
        if missing:
            self.fail(f"missing key {missing[0]!r}")
        return spec

    def one_of(self, spec: dict, keys: tuple[str, ...]) -> str:
        given = [key for key in keys if key in spec]
        if len(given) != 1:
            self.fail(f"give exactly one of: {', '.join(keys)}")
        return given[0]

    def integer(self, spec: dict, key: str, *, low: int = 1, high: int | None = None,
                default: int | None = None) -> int | None:
        if key not in spec:
            return default
        value = spec[key]
        fits = isinstance(value, int) and not isinstance(value, bool) and value >= low
        if not fits or (high is not None and value > high):
            wanted = "a positive integer" if low == 1 else f"an integer from {low}"
            self.fail(f"must be {wanted}" + (f" up to {high}" if high else ""), key)
        return value

    def text(self, spec: dict, key: str, *, max_length: int = 255) -> str:
        value = spec.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            self.fail(f"must be a non-empty string of at most {max_length} characters", key)
        return value

    def json_key(self, key: Any, where: str | None = None) -> str:
        """A top-level key of a JSON column (attributes or event properties)."""
        if not isinstance(key, str) or not key or len(key) > 100 or not JSON_KEY.fullmatch(key):
            self.fail("must be a key name of 1 to 100 characters, without quotes or "
                      "backslashes", where)
        return key

    def boolean(self, spec: dict, key: str, *, default: bool) -> bool:
        value = spec.get(key, default)
        if not isinstance(value, bool):
            self.fail("must be true or false", key)
        return value

    def choice(self, spec: dict, key: str, choices) -> str:
        value = spec.get(key)
        if value not in choices:
            self.fail(f"{value!r} is not one of: {', '.join(choices)}", key)
        return value

    def scalar(self, value: Any, key: str | None = None) -> str | int | float | bool:
        finite = not isinstance(value, float) or math.isfinite(value)  # NaN is not JSON
        if not isinstance(value, str | int | float) or not finite:
            self.fail("must be a string, a number or true/false", key)
        return value

    def compile(self, rule: Any) -> Q:
        """Compile a nested rule at this path: the entry point for group-like rule types."""
        if self.depth > MAX_DEPTH:
            self.fail(f"rules nest deeper than {MAX_DEPTH} levels")
        if not isinstance(rule, dict) or len(rule) != 1:
            self.fail('a rule is an object with exactly one key naming its type, '
                      'e.g. {"stage": {"in": ["engagement"]}}')
        ((kind, spec),) = rule.items()
        if kind in GROUPS:
            return _compile_group(kind, spec, replace(self.at(kind), depth=self.depth + 1))
        compiler = _RULES.get(kind)
        if compiler is None:
            self.fail(f"unknown rule type {kind!r} (known: {', '.join(known_rule_types())})")
        self.findings.leaves += 1
        if self.findings.leaves > MAX_LEAVES:
            self.fail(f"more than {MAX_LEAVES} rules in one segment")
        return compiler(spec, self.at(kind))

    def compile_collecting(self, rule: Any) -> Q:
        """Compile, but record an error and carry on, so one save reports every mistake."""
        try:
            return self.compile(rule)
        except RuleError as error:
            self.findings.errors.append(error)
            return MATCH_ALL


MATCH_ALL = Q(pk__isnull=False)  # not Q(): ~Q() is also "everyone", ~MATCH_ALL is no one


def _compile_group(kind: str, spec: Any, ctx: RuleContext) -> Q:
    if kind == "not":
        return ~ctx.compile_collecting(spec)
    if not isinstance(spec, list):
        ctx.fail("must be a list of rules")
    if not spec:
        if kind == "any":
            ctx.fail("must list at least one rule")
        return MATCH_ALL
    parts = [ctx.at(index).compile_collecting(child) for index, child in enumerate(spec)]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if kind == "all" else combined | part
    return combined


def _compile(rules: Any, *, segment_id: int | None, now: datetime | None) -> tuple[Q, _Findings]:
    # Values the database cannot take (NUL, lone surrogates, 1e999) would fail the query itself.
    if problem := json_problem(rules):
        where, reason = problem
        raise ValidationError([f"{'rules' if where == 'value' else where}: {reason}"])
    ctx = RuleContext(
        now=now or timezone.now(), segment_chain=(segment_id,) if segment_id else (),
    )
    q = ctx.compile_collecting(rules)
    if ctx.findings.errors:
        raise ValidationError([str(error) for error in ctx.findings.errors[:MAX_ERRORS]])
    return q, ctx.findings


def compile_rules(rules: Any, *, segment_id: int | None = None,
                  now: datetime | None = None) -> Q:
    """The Q over Customer for ``rules``; raises ValidationError if they are invalid.

    ``segment_id`` is the segment whose rules these are, so that a reference back to it is
    refused as a cycle. Reads one row per referenced segment; nothing else touches the DB."""
    return _compile(rules, segment_id=segment_id, now=now)[0]


def validate_rules(rules: Any, *, segment_id: int | None = None) -> None:
    """Raise ValidationError naming every mistake by its path, including unknown topics.

    (A compiled consent rule on a topic deleted later matches no one rather than everyone.)"""
    _, findings = _compile(rules, segment_id=segment_id, now=None)
    known = set(Topic.objects.filter(key__in=findings.topics).values_list("key", flat=True))
    unknown = [(path, key) for key, path in findings.topics.items() if key not in known]
    if unknown:
        raise ValidationError([f"{path}: unknown topic {key!r}" for path, key in unknown])


# --- Built-in rule types ----------------------------------------------------------------------

ATTRIBUTE_OPS = ("eq", "ne", "lt", "gt", "lte", "gte", "contains", "exists", "not_exists")


@register_rule("attribute")
def _attribute_rule(spec: Any, ctx: RuleContext) -> Q:
    ctx.fields(spec, required=("key", "op"), optional=("value",))
    key, op = ctx.json_key(spec.get("key"), "key"), ctx.choice(spec, "op", ATTRIBUTE_OPS)
    if op in ("exists", "not_exists"):
        if "value" in spec:
            ctx.fail(f"takes no value with op {op!r}", "value")
        has_key = Q(JSONKeyTest("attributes", key, "has"))
        return has_key if op == "exists" else ~has_key
    if "value" not in spec:
        ctx.fail(f"missing key 'value' (op {op!r} compares with it)")
    value = ctx.scalar(spec["value"], "value")
    if op == "contains":
        return _json_contains("attributes", key, value)
    if op in ("lt", "gt", "lte", "gte") and isinstance(value, bool):
        ctx.fail(f"op {op!r} compares numbers or strings, not true/false", "value")
    if op == "ne":
        return ~Q(JSONKeyTest("attributes", key, "eq", value))
    return Q(JSONKeyTest("attributes", key, op, value))


def _json_contains(column: str, key: str, value) -> Q:
    in_list = Q(JSONKeyTest(column, key, "list_has", value))
    if isinstance(value, str):
        return Q(JSONKeyTest(column, key, "text_has", value)) | in_list
    return in_list


@register_rule("stage")
def _stage_rule(spec: Any, ctx: RuleContext) -> Q:
    ctx.fields(spec, required=("in",))
    stages = spec["in"]
    if not isinstance(stages, list) or not stages:
        ctx.fail(f"must be a non-empty list of stages out of: {', '.join(Stage.values)}", "in")
    for index, stage in enumerate(stages):
        if stage not in Stage.values:
            ctx.at("in").at(index).fail(
                f"unknown stage {stage!r} (known: {', '.join(Stage.values)})"
            )
    return Q(stage__in=stages)


@register_rule("event")
def _event_rule(spec: Any, ctx: RuleContext) -> Q:
    """Performed ``name`` at least ``min_count`` times (in the last ``within_days``, where the
    properties equal ``where``); ``performed: false`` negates. EXISTS, over GROUP BY ... HAVING
    for counts above one, so the test is a plain yes/no even under NOT."""
    ctx.fields(spec, required=("name",),
               optional=("min_count", "within_days", "where", "performed"))
    events = Event.objects.filter(name=ctx.text(spec, "name"))
    within_days = ctx.integer(spec, "within_days", high=MAX_DAYS)
    if within_days is not None:
        events = events.filter(occurred_at__gte=ctx.now - timedelta(days=within_days))
    if "where" in spec:
        events = events.filter(_event_where(spec["where"], ctx.at("where")))
    min_count = ctx.integer(spec, "min_count", default=1)
    if min_count > 1:
        counts = events.values("customer_id").annotate(times=Count("pk"))
        performed = Q(ExistsAmong(counts.filter(times__gte=min_count), "customer_id"))
    else:
        performed = Q(Exists(events.filter(customer=OuterRef("pk"))))
    return performed if ctx.boolean(spec, "performed", default=True) else ~performed


def _event_where(where: Any, ctx: RuleContext) -> Q:
    if not isinstance(where, dict) or not where:
        ctx.fail('must be an object of property values, e.g. {"category": "food"}')
    q = Q()
    for key, value in where.items():
        ctx.json_key(key)
        ctx.scalar(value, key)
        q &= Q(JSONKeyTest("properties", key, "eq", value))
    return q


@register_rule("last_seen")
def _last_seen_rule(spec: Any, ctx: RuleContext) -> Q:
    ctx.fields(spec, optional=("within_days", "more_than_days_ago", "never"))
    key = ctx.one_of(spec, ("within_days", "more_than_days_ago", "never"))
    if key == "never":
        return Q(last_seen_at__isnull=ctx.boolean(spec, "never", default=True))
    cutoff = ctx.now - timedelta(days=ctx.integer(spec, key, high=MAX_DAYS))
    if key == "within_days":
        return Q(last_seen_at__gte=cutoff)
    return Q(last_seen_at__lt=cutoff)


@register_rule("consent")
def _consent_rule(spec: Any, ctx: RuleContext) -> Q:
    """May we push to them: not globally opted out, and (for a topic) no opt-out of it."""
    ctx.fields(spec, optional=("topic", "push"))
    if ctx.one_of(spec, ("topic", "push")) == "push":
        return Q(push_opt_out=not ctx.boolean(spec, "push", default=True))
    topic = ctx.text(spec, "topic", max_length=50)
    ctx.findings.topics.setdefault(topic, ctx.at("topic").path)
    opted_out = TopicOptOut.objects.filter(customer=OuterRef("pk"), topic__key=topic)
    # Unknown topic: no one (validate_rules refuses it on save; this covers a later delete).
    topic_exists = Exists(Topic.objects.filter(key=topic))
    return Q(push_opt_out=False) & Q(topic_exists) & ~Q(Exists(opted_out))


@register_rule("bucket")
def _bucket_rule(spec: Any, ctx: RuleContext) -> Q:
    ctx.fields(spec, optional=("min", "max"))
    if not spec:
        ctx.fail("give min, max or both (0 to 9999, inclusive)")
    low = ctx.integer(spec, "min", low=0, high=BUCKET_COUNT - 1, default=0)
    high = ctx.integer(spec, "max", low=0, high=BUCKET_COUNT - 1, default=BUCKET_COUNT - 1)
    if low > high:
        ctx.fail(f"min ({low}) is above max ({high})")
    return Q(bucket__gte=low, bucket__lte=high)


PROFILE_FIELDS = ("locale", "time_zone", "email", "first_name", "last_name", "external_id")
PROFILE_OPS = ("eq", "ne", "contains", "exists")


@register_rule("profile")
def _profile_rule(spec: Any, ctx: RuleContext) -> Q:
    ctx.fields(spec, required=("field", "op"), optional=("value",))
    name, op = ctx.choice(spec, "field", PROFILE_FIELDS), ctx.choice(spec, "op", PROFILE_OPS)
    if op == "exists":
        if "value" in spec:
            ctx.fail("takes no value with op 'exists'", "value")
        return ~Q(**{name: ""})  # profile columns are NOT NULL; unknown is the empty string
    value = ctx.text(spec, "value")
    if op == "contains":
        return Q(**{f"{name}__icontains": value})
    # Addresses are case-insensitive in practice: Ana@Example.com is ana@example.com.
    equal = Q(email__iexact=value) if name == "email" else Q(**{name: value})
    return equal if op == "eq" else ~equal


@register_rule("segment")
def _segment_rule(spec: Any, ctx: RuleContext) -> Q:
    """Membership of another segment, named by key ("lisbon-foodies") or id (12): a static
    one's members, or a dynamic one's rules inlined (so the whole audience stays one query).
    A key keeps rules portable between installations; an id survives a change of key."""
    segment = _referenced_segment(spec, ctx)
    if segment.pk in ctx.segment_chain:
        cycle = " → ".join(str(pk) for pk in (*ctx.segment_chain, segment.pk))
        ctx.fail(f"segment {segment.pk} refers back to itself (cycle: {cycle})")
    if segment.kind == Segment.Kind.STATIC:
        members = SegmentMember.objects.filter(segment_id=segment.pk, customer=OuterRef("pk"))
        return Q(Exists(members))
    nested = replace(ctx, path=f"{ctx.path}({spec})", depth=ctx.depth + 1,
                     segment_chain=(*ctx.segment_chain, segment.pk))
    return nested.compile(segment.rules)


def _referenced_segment(spec: Any, ctx: RuleContext) -> Segment:
    segments = Segment.objects.only("pk", "kind", "rules")
    if isinstance(spec, str) and spec:
        segment = segments.filter(key=spec).first()
        if segment is None:
            ctx.fail(f"no segment with key {spec!r}")
        return segment
    if not isinstance(spec, int) or isinstance(spec, bool) or spec < 1:
        ctx.fail("must be a segment key or id (a positive integer)")
    segment = segments.filter(pk=spec).first() if spec <= MAX_SEGMENT_ID else None
    if segment is None:
        ctx.fail(f"no segment with id {spec}")
    return segment


def segment_references(rules: Any) -> set[str | int]:
    """The keys and ids of the segments these rules refer to (any depth, unvalidated)."""
    found: set[str | int] = set()
    pending = [rules]
    while pending:  # iterative: rules are bounded, but a walk should not recurse on input
        rule = pending.pop()
        if isinstance(rule, list):
            pending.extend(rule)
        elif isinstance(rule, dict):
            for kind, spec in rule.items():
                if kind == "segment" and isinstance(spec, str | int) \
                        and not isinstance(spec, bool):
                    found.add(spec)
                elif kind in GROUPS:
                    pending.append(spec)
    return found
