"""Small rules every backend shares: the batch contract and reading Retry-After."""

import base64
import email.utils
import hashlib
import re
import time
from collections.abc import Sequence

from .base import MAX_BATCH_SIZE, PushMessage

TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # RFC 8030: at most 32 URL-safe base64 characters


def check_batch(messages: Sequence[PushMessage]) -> tuple[str, str]:
    """Return the batch's (kind, application_id); refuse what breaks the backend contract.

    A bad batch is a bug in the caller, so it fails before anything is sent."""
    if not messages:
        raise ValueError("A push batch needs at least one message.")
    if len(messages) > MAX_BATCH_SIZE:
        raise ValueError(f"A push batch holds at most {MAX_BATCH_SIZE} messages, "
                         f"got {len(messages)}.")
    kinds = {(message.kind, message.application_id) for message in messages}
    if len(kinds) > 1:
        raise ValueError(f"A push batch must share one kind and application id, got {kinds}.")
    return kinds.pop()


def retry_after_seconds(header: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not header or not header.strip():
        return default
    value = header.strip()
    if value.isdigit():
        return float(value)
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return default
    return max(0.0, email.utils.mktime_tz(parsed) - time.time())


def web_push_topic(collapse_key: str) -> str:
    """A Web Push Topic header for a collapse key. A key outside the Topic alphabet is hashed:
    the same key still replaces its predecessor."""
    if TOPIC.match(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]
