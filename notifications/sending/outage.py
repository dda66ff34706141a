"""A provider that is down for everyone: the whole provider backs off, not each message.

When a chunk comes back (almost) all temporary errors (FCM 503 or 429, APNs 5xx, timeouts), the
provider itself is unavailable. One ProviderOutage row per kind and application id says until
when; every batch for that provider checks it before each chunk and waits instead of sending,
and the messages of the failed chunk go back to the queue without spending an attempt. The wait
doubles with each failed try (honouring Retry-After), capped by a setting, and the row goes as
soon as a chunk is accepted again."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import ProviderOutage

OUTAGE_SHARE = 0.8  # temporary errors in a chunk from which the provider counts as down


def is_outage(temporary: int, total: int) -> bool:
    return total > 0 and temporary >= OUTAGE_SHARE * total


def outage_retry_at(kind: str, application_id: str) -> datetime | None:
    """When the provider may be tried again (in the past once its wait is over), or None when
    it is not known to be down."""
    return (ProviderOutage.objects.filter(kind=kind, application_id=application_id)
            .values_list("retry_at", flat=True).first())


def outage_record(*, kind: str, application_id: str, retry_after: float | None,
                  error: str) -> datetime:
    """Note a failed try of the provider; returns when to try it next."""
    for _ in range(2):  # two first failures at once: one insert wins, the other updates
        try:
            with transaction.atomic():
                return _outage_extend(kind, application_id, retry_after, error[:500])
        except IntegrityError:
            continue
    with transaction.atomic():
        return _outage_extend(kind, application_id, retry_after, error[:500])


def _outage_extend(kind: str, application_id: str, retry_after: float | None,
                   error: str) -> datetime:
    now = timezone.now()
    outage = (ProviderOutage.objects.select_for_update()
              .filter(kind=kind, application_id=application_id).first())
    if outage is not None and outage.retry_at > now:
        return outage.retry_at  # another chunk of the same try failed too: one try, one wait
    failures = outage.failures + 1 if outage else 1
    base = settings.DELIVERY_OUTAGE_BACKOFF_SECONDS
    wait = min(max(retry_after or 0, base * 2 ** (failures - 1)),
               settings.DELIVERY_OUTAGE_BACKOFF_MAX_SECONDS)
    retry_at = now + timedelta(seconds=wait)
    if outage is None:
        ProviderOutage.objects.create(kind=kind, application_id=application_id,
                                      retry_at=retry_at, error=error, started_at=now)
    else:
        ProviderOutage.objects.filter(pk=outage.pk).update(failures=failures, error=error,
                                                           retry_at=retry_at)
    return retry_at


def outage_clear(*, kind: str, application_id: str) -> None:
    ProviderOutage.objects.filter(kind=kind, application_id=application_id).delete()
