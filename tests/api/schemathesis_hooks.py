"""Schemathesis hooks for the CI run (tests/api/test_schema.py): drop the failures that
tests/api/schemathesis_known.json explains as false positives, and nothing else.

An entry names the operations it covers (a regular expression over "METHOD /path"), the
failure's class (RejectedPositiveData is ST202 "schema-valid request rejected";
AcceptedNegativeData is ST201 "schema-violating request accepted") and what the response must
show: for a refusal, the fields and messages of its 400 (regular expressions), every one of
which must be explained; otherwise a status and a regular expression over the body.

A refusal for a reason OpenAPI can state (a wrong type, a missing or unknown field, a length,
a range, a choice, a format) is never explained away, unless the entry says ``"shape": true``
and why the schema cannot say it."""

import json
import re
from functools import cache
from pathlib import Path

import schemathesis

KNOWN_FILE = Path(__file__).with_name("schemathesis_known.json")
SHAPE_MESSAGES = re.compile(
    r"Not a valid string|Must be (a|true)|A valid (integer|number)|Unknown field"
    r"|This field (is required|may not be (null|blank)|is read-only)|Expected a "
    r"|Ensure this (field|value)|is not a valid choice|has wrong format|Enter a valid"
)


@cache
def known() -> list[dict]:
    return json.loads(KNOWN_FILE.read_text())["false_positives"]


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep the failure unless the known list explains it."""
    operation = f"{case.method.upper()} {case.operation.path}"
    return not is_known(operation, type(failure).__name__, response.status_code,
                        response.content)


def is_known(operation: str, failure: str, status: int, content: bytes) -> bool:
    entries = [entry for entry in known()
               if re.fullmatch(entry["operation"], operation)
               and re.fullmatch(entry["failure"], failure)]
    errors = field_errors(content) if status == 400 else None
    if errors is not None:
        return all(any(_explains(entry, field, message) for entry in entries)
                   for field, messages in errors.items() for message in messages)
    text = content.decode(errors="replace")
    return any(entry.get("status") == status and re.search(entry.get("body", ""), text)
               for entry in entries if "errors" not in entry)


def _explains(entry: dict, field: str, message: str) -> bool:
    if SHAPE_MESSAGES.search(message) and not entry.get("shape"):
        return False
    return any(re.fullmatch(field_pattern, field, re.DOTALL) and re.search(message_pattern, message)
               for field_pattern, message_pattern in entry.get("errors", {}).items())


def field_errors(content: bytes) -> dict[str, list[str]] | None:
    """The ``errors`` map of the API's 400 body, or None."""
    try:
        errors = json.loads(content).get("errors")
    except (ValueError, AttributeError):
        return None
    return errors if isinstance(errors, dict) and errors else None
