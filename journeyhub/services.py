"""Writes on platform-wide rows (API keys). Keyword-only arguments, one transaction each."""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from journeyhub.models import ApiKey

PREFIX_ATTEMPTS = 5  # prefixes are 32 random bits: a clash is rare, five in a row is a bug


@transaction.atomic
def api_key_create(*, name: str, scopes: Iterable[str],
                   expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key. Returns (row, full key); the full key exists only in this return value
    (the row keeps its SHA-256), so the caller must show it now or lose it."""
    scopes = sorted(set(scopes))
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scopes: {', '.join(unknown)}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    for _ in range(PREFIX_ATTEMPTS):
        prefix, full_key = ApiKey.generate()
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    else:
        raise RuntimeError("Could not find a free API key prefix.")
    api_key = ApiKey(
        name=name, prefix=prefix, hashed_secret=ApiKey.hash_secret(full_key), scopes=scopes,
        expires_at=expires_at,
    )
    api_key.full_clean()
    api_key.save()
    return api_key, full_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Stop accepting the key from now on. Revoking twice keeps the first revocation time."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key
