"""What a JSON value must be before it is stored, wherever it comes from (API, admin, imports).

PostgreSQL's jsonb refuses Infinity and NaN (Python's json reads ``1e999`` as infinity), SQLite's
JSON functions read integers beyond 64 bits as lossy floats, neither can store a NUL character or
a lone surrogate, and a deeply nested value exhausts the stack of whatever walks it recursively
later (serializers, admin widgets). One check, iterative so that no input can exhaust the stack,
names the path of the first problem."""

import math
import re

from django.core.exceptions import ValidationError

# Levels of objects and arrays inside one stored value (properties, attributes, template data):
# real data is a few levels deep; 32 leaves room and keeps every recursive reader far from
# Python's recursion limit.
JSON_MAX_DEPTH = 32
JSON_INT_MIN, JSON_INT_MAX = -(2**63), 2**63 - 1  # what a 64-bit integer column or SQLite holds
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def json_problem(
    value, *, path: str = "", max_depth: int = JSON_MAX_DEPTH
) -> tuple[str, str] | None:
    """``(path, reason)`` for the first part of ``value`` that cannot be stored, or None.

    Paths read like ``attributes.plan[2].price``; the value itself is ``path`` (or "value")."""
    stack = [(path, value, 0)]
    while stack:
        where, item, depth = stack.pop()
        reason = _scalar_problem(item)
        if reason:
            return where or "value", reason
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return where or "value", too_deep(max_depth)
            for key, child in _children(item):
                if isinstance(key, str) and UNSTORABLE_TEXT.search(key):
                    return where or "value", "A key holds a NUL character or a lone surrogate."
                step = f"{where}[{key}]" if isinstance(key, int) else (
                    f"{where}.{key}" if where else str(key))
                stack.append((step, child, depth + 1))
    return None


def too_deep(max_depth: int = JSON_MAX_DEPTH) -> str:
    return f"Nested more than {max_depth} levels deep."


def _children(item):
    return item.items() if isinstance(item, dict) else enumerate(item)


def _scalar_problem(item) -> str | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, float) and not math.isfinite(item):
        return "Numbers must be finite (no Infinity or NaN, nor one too large to hold)."
    if isinstance(item, float) and not JSON_INT_MIN <= item <= JSON_INT_MAX:
        # PostgreSQL writes 1e300 back as 301 digits, which reads as an integer too large.
        return "Numbers must lie between -2^63 and 2^63-1."
    if isinstance(item, int) and not JSON_INT_MIN <= item <= JSON_INT_MAX:
        return "Integers must fit in 64 bits (between -2^63 and 2^63-1)."
    if isinstance(item, str) and UNSTORABLE_TEXT.search(item):
        return "Must not contain NUL characters or lone surrogates."
    return None


def validate_storable_json(value) -> None:
    """Django validator (model fields, forms, DRF fields) for a JSON value to be stored."""
    problem = json_problem(value)
    if problem:
        where, reason = problem
        raise ValidationError(reason if where == "value" else f"{where}: {reason}",
                              code="unstorable_json")


def text_problem(value: str) -> str | None:
    """The reason a piece of text cannot be stored, or None."""
    if UNSTORABLE_TEXT.search(value):
        return "Must not contain NUL characters or lone surrogates."
    return None
