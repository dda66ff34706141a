from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "audiences"

    def ready(self) -> None:
        # audiences' own sections of a customer's data export; upper apps add theirs.
        from audiences.api.access import register_sections

        register_sections()
