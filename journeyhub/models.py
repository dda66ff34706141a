import hashlib
import secrets

from django.db import models
from django.utils import timezone

API_KEY_PREFIX_LENGTH = 8  # shown in the admin and used to find the row without the secret


class ApiKey(models.Model):
    """A brand backend's key. Only a SHA-256 of the secret is stored: the key is high-entropy,
    so a fast hash is safe, and lookups stay one indexed query per request."""

    class Scope(models.TextChoices):
        CUSTOMERS_READ = "customers:read", "Read customers"
        CUSTOMERS_WRITE = "customers:write", "Upsert customers"
        EVENTS_WRITE = "events:write", "Track events"
        TOKENS_WRITE = "tokens:write", "Mint customer tokens"
        SEGMENTS_READ = "segments:read", "Read segments, their counts and members"
        SEGMENTS_WRITE = "segments:write", "Manage segments and static members"
        CAMPAIGNS = "campaigns", "Manage campaigns and templates (and read segments)"
        ANALYTICS_READ = "analytics:read", "Read analytics reports"
        SENDS = "sends", "Send messages and follow their sends"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=API_KEY_PREFIX_LENGTH, unique=True, editable=False)
    hashed_secret = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash_secret(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        """A new (prefix, full key). The full key is shown once and never stored."""
        prefix = secrets.token_hex(API_KEY_PREFIX_LENGTH // 2)
        return prefix, f"jh_{prefix}_{secrets.token_urlsafe(32)}"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
