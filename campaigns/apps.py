from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # audiences cannot import us; it announces events, stage changes, merges and erasures
        # by signal, and gathers customers' data exports from the sections we register.
        from audiences.signals import (
            customer_erasing,
            customer_merging,
            event_tracked,
            stage_changed,
        )
        from campaigns import receivers, receivers_identity
        from campaigns.api import access

        event_tracked.connect(receivers.on_event_tracked, dispatch_uid="campaigns.event")
        stage_changed.connect(receivers.on_stage_changed, dispatch_uid="campaigns.stage")
        customer_merging.connect(receivers_identity.on_customer_merging,
                                 dispatch_uid="campaigns.customer_merging")
        customer_erasing.connect(receivers_identity.on_customer_erasing,
                                 dispatch_uid="campaigns.customer_erasing")
        access.register_sections()
