from django.apps import AppConfig


class OnboardingConfig(AppConfig):
    """Bringing a brand's customers, devices and history in: the batch API, file imports and
    the admin's import jobs. Sits above audiences and notifications, beside campaigns."""

    name = "onboarding"
