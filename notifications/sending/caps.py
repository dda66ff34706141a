"""Frequency caps: the most non-transactional pushes a customer gets within a window.

The global cap (DeliverySettings) and the extra ones (FrequencyCap: per consent topic, per
kind of campaign) are checked twice. At fan-out, customers already at a cap are skipped at once.
When a chunk is about to go, the check runs again for its customers, counting what other sends
have sent or are sending to them right now; the customers' rows are locked (in id order) for
that check and the marking of the chunk as 'sending', so two workers sending two sends to the
same customer take turns, and the second sees the first's message. A push is one send: a
customer's several devices reached by one send count once."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet

from audiences.models import Customer
from notifications.models import Delivery, DeliverySettings, FrequencyCap, Send
from notifications.sending.batches import Claim, fenced

ADHOC = "adhoc"  # FrequencyCap.campaign_kind of the sends no campaign made


@dataclass(frozen=True)
class Cap:
    limit: int
    window: timedelta
    counts: Q  # which deliveries count against it


def send_caps(send: Send) -> list[Cap]:
    """The caps a send's messages must respect: none for a transactional send."""
    if send.cap_exempt:
        return []
    controls = DeliverySettings.load()
    caps = []
    if controls.frequency_cap:
        caps.append(Cap(controls.frequency_cap,
                        timedelta(hours=controls.frequency_window_hours), Q()))
    scope = Q(campaign_kind=send.campaign_kind or ADHOC)
    if send.template.topic_id:
        scope |= Q(topic_id=send.template.topic_id)
    for extra in FrequencyCap.objects.filter(scope).order_by("pk"):
        if extra.topic_id:
            counts = Q(send__template__topic_id=extra.topic_id)
        else:
            counts = Q(send__campaign_kind="" if extra.campaign_kind == ADHOC
                       else extra.campaign_kind)
        caps.append(Cap(extra.cap, timedelta(hours=extra.window_hours), counts))
    return caps


def _over_cap(cap: Cap, now: datetime, *, in_flight: bool = False,
              customers: list[int] | None = None, other_than: int | None = None) -> QuerySet:
    """Customer ids who reached the cap. ``in_flight`` counts messages being sent as well."""
    counted = Q(status=Delivery.Status.SENT, sent_at__gte=now - cap.window)
    if in_flight:
        counted |= Q(status=Delivery.Status.SENDING)
    deliveries = Delivery.objects.filter(counted, cap.counts, send__cap_exempt=False)
    if customers is not None:
        deliveries = deliveries.filter(customer_id__in=customers)
    if other_than is not None:
        deliveries = deliveries.exclude(send_id=other_than)
    return (
        deliveries.values("customer_id").annotate(pushes=Count("send_id", distinct=True))
        .filter(pushes__gte=cap.limit).values("customer_id")
    )


def capped_customers(send: Send, now: datetime) -> Q | None:
    """At fan-out: a filter over customers matching those already at one of the send's caps,
    or None when no cap applies."""
    caps = send_caps(send)
    if not caps:
        return None
    capped = Q(pk__in=_over_cap(caps[0], now))
    for cap in caps[1:]:
        capped |= Q(pk__in=_over_cap(cap, now))
    return capped


def chunk_claim_under_caps(claim: Claim, send: Send, customer_of: dict[int, int],
                           now: datetime) -> set[int]:
    """Mark a chunk's deliveries (id -> customer id) 'sending', except those whose customer
    reached a cap meanwhile: those are skipped ``frequency_capped``. Returns the skipped ids."""
    caps = send_caps(send)
    with fenced(claim):
        capped: set[int] = set()
        if caps:
            customers = sorted(set(customer_of.values()))
            # Taken in id order, so two workers locking overlapping chunks cannot deadlock.
            list(Customer.objects.select_for_update().filter(pk__in=customers).order_by("pk")
                 .values_list("pk", flat=True))
            over: set[int] = set()
            for cap in caps:
                over.update(_over_cap(cap, now, in_flight=True, customers=customers,
                                      other_than=send.pk).values_list("customer_id", flat=True))
            capped = {pk for pk, customer_id in customer_of.items() if customer_id in over}
            Delivery.objects.filter(pk__in=capped).update(
                status=Delivery.Status.SKIPPED, reason=Delivery.Reason.FREQUENCY_CAPPED,
                error="the customer reached a frequency cap before this message went out")
        Delivery.objects.filter(pk__in=[pk for pk in customer_of if pk not in capped]).update(
            status=Delivery.Status.SENDING)
    return capped
