from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        # Teach the segment compiler the "device" rule; audiences cannot import us.
        from notifications import segment_rules  # noqa: F401
