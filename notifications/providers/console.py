"""Development backend: print each notification instead of sending it."""

import sys

from .base import Outcome, PushBackend, PushMessage, PushResult
from .common import check_batch

TOKEN_SHOWN_CHARS = 16  # enough to tell devices apart without filling the terminal


class ConsoleBackend(PushBackend):
    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        check_batch(messages)
        for message in messages:
            token = message.token[:TOKEN_SHOWN_CHARS]
            token += "…" if message.token[TOKEN_SHOWN_CHARS:] else ""
            print(f"[push {message.kind}/{message.application_id}] delivery "
                  f"{message.delivery_id} -> {token}: {message.title!r} {message.body!r}",
                  file=sys.stdout, flush=True)
        return [PushResult(m.delivery_id, Outcome.SENT,
                           provider_message_id=f"console-{m.delivery_id}") for m in messages]
