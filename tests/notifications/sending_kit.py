"""What sending tests share: the workers' part of a send run in the test, the delivery controls
that would make a test depend on the hour, and the admin's template form."""

from datetime import time

from notifications.models import DeliveryBatch, DeliverySettings
from notifications.sending.batch_send import batch_send
from notifications.services import send_fan_out


def run(send):
    """What the workers do: fan out, then every batch task."""
    send_fan_out(send_id=send.pk)
    for batch_id in DeliveryBatch.objects.filter(send=send).values_list("pk", flat=True):
        batch_send(batch_id=batch_id)
    send.refresh_from_db()
    return send


def quiet_hours_off() -> None:
    """No quiet hours: a test may run at any hour of the day."""
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.save()


def template_form(**overrides):
    data = {
        "name": "Offer", "kind": "alert", "priority": "normal", "title": "Hi", "body": "20% off",
        "image_url": "", "url": "", "data": "{}", "ttl_seconds": "3600", "collapse_key": "",
        "topic": "", "badge_mode": "", "badge": "", "sound": "", "thread_id": "",
        "android_channel_id": "", "interruption_level": "", "relevance_score": "",
        "actions": "[]", "apns_category": "",
        "translations-TOTAL_FORMS": "0", "translations-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}
