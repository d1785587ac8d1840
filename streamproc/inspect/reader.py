"""Reading topics for `streamproc inspect`: assigned partitions, never a consumer group.

The consumer is given partitions with `assign()` (no subscribe, so it never joins a group) and
never commits; confluent-kafka insists on a `group.id` setting, so it gets a throwaway one that no
broker ever hears of. Each partition is read from its start (or the first offset at or after
`since`) to its end as it was when reading began. A progress bar goes to stderr when it is a
terminal.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from streamproc.kafka.clients import consumer_config


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)


class TopicReader:
    def __init__(self, bootstrap: str, progress: bool = True, stall_timeout: float = 30.0) -> None:
        self.consumer = Consumer(
            consumer_config(
                bootstrap,
                f"streamproc-inspect-{uuid.uuid4().hex[:8]}",
                **{"enable.auto.offset.store": False, "enable.partition.eof": True, "fetch.wait.max.ms": 50},
            )
        )
        self.progress = progress
        self.stall_timeout = stall_timeout
        self._metadata: dict[str, int] | None = None

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def partition_counts(self) -> dict[str, int]:
        """Partitions of every topic on the cluster (read once)."""
        if self._metadata is None:
            topics = self.consumer.list_topics(timeout=10).topics
            self._metadata = {name: len(t.partitions) for name, t in topics.items() if t.error is None}
        return self._metadata

    def read(
        self,
        spans: Iterable[tuple[str, int]],
        keep: Callable[[Record], bool],
        since_ms: int | None = None,
        label: str = "reading",
    ) -> list[Record]:
        """Records of the given (topic, partition)s for which `keep` is true."""
        spans = sorted(set(spans))
        if not spans:
            return []
        if since_ms is not None:
            found = self.consumer.offsets_for_times([TopicPartition(t, p, since_ms) for t, p in spans], timeout=10)
            starts = {(tp.topic, tp.partition): tp.offset for tp in found}
        else:
            starts = {}
        ends: dict[tuple[str, int], int] = {}
        begin: dict[tuple[str, int], int] = {}
        for topic, partition in spans:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            start = starts.get((topic, partition), low)
            if start < 0:  # nothing at or after `since`
                continue
            start = max(start, low)
            if high > start:
                begin[(topic, partition)] = start
                ends[(topic, partition)] = high
        total = sum(ends[s] - begin[s] for s in ends)
        kept: list[Record] = []
        if not ends:
            return kept
        self.consumer.assign([TopicPartition(t, p, begin[(t, p)]) for t, p in ends])
        with _progress(self.progress, label, total) as advance:
            last_progress = time.monotonic()
            while ends:
                batch = self.consumer.consume(500, 0.5)
                if not batch:
                    if time.monotonic() - last_progress > self.stall_timeout:
                        raise TimeoutError(f"no records from {sorted(ends)} for {self.stall_timeout:g} s")
                    continue
                last_progress = time.monotonic()
                read = 0
                for msg in batch:
                    span = (str(msg.topic()), int(msg.partition() or 0))
                    error = msg.error()
                    if error is not None:
                        if error.code() != KafkaError._PARTITION_EOF:
                            raise RuntimeError(f"reading {span[0]}[{span[1]}]: {error}")
                        ends.pop(span, None)  # the end (gaps: compaction, transaction markers)
                        continue
                    offset = int(msg.offset() or 0)
                    end = ends.get(span)
                    if end is None or offset >= end:
                        continue
                    read += 1
                    _kind, stamp = msg.timestamp()
                    raw = msg.headers() or []
                    pairs = list(raw.items()) if isinstance(raw, dict) else raw
                    headers = {
                        name: value if isinstance(value, bytes) else str(value or "").encode() for name, value in pairs
                    }
                    record = Record(
                        span[0], span[1], offset, stamp if stamp > 0 else None, msg.key(), msg.value() or b"", headers
                    )
                    if keep(record):
                        kept.append(record)
                    if offset + 1 >= end:
                        del ends[span]
                advance(read)
        self.consumer.unassign()
        return kept


class _progress:
    """A rich progress bar on stderr (only when stderr is a terminal and `enabled`)."""

    def __init__(self, enabled: bool, label: str, total: int) -> None:
        self._bar: Any = None
        if enabled and total > 0:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            if console.is_terminal:
                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                )
                self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> Callable[[int], None]:
        if self._bar is None:
            return lambda n: None
        self._bar.start()
        return lambda n: self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
