from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    """Bringing a brand's customers, devices and history in: the batch API, file imports and
    the admin's import jobs. Sits above audiences and notifications, beside campaigns."""

    name = "onboarding"

    def ready(self) -> None:
        # audiences cannot import us: its Customers import hands us the files too big to
        # preview, which we import as jobs.
        from audiences.admin.import_handoff import register_import_handoff
        from onboarding.admin import customers_import_handoff

        register_import_handoff("audiences.customer", customers_import_handoff)
