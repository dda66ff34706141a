"""Reads about sends shared by the admin, the API and the send command."""

from dataclasses import dataclass

from django.db.models import Count

from notifications.models import Delivery, Send


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
