"""Test backend: keep sent notifications in ``outbox`` (clear it between tests)."""

from .base import Outcome, PushBackend, PushMessage, PushResult
from .common import check_batch

outbox: list[PushMessage] = []


class LocmemBackend(PushBackend):
    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        check_batch(messages)
        outbox.extend(messages)
        return [PushResult(m.delivery_id, Outcome.SENT,
                           provider_message_id=f"locmem-{m.delivery_id}") for m in messages]
