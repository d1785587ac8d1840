"""Spec §8 silences as the doors see them: `SilenceIndex`, a follower of the incidents topic.

No database: the silences are the `silence` and `unsilence` events on `streamproc.incidents`,
whoever wrote them (this API, `streamproc silence`, `streamproc produce`, any producer).

Where it starts reading: a thread reads every partition of the incidents topic from its beginning
(the oldest record the topic retains; assigned by hand: it joins no consumer group and commits
nothing, so every API replica and every `streamproc silence list` holds all silences), and then
stays live. A silence may be made long before its window (nothing bounds `starts` after `at`), so
no start time later than the topic's beginning is safe. Records are skipped cheaply unless their
bytes hold `silence` (a JSON parse only for those); a silence event is applied at its `at`, or its
record's timestamp when it has none, as the processor applies it.

How it knows it caught up: `caught_up` is set once every partition has been read up to the end
offset it had when the reader started. `sync()` goes further for an answer that must see the
caller's own writes (`GET` right after a `POST`, `DELETE` of a silence just made): it asks the
broker for the end of every partition now and waits (bounded) until the reader has read that far,
so everything acknowledged before the request is in the answer. The positions count records that
are not data (transaction markers) too: a consumer's position moves past them.

It keeps, per application and silence id, the latest silence with `ends` moved by unsilences
(`ends = max(starts, U)` when earlier, spec §8), like `SilenceBook` does, but it also keeps expired
silences for `retention` (Alertmanager lists expired silences, for 5 days by default). Events the
processor dead-letters (an unknown application, a span that `check_silence` refuses) are skipped.
An unsilence of an unknown id is ignored, as in the processor.

Partitions added to the topic while it runs are picked up at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from pydantic import ValidationError

from streamproc.engine.core import Engine
from streamproc.engine.maintenance import KnownSilence
from streamproc.kafka import topics as names
from streamproc.kafka.security import client_config
from streamproc.timeutil import from_us, to_us
from streamproc.wire.api import SilenceState, SilenceView
from streamproc.wire.events import Silence, Unsilence, parse_any_event

log = logging.getLogger(__name__)

RETENTION = 5 * 86400.0
"""Seconds an expired silence stays listed (Alertmanager's default `--data.retention`, 120h)."""
_LIST_OFFSETS_TRY = 1.0
_PRUNE_EVERY = 60.0


@dataclass(frozen=True)
class Known:
    """One silence: its latest `silence` event (as the engine holds it) and when it last changed."""

    silence: KnownSilence
    updated_at: int
    """µs: the time of the latest event of this silence."""

    def state(self, now_us: int) -> SilenceState:
        s = self.silence
        if s.ends <= now_us or s.ends <= s.starts:
            return "expired"
        return "pending" if s.starts > now_us else "active"

    def view(self, now_us: int) -> SilenceView:
        s = self.silence
        return SilenceView(
            silence_id=s.silence_id,
            application=s.application,
            state=self.state(now_us),
            starts=from_us(s.starts),
            ends=from_us(s.ends),
            plans=list(s.plans) if s.plans is not None else None,
            match={k: v[0] if len(v) == 1 else list(v) for k, v in s.match.items()},
            match_re=dict(s.match_re),
            created_by=s.created_by,
            comment=s.comment,
            updated_at=from_us(self.updated_at),
        )


def unsilenced(known: Known, at_us: int) -> Known:
    """`known` after an unsilence at `at_us` (spec §8: `ends = max(starts, U)` when that is earlier)."""
    ends = max(known.silence.starts, at_us)
    if ends >= known.silence.ends:
        return replace(known, updated_at=at_us)
    return Known(known.silence.model_copy(update={"ends": ends}), at_us)


def _order(now_us: int) -> Callable[[Known], tuple[int, int, str]]:
    """Active first (soonest end first), then pending (soonest start), then expired (latest end first)."""
    rank = {"active": 0, "pending": 1, "expired": 2}

    def key(k: Known) -> tuple[int, int, str]:
        state = k.state(now_us)
        when = {"active": k.silence.ends, "pending": k.silence.starts, "expired": -k.silence.ends}[state]
        return rank[state], when, k.silence.silence_id

    return key


class SilenceIndex:
    """The silences of every application. `apply` and the queries are thread-safe; `start()` runs
    the Kafka reader (or `read_to_end()` reads once, for the command line)."""

    def __init__(
        self,
        bootstrap: str,
        engine: Engine,
        *,
        topic: str | None = None,
        retention: float = RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap = bootstrap
        self.engine = engine
        self.topic = topic or names.INCIDENTS
        self.retention = retention
        self._clock = clock
        self._lock = threading.Condition()
        self._silences: dict[tuple[str, str], Known] = {}
        self._positions: dict[int, int] = {}  # partition -> next offset to read
        self._pruned_at = 0.0
        self.caught_up = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: AdminClient | None = None

    # ----------------------------------------------------------------------------- applying events
    def apply(self, event: Silence | Unsilence, at_us: int) -> None:
        """One silence event at `at_us` (its `at`, or its record's timestamp)."""
        if self.engine.check_silence(event, at_us) is not None:
            return  # the processor dead-letters it
        key = (event.application, event.silence_id)
        with self._lock:
            if isinstance(event, Silence):
                self._silences[key] = Known(KnownSilence.of(event, at_us), at_us)
            else:
                known = self._silences.get(key)
                if known is not None:
                    self._silences[key] = unsilenced(known, at_us)

    def apply_record(self, value: bytes | None, timestamp_ms: int | None) -> None:
        """One record of the incidents topic; anything but a readable silence event is skipped."""
        if not value or b"silence" not in value:
            return
        try:
            event = parse_any_event(value)
        except (ValidationError, ValueError):
            return
        if not isinstance(event, Silence | Unsilence):
            return
        if event.at is not None:
            at_us = to_us(event.at)
        elif timestamp_ms is not None and timestamp_ms > 0:
            at_us = timestamp_ms * 1000
        else:
            return
        self.apply(event, at_us)

    def prune(self) -> None:
        cutoff = int((self._clock() - self.retention) * 1e6)
        with self._lock:
            for key in [k for k, v in self._silences.items() if v.silence.ends < cutoff and v.updated_at < cutoff]:
                del self._silences[key]

    # -------------------------------------------------------------------------------------- queries
    def now_us(self) -> int:
        return int(self._clock() * 1e6)

    def get(self, application: str, silence_id: str) -> Known | None:
        with self._lock:
            return self._silences.get((application, silence_id))

    def of(self, application: str, states: Iterable[SilenceState] = ("active", "pending", "expired")) -> list[Known]:
        """The application's silences in these states, active first (see `_order`)."""
        now_us = self.now_us()
        wanted = set(states)
        with self._lock:
            found = [k for (app, _), k in self._silences.items() if app == application and k.state(now_us) in wanted]
        return sorted(found, key=_order(now_us))

    def status(self) -> str:
        return "caught up" if self.caught_up.is_set() else "catching up"

    # --------------------------------------------------------------------------------- the reader
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="api-silence-index", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def read_to_end(self, timeout: float) -> bool:
        """Blocking, for the command line: start the reader, wait until it caught up, stop it."""
        self.start()
        try:
            return self.caught_up.wait(timeout)
        finally:
            self.stop()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._follow()
            except Exception as exc:
                log.warning("silence index: reading %s failed (%s); starting over in 1 s", self.topic, exc)
                self.stopping.wait(1.0)

    def _config(self) -> dict[str, Any]:
        return client_config(
            self.bootstrap,
            **{
                "client.id": f"streamproc-silences-{os.getpid()}",
                # Never subscribed nor committed: a group id is only what librdkafka wants to see.
                "group.id": f"streamproc-silences-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
            },
        )

    def _follow(self) -> None:
        consumer = Consumer(self._config())
        try:
            meta = consumer.list_topics(self.topic, timeout=3).topics.get(self.topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KafkaException(f"topic {self.topic} is not available ({getattr(meta, 'error', 'missing')})")
            targets: dict[int, int] = {}
            starts: dict[int, int] = {}
            for p in sorted(meta.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
                starts[p] = low
                if high > low:
                    targets[p] = high
            with self._lock:
                self._silences.clear()  # read again from the beginning: every event again, in order
                self._positions = dict(starts)
                self._lock.notify_all()
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)])
            assignment = [TopicPartition(self.topic, p) for p in sorted(meta.partitions)]
            if not targets:
                self.caught_up.set()
            while not self.stopping.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    self._advance(consumer.position(assignment))
                else:
                    partition, offset = msg.partition(), msg.offset()
                    if msg.error() is None and partition is not None and offset is not None:
                        _kind, timestamp = msg.timestamp()
                        self.apply_record(msg.value(), timestamp)
                        self._advance([TopicPartition(self.topic, partition, offset + 1)])
                if not self.caught_up.is_set():
                    with self._lock:
                        reached = all(self._positions.get(p, 0) >= end for p, end in targets.items())
                    if reached:
                        log.info("silence index: caught up with %s", self.topic)
                        self.caught_up.set()
                if self._clock() - self._pruned_at > _PRUNE_EVERY:
                    self._pruned_at = self._clock()
                    self.prune()
        finally:
            consumer.close()

    def _advance(self, positions: Iterable[TopicPartition]) -> None:
        with self._lock:
            moved = False
            for tp in positions:
                if tp.offset >= 0 and tp.offset > self._positions.get(tp.partition, -1):
                    self._positions[tp.partition] = tp.offset
                    moved = True
            if moved:
                self._lock.notify_all()

    # ------------------------------------------------------------------------------- read your writes
    def wait_synced(self, timeout: float) -> bool:
        """Blocking: until the reader has read every partition to its end as of this call."""
        deadline = time.monotonic() + timeout
        if not self.caught_up.wait(timeout):
            return False
        with self._lock:
            partitions = list(self._positions)
            if self._admin is None:
                self._admin = AdminClient(
                    client_config(self.bootstrap, **{"client.id": f"streamproc-silences-{os.getpid()}"})
                )
            admin = self._admin
        if not partitions:
            return True
        ends = self._ends(admin, partitions, deadline)
        if ends is None:
            return False
        with self._lock:
            while not self.stopping.is_set():
                if all(self._positions.get(p, 0) >= end for p, end in ends.items()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return False

    def _ends(self, admin: AdminClient, partitions: list[int], deadline: float) -> dict[int, int] | None:
        """The end offset of each partition now, asked again (each try bounded) until `deadline`."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        error: BaseException | None = None
        while (remaining := deadline - time.monotonic()) > 0 and not self.stopping.is_set():
            attempt = min(remaining, _LIST_OFFSETS_TRY)
            futures = admin.list_offsets(
                {TopicPartition(self.topic, p): latest for p in partitions}, request_timeout=attempt
            )
            try:
                return {tp.partition: future.result(timeout=attempt).offset for tp, future in futures.items()}
            except Exception as exc:
                error = exc
        log.warning("silence index: could not read the ends of %s (%r)", self.topic, error)
        return None

    async def sync(self, timeout: float = 5.0) -> bool:
        """Until the index reflects everything on the topic as of now (False: not within `timeout`)."""
        return await asyncio.to_thread(self.wait_synced, timeout)
