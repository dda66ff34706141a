from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JourneyhubConfig(AppConfig):
    name = "journeyhub"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Imported here: apps.py loads before the models that schedules writes.
        from journeyhub.schedules import schedules_sync

        post_migrate.connect(schedules_sync, sender=self, dispatch_uid="journeyhub.schedules")
