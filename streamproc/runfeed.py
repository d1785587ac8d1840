"""What `streamproc run` shows on its terminal: one line per thing a person is waiting for.

- `Feed` follows the stack's topics from the moment `streamproc run` started (assigned
  partitions, never a consumer group, never a commit) and turns records into lines: a page
  delivered (a `sent` delivery record, with its message's subject), a page that failed or fell
  back, and the audits of triggers, claims, unclaims, resolves and absorbed triggers, plus the
  undeliverable and exhausted outcomes.
- `LogWatch` reads the JSON log files of the worker, the sender and the API as they grow and
  yields each distinct warning or error once (repeats are counted, not shown).

Everything else (every process's full log, librdkafka's own lines, vendor output) stays in the
log files; librdkafka's logs of the feed's own consumer go to a Python logger.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from streamproc.kafka.topics import Topics
from streamproc.wire.common import CONTACT_MODES

log = logging.getLogger(__name__)
kafka_log = logging.getLogger("streamproc.run.kafka")

PAGE_MODES = CONTACT_MODES
SUBJECTS_KEPT = 10_000
SUBJECT_WAIT = 2.0
"""Seconds a delivery record waits for its message's record (other topic) before it is shown without a subject."""
WARN_LEVELS = frozenset({"warning", "error", "critical"})


def clock(at: str | None) -> str:
    """HH:MM:SS in local time of an RFC 3339 time (now when missing or unreadable)."""
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone()
        except ValueError:
            when = None
    return (when or datetime.now().astimezone()).strftime("%H:%M:%S")


def _instance(data: dict[str, Any]) -> str:
    return f"{data.get('incident_id')}#{data.get('instance')}"


def one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def delivery_line(data: dict[str, Any], subject: str | None) -> str | None:
    """A delivery record as a terminal line; None for statuses nobody waits for (drops, duplicates)."""
    status = data.get("status")
    what = {"sent": "page", "failed": "page FAILED", "fallback": "fallback"}.get(str(status))
    if what is None:
        return None
    line = f"{clock(data.get('at'))}  {what:<11} {data.get('mode')!s:<7} {data.get('user')!s:<8} {_instance(data)}"
    if subject:
        line += f"  {one_line(subject)}"
    if status != "sent" and data.get("detail"):
        line += f"  ({one_line(str(data['detail']), 120)})"
    return line


def outcome_line(data: dict[str, Any]) -> str | None:
    """An audit or outcome record of the outcomes topic as a terminal line (None: not shown)."""
    kind = data.get("kind")
    head = f"{clock(data.get('at'))}  {kind!s:<11} {_instance(data)}"
    if kind in ("triggered", "resolved"):
        return head
    if kind in ("claimed", "unclaimed"):
        return head + (f"  by {data['owner']}" if data.get("owner") else "")
    if kind == "absorbed":
        return head + "  (a trigger for an open incident)"
    if kind == "undeliverable":
        return head + f"  step {data.get('step')}: {data.get('user') or 'nobody'}: {data.get('reason')}"
    if kind == "exhausted":
        return head + "  (the plan ran out of steps)"
    return None


