"""Push providers. The delivery pipeline sends through ``get_backend().send_batch(messages)``;
settings.PUSH_BACKEND chooses the backend (real providers, console or locmem)."""

import os
import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from .base import (
    MAX_BATCH_SIZE,
    Outcome,
    ProviderAuthError,
    ProviderConfigError,
    PushBackend,
    PushMessage,
    PushResult,
)

__all__ = [
    "MAX_BATCH_SIZE", "Outcome", "ProviderAuthError", "ProviderConfigError", "PushBackend",
    "PushMessage", "PushResult", "get_backend",
]

_lock = threading.Lock()
_backend: PushBackend | None = None


def get_backend() -> PushBackend:
    """The process-wide backend: it holds provider clients and their connections, so it is
    built once and rebuilt only when PUSH_BACKEND or PUSH_APPS change (tests) or after a fork."""
    global _backend
    with _lock:
        if _backend is None:
            _backend = import_string(settings.PUSH_BACKEND)()
        return _backend


def reset_backend() -> None:
    global _backend
    _backend = None


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("PUSH_BACKEND", "PUSH_APPS"):
        reset_backend()


def _after_fork_in_child() -> None:
    # Connections opened by the parent belong to its event loop and sockets: start afresh.
    global _lock
    _lock = threading.Lock()
    reset_backend()


setting_changed.connect(_on_setting_changed, dispatch_uid="notifications.providers.reset")
os.register_at_fork(after_in_child=_after_fork_in_child)
