"""The senders' reader of claims: follows `streamproc.outcomes` and feeds its claim/resolve
audit records to `Claims`, on the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from pydantic import ValidationError

from streamproc.kafka.follow import TopicFollower
from streamproc.senders.claims import Claims
from streamproc.wire.outcomes import AUDIT_KINDS, Audit


class AuditFollower(TopicFollower):
    """A `TopicFollower` of the outcomes topic from `window` seconds ago (no group, nothing
    committed: every worker reads it all). `caught_up` is set once it has read what the topic
    held when it started."""

    name = "sender-outcomes"

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        claims: Claims,
        loop: asyncio.AbstractEventLoop,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(bootstrap, (topic,), clock)
        self._claims = claims
        self._loop = loop
        self._window = window

    def start_ms(self) -> int:
        return int((self._clock() - self._window) * 1000)

    def apply_message(
        self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None = None
    ) -> None:
        try:
            data = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("kind") not in AUDIT_KINDS:
            return  # other outcomes (undeliverable, dropped, exhausted) share the topic
        try:
            audit = Audit.model_validate(data)
        except ValidationError:
            return
        self._loop.call_soon_threadsafe(self._claims.apply, audit)


__all__ = ["AuditFollower"]