class Feed(threading.Thread):
    """Follows the outcomes, deliveries and messages topics from `since` (epoch seconds) and
    calls `emit(line)` for each line to show. Topics that do not exist yet are picked up when
    they appear (a fresh broker: the worker creates them)."""

    def __init__(self, config: dict[str, Any], topics: Topics, since: float, emit: Callable[[str], None]) -> None:
        super().__init__(name="run-feed", daemon=True)
        self._config = config
        self._topics = topics
        self._since_ms = int(since * 1000)
        self._emit = emit
        self.stopping = threading.Event()
        self._subjects: OrderedDict[str, str] = OrderedDict()
        self._waiting: list[tuple[float, dict[str, Any]]] = []

    def run(self) -> None:
        from confluent_kafka import Consumer

        consumer = None
        try:
            consumer = Consumer(
                {
                    **self._config,
                    "group.id": f"streamproc-run-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "logger": kafka_log,
                    "fetch.wait.max.ms": 100,
                }
            )
            self._follow(consumer)
        except Exception:
            log.exception("run feed failed; pages are still delivered, see the sender's log")
        finally:
            if consumer is not None:
                consumer.close()  # no group, nothing to commit: quick even with the broker gone

    def _follow(self, consumer: Any) -> None:
        from confluent_kafka import TopicPartition

        wanted = [self._topics.outcomes, self._topics.deliveries, *(self._topics.messages(m) for m in PAGE_MODES)]
        assigned: set[str] = set()
        next_look = 0.0
        while not self.stopping.is_set():
            if len(assigned) < len(wanted) and time.monotonic() >= next_look:
                next_look = time.monotonic() + 1.0
                try:
                    metadata = consumer.list_topics(timeout=2).topics
                except Exception:  # the broker is not there (yet, or any more)
                    metadata = {}
                fresh = [
                    t
                    for t in wanted
                    if t not in assigned and t in metadata and metadata[t].error is None and metadata[t].partitions
                ]
                for topic in fresh:
                    spans = [TopicPartition(topic, p) for p in sorted(metadata[topic].partitions)]
                    try:
                        # The end first, then the first record at or after `since`: nothing falls between.
                        highs = [consumer.get_watermark_offsets(tp, timeout=2)[1] for tp in spans]
                        found = consumer.offsets_for_times(
                            [TopicPartition(topic, tp.partition, self._since_ms) for tp in spans], timeout=2
                        )
                    except Exception:
                        continue
                    starts = [
                        TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else high)
                        for tp, high in zip(found, highs, strict=True)
                    ]
                    consumer.incremental_assign(starts)
                    assigned.add(topic)
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                self._take(str(msg.topic()), msg.value())
            self._flush_waiting(time.monotonic())

    def _take(self, topic: str, value: bytes | None) -> None:
        try:
            data = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        if topic == self._topics.deliveries:
            message_id = str(data.get("message_id"))
            if data.get("status") in ("sent", "failed", "fallback") and message_id not in self._subjects:
                self._waiting.append((time.monotonic() + SUBJECT_WAIT, data))
                return
            self._show(delivery_line(data, self._subjects.get(message_id)))
        elif topic == self._topics.outcomes:
            self._show(outcome_line(data))
        elif data.get("kind") == "message":
            message_id = str(data.get("message_id"))
            self._subjects[message_id] = str(data.get("subject") or data.get("body") or "")
            while len(self._subjects) > SUBJECTS_KEPT:
                self._subjects.popitem(last=False)
            self._flush_waiting(time.monotonic())

    def _flush_waiting(self, now: float) -> None:
        if not self._waiting:
            return
        still = []
        for deadline, data in self._waiting:
            subject = self._subjects.get(str(data.get("message_id")))
            if subject is not None or now >= deadline:
                self._show(delivery_line(data, subject))
            else:
                still.append((deadline, data))
        self._waiting = still

    def _show(self, line: str | None) -> None:
        if line is not None:
            self._emit(line)


class LogWatch:
    """Warnings and errors of JSON log files as they grow, each distinct one once."""

    def __init__(self, files: dict[str, Path]) -> None:
        self._files = files
        self._offsets = dict.fromkeys(files, 0)
        self._partial = dict.fromkeys(files, b"")
        self.repeats: dict[tuple[str, str, str], int] = {}

    def lines(self) -> Iterator[str]:
        for name, path in self._files.items():
            try:
                with path.open("rb") as f:
                    f.seek(self._offsets[name])
                    chunk = f.read(1 << 20)
            except OSError:
                continue
            self._offsets[name] += len(chunk)
            *complete, rest = (self._partial[name] + chunk).split(b"\n")
            self._partial[name] = rest
            for raw in complete:
                line = self.line_of(name, raw)
                if line is not None:
                    yield line

    def line_of(self, name: str, raw: bytes) -> str | None:
        if not raw.startswith(b"{"):
            return None  # not ours (librdkafka, a vendor's stdout): it stays in the file
        try:
            record = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(record, dict) or str(record.get("level")) not in WARN_LEVELS:
            return None
        message = one_line(str(record.get("message", "")), 300)
        key = (name, str(record.get("logger")), message)
        if key in self.repeats:
            self.repeats[key] += 1
            return None
        self.repeats[key] = 0
        return f"{clock(record.get('time'))}  {record.get('level')!s:<11} {name}: {message}"

    def repeated(self) -> list[str]:
        return [
            f"{name}: {message!r} {count} more time{'s' if count > 1 else ''}"
            for (name, _logger, message), count in self.repeats.items()
            if count
        ]


__all__ = ["Feed", "LogWatch", "clock", "delivery_line", "outcome_line"]
