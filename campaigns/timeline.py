"""The customer timeline's campaign items (audiences.timeline): each enrollment, and every
message the customer was sent or not sent (skipped with its reason), received and opened, each
linked to its campaign."""

from django.urls import reverse
from django.utils import timezone

from audiences.timeline import Cursor, TimelineItem, before, timeline_source_add
from campaigns.models import Enrollment
from notifications.models import Delivery


def _campaign_url(campaign_id: int | None) -> str:
    return reverse("admin:campaigns_campaign_change", args=[campaign_id]) if campaign_id else ""


def enrollments(customer_id: int, cursor: Cursor | None, limit: int) -> list[TimelineItem]:
    rows = (Enrollment.objects.filter(before(cursor, "enrollment", "entered_at"),
                                      customer_id=customer_id)
            .select_related("campaign", "step").order_by("-entered_at", "-pk")[:limit])
    return [TimelineItem(
        e.entered_at, "enrollment", e.pk, f"Entered “{e.campaign.name}”",
        detail=_enrollment_detail(e), status="goal" if e.exit_reason == "goal" else "enrollment",
        url=reverse("admin:campaigns_enrollment_change", args=[e.pk]),
        campaign=e.campaign.name, campaign_url=_campaign_url(e.campaign_id),
    ) for e in rows]


def _enrollment_detail(enrollment: Enrollment) -> str:
    group = "" if enrollment.group == Enrollment.Group.TREATMENT \
        else f"{enrollment.get_group_display()}; "
    if enrollment.state == Enrollment.State.ACTIVE:
        where = f"now at {enrollment.step}" if enrollment.step_id else "active"
        return f"{group}{where}"
    when = f"{timezone.localtime(enrollment.exited_at):%Y-%m-%d %H:%M}" \
        if enrollment.exited_at else ""
    return f"{group}left {when}: {enrollment.get_exit_reason_display()}"


def messages(customer_id: int, cursor: Cursor | None, limit: int) -> list[TimelineItem]:
    rows = (Delivery.objects.filter(before(cursor, "message", "created_at"),
                                    customer_id=customer_id)
            .select_related("send__template", "send__step_send__campaign")
            .order_by("-created_at", "-pk")[:limit])
    return [_message(d) for d in rows]


def _message(delivery: Delivery) -> TimelineItem:
    send = delivery.send
    step_send = getattr(send, "step_send", None)
    campaign = step_send.campaign if step_send is not None else None
    test = " (test)" if send.source == "test" else ""
    return TimelineItem(
        delivery.created_at, "message", delivery.pk,
        f"Message “{send.template}”{test}: {_status(delivery)}",
        detail=_delivery_detail(delivery), status=_css(delivery),
        url=reverse("admin:notifications_send_change", args=[send.pk]),
        campaign=campaign.name if campaign else "",
        campaign_url=_campaign_url(campaign.pk if campaign else None),
    )


def _status(delivery: Delivery) -> str:
    if delivery.opened_at:
        return "opened"
    if delivery.received_at:
        return "received"
    if delivery.status in (Delivery.Status.SKIPPED, Delivery.Status.FAILED):
        return f"{delivery.get_status_display().lower()}: {delivery.get_reason_display()}"
    return delivery.get_status_display().lower()


def _css(delivery: Delivery) -> str:
    return "opened" if delivery.opened_at else delivery.status


def _delivery_detail(delivery: Delivery) -> str:
    moments = [(label, getattr(delivery, field)) for label, field in (
        ("sent", "sent_at"), ("received", "received_at"), ("opened", "opened_at"))]
    shown = [f"{label} {timezone.localtime(at):%Y-%m-%d %H:%M}" for label, at in moments if at]
    device = f"{delivery.get_kind_display()} device" if delivery.kind else "no device"
    return " · ".join([device, *shown])


def timeline_sources_add() -> None:
    timeline_source_add(enrollments)
    timeline_source_add(messages)
