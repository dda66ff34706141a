from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        # audiences cannot import us; it announces events and stage changes by signal.
        from audiences.signals import event_tracked, stage_changed
        from campaigns import receivers

        event_tracked.connect(receivers.on_event_tracked, dispatch_uid="campaigns.event")
        stage_changed.connect(receivers.on_stage_changed, dispatch_uid="campaigns.stage")
