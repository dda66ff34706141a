from django.db import models
from django.db.models import Q
from django.utils import timezone

from audiences.models import Customer, validate_time_zone


class Device(models.Model):
    """What we know of a push endpoint beyond django-push-notifications' row: its owner (exactly
    one customer), where it runs and whether it may be notified. Exactly one of ``apns``, ``fcm``
    and ``webpush`` is set."""

    class Kind(models.TextChoices):
        APNS = "apns", "APNs"
        FCM = "fcm", "FCM"
        WEBPUSH = "webpush", "Web Push"

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", "Web"

    class Environment(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"
        PRODUCTION = "production", "Production"

    class Permission(models.TextChoices):
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"
        PROVISIONAL = "provisional", "Provisional"
        NOT_DETERMINED = "not_determined", "Not determined"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    apns = models.OneToOneField(
        "push_notifications.APNSDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    fcm = models.OneToOneField(
        "push_notifications.GCMDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    webpush = models.OneToOneField(
        "push_notifications.WebPushDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    app_version = models.CharField(max_length=50, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.PRODUCTION
    )
    permission = models.CharField(
        max_length=15, choices=Permission.choices, default=Permission.GRANTED
    )
    is_active = models.BooleanField(default=True)
    deactivated_reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["customer", "kind", "is_active"])]
        constraints = [
            models.CheckConstraint(
                name="device_exactly_one_provider_row",
                condition=(
                    Q(kind="apns", apns__isnull=False, fcm__isnull=True, webpush__isnull=True)
                    | Q(kind="fcm", apns__isnull=True, fcm__isnull=False, webpush__isnull=True)
                    | Q(kind="webpush", apns__isnull=True, fcm__isnull=True, webpush__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_platform_display()} #{self.pk}"

    @property
    def provider_device(self):
        return getattr(self, self.kind)

    @property
    def token(self) -> str:
        return self.provider_device.registration_id

    @property
    def can_receive(self) -> bool:
        return self.is_active and self.permission != self.Permission.DENIED
