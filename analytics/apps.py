from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        # Imported here: apps.py loads before the models that roles reads.
        from analytics.roles import roles_sync

        # After auth created this app's permissions (its handler was connected first).
        post_migrate.connect(roles_sync, sender=self, dispatch_uid="analytics.roles_sync")
