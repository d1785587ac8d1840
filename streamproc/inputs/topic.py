"""Read recorded events back from a Kafka topic, for `streamproc replay --from-topic` and `whatif`.

The reader never joins a consumer group: it assigns the topic's partitions itself, never commits,
and produces nothing, so the processors running on the same topic do not notice it.

The range is chosen per partition:
- `--since` / `--to` select records by their **record timestamp** (`since <= timestamp < to`): the
  first offset of each end is found with `offsets_for_times`, and records inside that offset range
  whose timestamp is still outside (producers may set any timestamp) are skipped;
- `--offsets P:FROM-TO` (repeatable; `TO` exclusive, either may be left out) gives offsets instead;
  partitions not named are read whole (within `--since`/`--to` when those are given).
The reader stops at each partition's end offset as it was when the read started.

Each record becomes an event as the processor sees it: an event without `at` takes its record
timestamp. Positions encode (partition, offset) so that events at the same instant replay in
partition, then offset order (one incident's events share a partition and keep their order).
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from streamproc.timeutil import from_us
from streamproc.wire.events import AnyEvent, error_text, parse_any_event

OFFSET_BITS = 40
_OFFSETS_RE = re.compile(r"^(\d+):(\d*)-(\d*)$")


def position(partition: int, offset: int) -> int:
    return (partition << OFFSET_BITS) | offset


def describe(topic: str, pos: int) -> str:
    """`topic[partition]@offset` of a position."""
    return f"{topic}[{pos >> OFFSET_BITS}]@{pos & ((1 << OFFSET_BITS) - 1)}"


def parse_offsets(specs: list[str]) -> dict[int, tuple[int | None, int | None]]:
    """`P:FROM-TO` (TO exclusive; FROM or TO may be empty) -> {partition: (from, to)}."""
    out: dict[int, tuple[int | None, int | None]] = {}
    for spec in specs:
        match = _OFFSETS_RE.match(spec.strip())
        if not match:
            raise ValueError(f"--offsets: expected PARTITION:FROM-TO (e.g. 0:100-200, 3:50-), got {spec!r}")
        start, end = match.group(2), match.group(3)
        out[int(match.group(1))] = (int(start) if start else None, int(end) if end else None)
    return out


@dataclass
class TopicRange:
    topic: str
    since_ms: int | None = None
    to_ms: int | None = None
    offsets: dict[int, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class ReadStats:
    records: int = 0
    skipped: int = 0
    """Records inside the offset range whose timestamp is outside since/to."""
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition -> (first offset, end offset) read."""


def _consumer(bootstrap: str) -> Any:
    from confluent_kafka import Consumer

    from streamproc.kafka.clients import consumer_config

    # assign() only: this group id (required by the client) is never joined and nothing is committed.
    return Consumer(
        consumer_config(
            bootstrap,
            f"streamproc-replay-{uuid.uuid4().hex[:12]}",
            **{
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            },
        )
    )


def plan_read(consumer: Any, rng: TopicRange, timeout: float = 15.0) -> dict[int, tuple[int, int]]:
    """partition -> (first offset, end offset, exclusive) for the range; empty ranges left out."""
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(rng.topic, timeout=timeout)
    meta = metadata.topics.get(rng.topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise LookupError(f"topic {rng.topic!r} not found")
    partitions = sorted(meta.partitions)
    unknown = set(rng.offsets) - set(partitions)
    if unknown:
        raise LookupError(f"--offsets: topic {rng.topic!r} has no partition {sorted(unknown)}")
    marks = {p: consumer.get_watermark_offsets(TopicPartition(rng.topic, p), timeout=timeout) for p in partitions}

    def lookup(ms: int | None) -> dict[int, int]:
        if ms is None:
            return {}
        found = consumer.offsets_for_times([TopicPartition(rng.topic, p, ms) for p in partitions], timeout=timeout)
        # -1: no record at or after that time -> the partition's end
        return {tp.partition: (tp.offset if tp.offset >= 0 else marks[tp.partition][1]) for tp in found}

    since, to = lookup(rng.since_ms), lookup(rng.to_ms)
    plan: dict[int, tuple[int, int]] = {}
    for p in partitions:
        low, high = marks[p]
        start, end = low, high
        if p in since:
            start = max(start, since[p])
        if p in to:
            end = min(end, to[p])
        given = rng.offsets.get(p)
        if given is not None:
            if given[0] is not None:
                start = max(start, given[0])
            if given[1] is not None:
                end = min(end, given[1])
        if end > start:
            plan[p] = (start, end)
    return plan


def read_topic(
    bootstrap: str, rng: TopicRange, stats: ReadStats | None = None, progress: bool = True, idle_timeout: float = 30.0
) -> Iterator[tuple[int, AnyEvent | str]]:
    """(position, event or the reason the record is invalid) for every record in the range."""
    from confluent_kafka import KafkaError, TopicPartition

    stats = stats if stats is not None else ReadStats()
    consumer = _consumer(bootstrap)
    try:
        plan = plan_read(consumer, rng)
        stats.partitions = dict(plan)
        if not plan:
            return
        consumer.assign([TopicPartition(rng.topic, p, start) for p, (start, _) in plan.items()])
        left = dict(plan)
        total = sum(end - start for start, end in plan.values())
        bar = _progress(total, rng.topic, progress)
        try:
            idle = 0.0
            while left:
                batch = consumer.consume(num_messages=5000, timeout=1.0)
                if not batch:
                    idle += 1.0
                    if idle >= idle_timeout:
                        raise TimeoutError(
                            f"{rng.topic}: no records for {idle_timeout:.0f}s, partitions "
                            f"{sorted(left)} not read to their end"
                        )
                    continue
                idle = 0.0
                done = 0
                for msg in batch:
                    p = msg.partition()
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            left.pop(p, None)
                            continue
                        raise RuntimeError(f"{rng.topic}[{p}]: {err}")
                    end = left.get(p, (0, 0))[1]
                    offset = msg.offset()
                    if p not in left or offset >= end:
                        left.pop(p, None)
                        continue
                    done += 1
                    if offset >= end - 1:
                        left.pop(p, None)
                    stats.records += 1
                    timestamp_ms = msg.timestamp()[1]
                    if (rng.since_ms is not None and timestamp_ms < rng.since_ms) or (
                        rng.to_ms is not None and timestamp_ms >= rng.to_ms
                    ):
                        stats.skipped += 1
                        continue
                    yield position(p, offset), _event(msg.value(), timestamp_ms)
                bar(done)
                # Partitions whose end is past their last record (transaction markers) end at EOF.
        finally:
            bar(None)
    finally:
        consumer.close()


def _event(value: bytes | None, timestamp_ms: int) -> AnyEvent | str:
    try:
        event = parse_any_event(value or b"")
    except ValidationError as exc:
        return error_text(exc)
    if event.at is None:
        event.at = from_us(timestamp_ms * 1000)
    return event


def _progress(total: int, topic: str, enabled: bool) -> Any:
    """A rich progress bar on stderr (only on a terminal); call with a count, then with None."""
    if not enabled or not sys.stderr.isatty():
        return lambda n: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(f"reading {topic}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("read", total=total)
    bar.start()

    def step(n: int | None) -> None:
        if n is None:
            bar.stop()
        else:
            bar.advance(task, n)

    return step
