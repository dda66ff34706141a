"""The report's view of what kind of push a campaign sent: messages by kind (alert, silent),
and opens by action button. Read from the delivery log over the campaign's life (its sends are
tagged ``campaign:<id>/...``), with the indexes on sends' source and deliveries' opened_at."""

from dataclasses import dataclass

from django.db.models import Count

from notifications.models import Delivery, Send


@dataclass(frozen=True)
class PushKinds:
    sent_by_kind: dict[str, int]  # "alert" / "silent" -> messages sent
    opened_by_kind: dict[str, int]
    opens_by_action: dict[str, int]  # action id -> opens by that button


def campaign_push_kinds(*, campaign) -> PushKinds:
    sends = Send.objects.filter(source__startswith=f"campaign:{campaign.pk}/").values("pk")
    rows = Delivery.objects.filter(send__in=sends, status=Delivery.Status.SENT)
    sent, opened = {}, {}
    for row in (rows.values("send__template__kind").annotate(n=Count("id"), o=Count("opened_at"))
                .order_by()):
        sent[row["send__template__kind"]] = row["n"]
        opened[row["send__template__kind"]] = row["o"]
    actions = (Delivery.objects.filter(send__in=sends, opened_at__isnull=False)
               .exclude(opened_action="").values("opened_action").annotate(n=Count("id"))
               .order_by("-n", "opened_action"))
    return PushKinds(sent, opened, {row["opened_action"]: row["n"] for row in actions})
