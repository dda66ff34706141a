"""Reads about sends shared by the admin, the API and the send command."""

from dataclasses import dataclass

from django.db.models import CharField, Count, Exists, F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    Device,
    ProviderOutage,
    Send,
)


def customer_time_zone(*, customer: str = "pk", customer_zone: str = "time_zone") -> Coalesce:
    """A customer's time zone for what happens per customer (a journey's wait until a local
    time), in SQL over rows naming the customer by ``customer`` and its zone by
    ``customer_zone``: the zone of the active device the customer used last, where the app
    reported one, else the customer's own, else the workspace default. The per-device rule of
    deliveries (sending.timing.delivery_zone) made per customer."""
    device_zone = (Device.objects.filter(customer=OuterRef(customer), is_active=True)
                   .exclude(time_zone="").order_by("-last_seen_at").values("time_zone")[:1])
    return Coalesce(Subquery(device_zone), NullIf(F(customer_zone), Value("")),
                    Value(DeliverySettings.load().default_time_zone), output_field=CharField())


@dataclass(frozen=True)
class SendProgress:
    total: int
    queued: int
    sending: int
    sent: int
    failed: int
    skipped: int
    reasons: dict[str, int]

    @property
    def finished(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


def send_progress(send: Send) -> SendProgress:
    """Counts by status, and skips and failures by reason: one GROUP BY over the send's rows."""
    counts = {status: 0 for status in Delivery.Status.values}
    reasons: dict[str, int] = {}
    grouped = (Delivery.objects.filter(send=send).values("status", "reason")
               .annotate(n=Count("id")).order_by())
    for row in grouped:
        counts[row["status"]] += row["n"]
        if row["reason"] and row["status"] in (Delivery.Status.SKIPPED, Delivery.Status.FAILED):
            reasons[row["reason"]] = reasons.get(row["reason"], 0) + row["n"]
    return SendProgress(total=sum(counts.values()), reasons=reasons, **counts)


def send_outage(send: Send) -> str:
    """"FCM provider unavailable, retrying at 14:05" while a provider outage holds up this
    send's unfinished batches (notifications.sending.outage), else ""."""
    if send.status != Send.Status.SENDING:
        return ""
    waiting = DeliveryBatch.objects.filter(
        send=send, kind=OuterRef("kind"), application_id=OuterRef("application_id"),
    ).exclude(status=DeliveryBatch.Status.DONE)
    outage = ProviderOutage.objects.filter(Exists(waiting)).order_by("-retry_at").first()
    if outage is None:
        return ""
    app = f" ({outage.application_id})" if outage.application_id not in ("", "default") else ""
    return (f"{outage.get_kind_display()}{app} provider unavailable, retrying at "
            f"{timezone.localtime(outage.retry_at):%H:%M}")


DELIVERY_PAGE_FIELDS = ("id", "customer__external_id", "device_id", "kind", "status", "reason",
                        "error", "not_before", "sent_at", "received_at", "opened_at")


def send_deliveries_page(send: Send, *, after: int = 0, limit: int,
                         status: str | None = None) -> list[dict]:
    """One page of a send's deliveries, by id after ``after`` (a keyset page: as fast on the
    millionth row as on the first), with the customer's external id (None once erased)."""
    rows = Delivery.objects.filter(send=send, pk__gt=after)
    if status:
        rows = rows.filter(status=status)
    return [dict(zip(DELIVERY_PAGE_FIELDS, row, strict=True))
            for row in rows.order_by("pk").values_list(*DELIVERY_PAGE_FIELDS)[:limit]]
