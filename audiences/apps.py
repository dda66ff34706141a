from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "audiences"

    def ready(self) -> None:
        # audiences' own sections of a customer's data export; upper apps add theirs.
        from audiences.api.access import register_sections
        from audiences.receivers import referral_conversion
        from audiences.signals import stage_changed

        register_sections()
        stage_changed.connect(referral_conversion, dispatch_uid="audiences.referral_conversion")
