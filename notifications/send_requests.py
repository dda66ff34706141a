"""Sends a brand's backend asks for through the API: a template named or a message posted
inline, an audience of external ids or a segment, template data read as ``{{ data.* }}``, and
an Idempotency-Key that makes a retried request answer the send the first one made.

Keyword-only arguments, one transaction; nothing is written when the request is refused."""

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from audiences.models import Customer, Segment
from journeyhub.models import ApiKey
from notifications.models import LocalTimePassed, Send, Template
from notifications.rendering import SAMPLE_CUSTOMER, RenderError, message_context, render
from notifications.services import send_create, template_save

MAX_EXTERNAL_IDS = 10_000  # one request's audience by id; a larger one is a segment
INLINE_FIELDS = ("kind", "title", "body", "image_url", "url", "data", "priority", "collapse_key",
                 "badge_mode", "badge", "sound", "thread_id", "android_channel_id",
                 "interruption_level", "relevance_score", "actions", "apns_category")


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before, by this API key, with another request body."""

    def __init__(self, send: Send):
        super().__init__(f"This Idempotency-Key was used for send #{send.pk} with another "
                         "request body. Use a new key for a new send.")
        self.send = send


def request_digest(body: dict) -> str:
    """The digest the same body always has, whatever the order of its keys."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def api_send_create(*, api_key: ApiKey, idempotency_key: str = "", digest: str = "",
                    template: str | None = None, message: dict | None = None,
                    external_ids: Sequence[str] | None = None, segment: str | None = None,
                    data: dict | None = None, kinds: list[str] | None = None,
                    transactional: bool = False, respect_quiet_hours: bool | None = None,
                    throttle_per_minute: int | None = None, expires_at: datetime | None = None,
                    ttl_seconds: int | None = None, quiet_hours_start: time | None = None,
                    quiet_hours_end: time | None = None, local_time: time | None = None,
                    local_time_passed: str = LocalTimePassed.NEXT_DAY) -> tuple[Send, bool]:
    """Create a send and queue its fan-out; returns (send, created). With an idempotency key
    already used by ``api_key``: the send it made and False, or IdempotencyConflict when the
    body's digest differs. Raises ValidationError (by field) for an unknown template or
    segment, or data that makes the message unsendable."""
    if idempotency_key and (earlier := _earlier_send(api_key, idempotency_key, digest)):
        return earlier, False
    if (template is None) == (message is None):
        raise ValidationError({"template": "Name a template or post a message, not both."})
    if (external_ids is None) == (segment is None):
        raise ValidationError({"segment": "Give external_ids or a segment, not both."})
    data = data or {}
    named = _template_named(template) if template is not None else None
    audience = ({"segment": _segment_keyed(segment)} if segment is not None
                else {"customer_ids": customer_ids_for(external_ids)})
    if named is not None:
        _check_data(named, data)
    try:
        with transaction.atomic():
            chosen = named or _inline_template(message, data)
            send = send_create(
                template=chosen, kinds=kinds, throttle_per_minute=throttle_per_minute,
                respect_quiet_hours=(not transactional if respect_quiet_hours is None
                                     else respect_quiet_hours),
                cap_exempt=transactional, expires_at=expires_at, source="api",
                quiet_hours=(quiet_hours_start, quiet_hours_end), local_time=local_time,
                local_time_passed=local_time_passed, **audience,
            )
            # Written in the same statement as the key: a concurrent retry waits on the unique
            # index here, then finds this send.
            Send.objects.filter(pk=send.pk).update(
                data=data, ttl_seconds=ttl_seconds, api_key=api_key,
                idempotency_key=idempotency_key, request_digest=digest,
            )
    except IntegrityError:
        if not idempotency_key or not (earlier := _earlier_send(api_key, idempotency_key,
                                                                 digest)):
            raise
        return earlier, False
    send.refresh_from_db()
    return send, True


def customer_ids_for(external_ids: Sequence[str]) -> list[int]:
    """The ids of the customers with these external ids (unknown ones are left out)."""
    return list(Customer.objects.filter(external_id__in=set(external_ids))
                .values_list("pk", flat=True))


def unknown_external_ids(external_ids: Sequence[str]) -> list[str]:
    known = set(Customer.objects.filter(external_id__in=set(external_ids))
                .values_list("external_id", flat=True))
    return sorted(set(external_ids) - known)


def _earlier_send(api_key: ApiKey, idempotency_key: str, digest: str) -> Send | None:
    earlier = Send.objects.filter(api_key=api_key, idempotency_key=idempotency_key).first()
    if earlier is not None and earlier.request_digest != digest:
        raise IdempotencyConflict(earlier)
    return earlier


def _template_named(name: str) -> Template:
    template = Template.objects.filter(name=name, inline=False).first()
    if template is None:
        raise ValidationError({"template": f"No template named {name!r}."})
    return template


def _segment_keyed(key: str) -> Segment:
    found = Segment.objects.filter(key=key).first()
    if found is None:
        raise ValidationError({"segment": f"No segment with key {key!r}."})
    return found


def _check_data(template: Template, data: dict) -> None:
    """The template must still render, within the payload limit, with this data (for a sample
    customer): a message that cannot go is refused now rather than skipped for everyone."""
    try:
        render(template, message_context(customer=SAMPLE_CUSTOMER, data=data))
    except RenderError as error:
        raise ValidationError(
            {"data": f"With this data the message cannot be sent: {error}"}) from error


def _inline_template(message: dict, data: dict) -> Template:
    """The posted message, saved as an inline template (checked as every template is)."""
    fields = {name: message[name] for name in INLINE_FIELDS if name in message}
    candidate = Template(**fields)
    if problems := candidate.kind_problems():
        raise ValidationError({f"message.{name}": problem for name, problem in problems.items()})
    try:
        render(candidate, message_context(customer=SAMPLE_CUSTOMER, data=data))
    except RenderError as error:
        raise ValidationError({"message": f"This message cannot be sent: {error}"}) from error
    fields["name"] = f"inline-{uuid.uuid4().hex}"
    try:
        template = template_save(fields=fields)
    except ValidationError as error:
        raise ValidationError({f"message.{name}" if name != "template" else "message": problems
                               for name, problems in error.message_dict.items()}) from error
    Template.objects.filter(pk=template.pk).update(inline=True)
    template.inline = True
    return template
