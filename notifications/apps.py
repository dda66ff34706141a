from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        # audiences cannot import us: we teach its segment compiler the "device" rule, follow
        # its merges and erasures, and add our rows to its customers' data exports.
        from audiences.signals import customer_erasing, customer_merging
        from notifications import receivers, segment_rules  # noqa: F401
        from notifications.api import access

        customer_merging.connect(receivers.on_customer_merging,
                                 dispatch_uid="notifications.customer_merging")
        customer_erasing.connect(receivers.on_customer_erasing,
                                 dispatch_uid="notifications.customer_erasing")
        access.register_sections()
