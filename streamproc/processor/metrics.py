"""Prometheus metrics of `streamproc worker`, served at `/metrics` on the worker's web port.

One worker per process, so the metrics live in prometheus_client's default registry (which also
carries the process and Python collectors). `app.py` only calls the functions below; what each
output record counts as is decided where the record is made (`records.Tally`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from streamproc.engine.state import OPEN
from streamproc.processor.records import Output

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATE_AFTER_US = 1_000_000
"""A wake-up produced more than this after its due time counts as late."""

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

EVENTS = Counter(
    "streamproc_worker_events",
    "Events accepted by stage 1 (re-keyed into the events topic), by type; "
    "type expiry: heartbeat monitors that expired (spec §8), applied as triggers by stage 2",
    ["type"],
)
MONITOR_EXPIRIES = EVENTS.labels("expiry")
"""Heartbeat monitor expiries (spec §8): a label of the events counter, which the dashboard shows."""
DEAD_LETTERS = Counter(
    "streamproc_worker_dead_letters", "Records written to the dead-letter topic, by reason kind", ["reason"]
)
OUTCOMES = Counter(
    "streamproc_worker_outcomes",
    "Outcomes emitted (message, undeliverable, dropped, exhausted), by kind and mode",
    ["kind", "mode"],
)
ESCALATIONS_OPEN = Gauge(
    "streamproc_worker_escalations_open",
    "Open incidents on this worker's active partitions, by partition and status "
    "(silenced, escalating, claimed, exhausted)",
    ["partition", "status"],
)
WAKEUPS_DUE = Counter(
    "streamproc_worker_wakeups_due", "Wake-ups of incidents whose wake time came, handed to the escalation stage"
)
WAKEUPS_LATE = Counter(
    "streamproc_worker_wakeups_late",
    "Wake-ups handed over more than 1 s after their due time (held by catch-up, re-armed, busy)",
)
SEND_LATENESS = Histogram(
    "streamproc_worker_send_lateness_seconds",
    "Scheduled sends (messages, undeliverable, dropped): output acknowledged minus the send's scheduled time",
    buckets=SECONDS_BUCKETS,
)
REBALANCES = Counter("streamproc_worker_rebalances", "Consumer-group rebalances completed (table recovered)")
TABLE_RECOVERY = Histogram(
    "streamproc_worker_table_recovery_seconds",
    "Time to restore the escalations table from its changelog after a rebalance",
    buckets=SECONDS_BUCKETS,
)


def count(outputs: Iterable[Output], now_us: int) -> None:
    """Count records the worker has just produced (and Kafka acknowledged)."""
    for output in outputs:
        tally = output.tally
        if tally is None:
            continue
        if tally.metric == "event":
            EVENTS.labels(tally.label).inc()
        elif tally.metric == "dead-letter":
            DEAD_LETTERS.labels(tally.label).inc()
        else:
            OUTCOMES.labels(tally.label, tally.mode).inc()
            if tally.label not in ("exhausted", "silenced"):  # not sends
                SEND_LATENESS.observe(max(0, now_us - tally.at_us) / 1_000_000)


def expired(count: int) -> None:
    """Heartbeat monitors that expired (their outputs acknowledged)."""
    MONITOR_EXPIRIES.inc(count)


def wakeup(due_us: int, now_us: int) -> None:
    WAKEUPS_DUE.inc()
    if now_us - due_us > LATE_AFTER_US:
        WAKEUPS_LATE.inc()


def rebalanced(recovery: Any, now_monotonic: float) -> None:
    """A rebalance completed; `recovery` is Faust's table `Recovery` (when it started restoring)."""
    REBALANCES.inc()
    started = getattr(recovery, "_recovery_started_at", None)
    if isinstance(started, float):
        TABLE_RECOVERY.observe(max(0.0, now_monotonic - started))


class OpenEscalations:
    """Which incidents are open (silenced, escalating, claimed or exhausted: not resolved) on which
    active partition; exported per partition and status (silenced instances: spec §8)."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[int, str]] = {}
        self._counts: dict[tuple[int, str], int] = {}

    def set(self, key: str, partition: int, status: str | None) -> None:
        """The incident's status now (None, or a status that is not open: it is not open)."""
        now = (partition, status) if status in OPEN else None
        was = self._open.get(key)
        if was == now:
            return
        if was is not None:
            del self._open[key]
            self._add(was, -1)
        if now is not None:
            self._open[key] = now
            self._add(now, 1)

    def clear(self) -> None:
        self._open.clear()
        self._counts.clear()
        ESCALATIONS_OPEN.clear()

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        self._open = {k: v for k, v in self._open.items() if v[0] not in gone}
        for labels in [c for c in self._counts if c[0] in gone]:
            del self._counts[labels]
            ESCALATIONS_OPEN.remove(str(labels[0]), labels[1])

    def _add(self, labels: tuple[int, str], delta: int) -> None:
        value = self._counts.get(labels, 0) + delta
        self._counts[labels] = value
        ESCALATIONS_OPEN.labels(str(labels[0]), labels[1]).set(value)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


open_escalations = OpenEscalations()
"""The worker's (one per process, like the default registry)."""
