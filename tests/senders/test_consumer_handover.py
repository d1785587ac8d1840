"""The consumer thread's hand-over to the loop: one call per batch, and never a wait for a
full batch (`consume(n, timeout)` blocks for the whole timeout when fewer than n are there)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from streamproc.config.senders import SendersSettings
from streamproc.kafka.topics import Topics
from streamproc.senders.offsets import OffsetTracker
from streamproc.senders.pending import Pending
from streamproc.senders.ratelimit import RateLimits
from streamproc.senders.worker import ModeConsumer
from streamproc.wire.outcomes import outcome_dict
from tests.senders.helpers import message


class FakeRecord:
    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000

    def headers(self) -> None:
        return None


class FakeConsumer:
    """Three records fetched; `poll` gives the first, `consume` the rest."""

    def __init__(self, owner: ModeConsumer, records: list[FakeRecord]) -> None:
        self.owner, self.records = owner, records
        self.consume_calls: list[tuple[int, float]] = []

    def subscribe(self, *args: Any, **kw: Any) -> None: ...

    def assignment(self) -> list[Any]:
        return []

    def poll(self, timeout: float) -> FakeRecord | None:
        if not self.records:
            self.owner.stopping.set()
            return None
        return self.records.pop(0)

    def consume(self, n: int, timeout: float) -> list[FakeRecord]:
        self.consume_calls.append((n, timeout))
        if not self.records:
            self.owner.stopping.set()
        taken, self.records = self.records[:n], self.records[n:]
        return taken

    def commit(self, *args: Any, **kw: Any) -> None: ...

    def close(self) -> None: ...


class FakePipeline:
    def __init__(self) -> None:
        self.lanes: list[Pending] = []
        self.handovers: list[list[str]] = []

    def enqueue_all(self, items: list[Pending]) -> None:
        self.handovers.append([i.message.message_id for i in items])


async def test_records_already_fetched_go_over_together_without_waiting() -> None:
    loop = asyncio.get_running_loop()
    pipeline = FakePipeline()
    msgs = [message() for _ in range(3)]
    consumer = ModeConsumer(
        "sms",
        "127.0.0.1:9",
        Topics("t"),
        pipeline,
        OffsetTracker(),  # type: ignore[arg-type]
        RateLimits(),
        SendersSettings(),
        True,
        loop,
    )
    fake = FakeConsumer(consumer, [FakeRecord(n, json.dumps(outcome_dict(m)).encode()) for n, m in enumerate(msgs)])
    consumer._consumer = fake  # type: ignore[assignment]
    await asyncio.to_thread(consumer.run)
    await asyncio.sleep(0)
    assert consumer.error is None
    assert pipeline.handovers == [[m.message_id for m in msgs]]
    assert fake.consume_calls and all(timeout == 0 for _n, timeout in fake.consume_calls)
