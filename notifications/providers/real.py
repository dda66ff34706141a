"""The production backend: each batch goes to FCM, APNs or Web Push by its kind, with the
credentials PUSH_APPS holds for its application id."""

import threading
from collections.abc import Iterator

from django.conf import settings

from .base import ProviderConfigError, PushBackend, PushMessage, PushResult
from .common import check_batch


def _provider_classes() -> dict:
    # Imported on first use: a process that only sends Web Push never loads firebase-admin.
    from .apns import ApnsProvider
    from .fcm import FcmProvider
    from .webpush import WebPushProvider

    return {"fcm": FcmProvider, "apns": ApnsProvider, "webpush": WebPushProvider}


class ProviderBackend(PushBackend):
    def __init__(self):
        self._providers: dict[tuple[str, str], object] = {}  # clients live as long as the backend
        self._lock = threading.Lock()

    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        kind, application_id = check_batch(messages)
        return self._provider(kind, application_id).send_batch(messages)

    def send_stream(self, messages: list[PushMessage]) -> Iterator[list[PushResult]]:
        kind, application_id = check_batch(messages)
        yield from self._provider(kind, application_id).send_stream(messages)

    def _provider(self, kind: str, application_id: str):
        with self._lock:
            if (kind, application_id) not in self._providers:
                classes = _provider_classes()
                if kind not in classes:
                    raise ProviderConfigError(f"Unknown push kind {kind!r}.")
                config = settings.PUSH_APPS.get(kind, {}).get(application_id)
                if not config:
                    raise ProviderConfigError(
                        f"PUSH_APPS has no {kind} configuration for application id "
                        f"{application_id!r}."
                    )
                self._providers[kind, application_id] = classes[kind](application_id, config)
            return self._providers[kind, application_id]
