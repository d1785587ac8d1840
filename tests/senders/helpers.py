"""Builders shared by the sender tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from streamproc.senders.pending import Pending
from streamproc.wire.deliveries import Delivery
from streamproc.wire.outcomes import Message

_ids = itertools.count(1)


def message(**overrides: Any) -> Message:
    n = next(_ids)
    fields: dict[str, Any] = {
        "at": datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        "incident_id": f"inc-{n}",
        "instance": 1,
        "plan": "db-critical",
        "application": "grafana",
        "step": 1,
        "notification": 0,
        "repeat": 0,
        "role": "user",
        "target": "alice",
        "user": "alice",
        "priority": "high",
        "mode": "sms",
        "destination": "+15550000001",
        "subject": "",
        "body": f"page {n}",
        "render_error": False,
        "message_id": f"m-{n}",
    }
    fields.update(overrides)
    return Message(**fields)


def pending(msg: Message | None = None, partition: int = 0, offset: int | None = None, **kw: Any) -> Pending:
    msg = msg or message(**kw)
    return Pending(message=msg, partition=partition, offset=next(_ids) if offset is None else offset)


class ListSink:
    """Keeps what the pipeline writes, in order."""

    def __init__(self) -> None:
        self.records: list[Delivery] = []
        self.requeued: list[Message] = []
        self.done_offsets: list[tuple[int, int]] = []

    async def record(self, delivery: Delivery, item: Pending) -> None:
        self.records.append(delivery)

    async def requeue(self, msg: Message, item: Pending) -> None:
        self.requeued.append(msg)

    def done(self, item: Pending) -> None:
        self.done_offsets.append((item.partition, item.offset))

    def status(self, message_id: str) -> list[str]:
        return [r.status for r in self.records if r.message_id == message_id]
