"""Throttles: at most N messages a minute for one stream of sends.

A stream is a campaign (all the sends its steps make, one per tick batch and variant) or one
ad-hoc send. Fan-out already spreads a send's batches a minute apart; this holds the rate across
the stream's sends as well. Before a batch goes out it reserves its messages' share of the
minute on the stream's row (locked, so workers take turns): if the stream is busy until later,
the batch goes back to the queue until then."""

from datetime import datetime, timedelta

from django.db import transaction

from notifications.models import Send, Throttle

THROTTLE_FORGET_AFTER = timedelta(days=1)  # streams idle this long lose their row (the sweep)


def throttle_reserve(send: Send, messages: int, now: datetime) -> datetime | None:
    """Reserve ``messages`` of the send's stream's rate. Returns None when they may go now,
    else the moment the stream is free (nothing is reserved then)."""
    if not send.throttle_per_minute or not messages:
        return None
    with transaction.atomic():
        Throttle.objects.get_or_create(key=send.throttle_stream(),
                                       defaults={"next_free_at": now})
        stream = Throttle.objects.select_for_update().get(key=send.throttle_stream())
        start = max(stream.next_free_at, now)
        if start > now:
            return start
        stream.next_free_at = start + timedelta(minutes=messages / send.throttle_per_minute)
        stream.save(update_fields=["next_free_at"])
    return None


def throttles_forget_idle(now: datetime) -> int:
    return Throttle.objects.filter(next_free_at__lt=now - THROTTLE_FORGET_AFTER).delete()[0]
