from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class JourneyhubConfig(AppConfig):
    name = "journeyhub"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Imported here: apps.py loads before the models that schedules writes.
        from journeyhub.schedules import schedules_sync

        post_migrate.connect(schedules_sync, sender=self, dispatch_uid="journeyhub.schedules")


class JourneyhubAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with our site: the home page and the menu grouped by task."""

    default = False  # named in INSTALLED_APPS; "journeyhub" itself stays JourneyhubConfig
    default_site = "journeyhub.admin_site.JourneyHubAdminSite"
