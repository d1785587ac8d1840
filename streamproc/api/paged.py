"""Who was paged for what: an in-memory index the replies (`replies.py`) read, built from Kafka.

No database: the index follows two topics that the rest of the stack already writes.

- `streamproc.deliveries`: a `sent` record says user U was paged for incident I (instance N) by
  message M at time T (and the vendor's id of the page, a Twilio SID or a Slack ts). The record of
  a batch message (spec §7) names the batch's incidents too (`batch.incident_ids`, I being the
  first): message M stands for all of them, and each of them paged U.
- `streamproc.outcomes`: the processor's audit records say whether an instance is open:
  `claimed` and `resolved` close it, `unclaimed` opens it again (other records are ignored).

A thread reads every partition of both topics (assigned by hand: it joins no consumer group and
commits nothing, so every API replica holds the whole index) from `api.paged_window` ago
(`offsets_for_times` on the record timestamps; partitions with nothing that recent start at their
end) and then stays live. Entries older than the window are pruned. It starts over from the
window's beginning after an error (applying records again is harmless).

`caught_up` is set once the thread has read up to the end the topics had when it started.
`sync()` goes further for a reply that needs the newest state ("claim last"): it asks the broker
for the end of every partition now and waits (bounded) until the thread has read that far, so a
reply sees every page and claim written before it arrived.

Partitions added to the topics while the API runs are picked up at the next restart.

A batch names incidents, not instances. Its first member's instance is the record's; for another
member the index takes the instance that was open when the batch was sent: the lowest instance of
the incident it knows that was not resolved by then (instances of an incident follow each other,
each but the newest ends with a resolve). When it knows none, the member is open: no claim or
resolve record names it. The instance is worked out when asked, so records read later count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from pydantic import ValidationError

from streamproc.kafka import topics as names
from streamproc.kafka.security import client_config
from streamproc.timeutil import to_us
from streamproc.wire.deliveries import Delivery
from streamproc.wire.outcomes import Audit

log = logging.getLogger(__name__)

_AUDIT_KINDS = frozenset({"claimed", "unclaimed", "resolved"})
_PRUNE_EVERY = 60.0


@dataclass(frozen=True)
class Page:
    """One page that reached a vendor (a `sent` delivery record)."""

    message_id: str
    user: str
    incident_id: str
    instance: int
    mode: str
    at: datetime
    vendor_id: str | None = None
    batch: tuple[str, ...] = ()
    """A batch message's incidents (spec §7), `incident_id` first; empty on other pages."""

    @property
    def incidents(self) -> tuple[str, ...]:
        """Every incident the page is about: its batch's, or its own."""
        return self.batch or (self.incident_id,)


@dataclass(frozen=True)
class Paged:
    """An incident that paged a user, by its newest page: one of its own, or a batch it was in."""

    incident_id: str
    instance: int | None
    """None for a batch member other than the first (see the module docstring); in answers
    from `open_for`, the instance worked out (None: no record names one)."""
    page: Page

    @property
    def at(self) -> datetime:
        return self.page.at


@dataclass
class _Instance:
    claimed: bool = False
    owner: str | None = None
    resolved: bool = False
    resolved_at: int = 0
    """µs, when `resolved`."""
    seen: float = 0.0
    """Epoch seconds of the newest audit record, for pruning."""

    @property
    def open(self) -> bool:
        return not (self.claimed or self.resolved)


def _newness(paged: Paged) -> tuple[datetime, int]:
    """Newest page first; at the same time, the newer instance (a batch member's counts as unknown)."""
    return (paged.page.at, -1 if paged.instance is None else paged.instance)


_LIST_OFFSETS_TRY = 1.0
"""Seconds one ask for the partitions' end offsets may take before it is asked again."""


class PagedIndex:
    """The index. `apply_*` and the queries are thread-safe; `start()` runs the Kafka reader."""

    def __init__(
        self,
        bootstrap: str,
        window: float,
        *,
        deliveries_topic: str | None = None,
        outcomes_topic: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap = bootstrap
        self.window = window
        self.topics = (deliveries_topic or names.DELIVERIES, outcomes_topic or names.OUTCOMES)
        self._clock = clock
        self._lock = threading.Condition()
        self._pages: dict[str, Page] = {}  # message_id -> page
        self._by_vendor_id: dict[str, str] = {}  # vendor id -> message_id
        self._by_user: dict[str, dict[str, Paged]] = {}  # user -> incident -> newest paging
        self._instances: dict[str, dict[int, _Instance]] = {}  # incident -> instance -> its state
        self._positions: dict[tuple[str, int], int] = {}  # next offset to read, by (topic, partition)
        self._pruned_at = 0.0
        self.caught_up = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: AdminClient | None = None

    # ----------------------------------------------------------------------------- applying records
    def apply_delivery(self, record: Delivery) -> None:
        if record.status != "sent" or record.user is None or record.incident_id is None:
            return
        if record.instance is None or record.mode is None:
            return
        if to_us(record.at) / 1e6 < self._clock() - self.window:
            return
        batch = tuple(dict.fromkeys([record.incident_id, *record.batch.incident_ids])) if record.batch else ()
        page = Page(record.message_id, record.user, record.incident_id, record.instance, record.mode, record.at,
                    record.vendor_id, batch)
        with self._lock:
            self._pages[page.message_id] = page
            if page.vendor_id:
                self._by_vendor_id[page.vendor_id] = page.message_id
            pages = self._by_user.setdefault(page.user, {})
            for incident_id in page.incidents:
                paged = Paged(incident_id, page.instance if incident_id == page.incident_id else None, page)
                known = pages.get(incident_id)
                if known is None or _newness(known) <= _newness(paged):
                    pages[incident_id] = paged

    def apply_audit(self, audit: Audit) -> None:
        if audit.kind not in _AUDIT_KINDS:
            return
        with self._lock:
            entry = self._instances.setdefault(audit.incident_id, {}).setdefault(audit.instance, _Instance())
            entry.seen = max(entry.seen, to_us(audit.at) / 1e6)
            if audit.kind == "claimed":
                entry.claimed, entry.owner = True, audit.owner
            elif audit.kind == "unclaimed":
                entry.claimed, entry.owner = False, None
            elif not entry.resolved:
                entry.resolved, entry.resolved_at = True, to_us(audit.at)

    def apply_record(self, topic: str, value: bytes | None) -> None:
        """One record of either topic (bad records are skipped)."""
        try:
            if topic == self.topics[0]:
                self.apply_delivery(Delivery.model_validate_json(value or b""))
                return
            data = json.loads(value or b"")
            if isinstance(data, dict) and data.get("kind") in _AUDIT_KINDS:
                self.apply_audit(Audit.model_validate(data))
        except (ValidationError, ValueError):
            log.debug("paged index: skipping a record of %s it cannot read", topic)

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        with self._lock:
            for message_id in [m for m, p in self._pages.items() if to_us(p.at) / 1e6 < cutoff]:
                page = self._pages.pop(message_id)
                if page.vendor_id:
                    self._by_vendor_id.pop(page.vendor_id, None)
                pages = self._by_user.get(page.user, {})
                for incident_id in page.incidents:
                    known = pages.get(incident_id)
                    if known is not None and known.page is page:
                        del pages[incident_id]
                if not pages:
                    self._by_user.pop(page.user, None)
            for incident_id, instances in list(self._instances.items()):
                for n in [n for n, entry in instances.items() if entry.seen < cutoff]:
                    del instances[n]
                if not instances:
                    del self._instances[incident_id]

    # -------------------------------------------------------------------------------------- queries
    def open_for(self, user: str) -> list[Paged]:
        """Incidents that paged `user` (within the window) and are open, newest page first.

        An incident is judged by its newest page to the user (one of its own, or a batch it was
        in): open when that page's instance is neither claimed nor resolved as far as the audit
        records read so far say (an instance with no audit record is open). So a newer instance
        of the same incident hides the older ones: claims name incidents, not instances."""
        with self._lock:
            pages = sorted(self._by_user.get(user, {}).values(), key=_newness, reverse=True)
            found: list[Paged] = []
            for paged in pages:
                instance = paged.instance
                if instance is None:
                    instance = self._member_instance(paged.incident_id, paged.at)
                entry = None if instance is None else self._instances.get(paged.incident_id, {}).get(instance)
                if entry is None or entry.open:
                    found.append(Paged(paged.incident_id, instance, paged.page))
            return found

    def _member_instance(self, incident_id: str, at: datetime) -> int | None:
        """The instance of a batch member: the lowest known one not resolved by `at` (the lock is held)."""
        at_us = to_us(at)
        instances = self._instances.get(incident_id, {})
        open_then = [n for n, e in instances.items() if not e.resolved or e.resolved_at > at_us]
        return min(open_then) if open_then else None

    def incident_of(self, message_id: str) -> Page | None:
        """The page a message id names (user, incident, instance, and a batch's incidents), if it
        was sent within the window."""
        with self._lock:
            return self._pages.get(message_id)

    def page_of_vendor_id(self, vendor_id: str) -> Page | None:
        """The page the vendor knows as `vendor_id` (Twilio's MessageSid or CallSid)."""
        with self._lock:
            message_id = self._by_vendor_id.get(vendor_id)
            return self._pages.get(message_id) if message_id else None

    def incidents_paging(self, user: str) -> set[str]:
        """Every incident that paged `user` within the window (batch members too), open or not."""
        with self._lock:
            return set(self._by_user.get(user, {}))

    def owner_of(self, incident_id: str, instance: int) -> str | None:
        with self._lock:
            entry = self._instances.get(incident_id, {}).get(instance)
            return entry.owner if entry is not None and entry.claimed else None

    def status(self) -> str:
        return "caught up" if self.caught_up.is_set() else "catching up"

    # --------------------------------------------------------------------------------- the reader
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="api-paged-index", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._follow()
            except Exception as exc:
                log.warning("paged index: reading %s failed (%s); starting over in 1 s", self.topics, exc)
                self.stopping.wait(1.0)

    def _config(self) -> dict[str, Any]:
        return client_config(self.bootstrap, **{
            "client.id": f"streamproc-api-paged-{os.getpid()}",
            # Never subscribed nor committed: a group id is only what librdkafka wants to see.
            "group.id": f"streamproc-api-paged-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 100,
        })

    def _follow(self) -> None:
        consumer = Consumer(self._config())
        try:
            since_ms = int((self._clock() - self.window) * 1000)
            assignment: list[TopicPartition] = []
            targets: dict[tuple[str, int], int] = {}
            for topic in self.topics:
                meta = consumer.list_topics(topic, timeout=3).topics.get(topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    raise KafkaException(f"topic {topic} is not available ({getattr(meta, 'error', 'missing')})")
                wanted = [TopicPartition(topic, p, since_ms) for p in sorted(meta.partitions)]
                for tp in consumer.offsets_for_times(wanted, timeout=10):
                    _low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
                    start = tp.offset if tp.offset >= 0 else high  # nothing that recent: from the end
                    assignment.append(TopicPartition(topic, tp.partition, start))
                    if high > start:
                        targets[(topic, tp.partition)] = high
            with self._lock:
                self._positions = {(tp.topic, tp.partition): tp.offset for tp in assignment}
                self._lock.notify_all()
            consumer.assign(assignment)
            if not targets:
                self.caught_up.set()
            while not self.stopping.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    self._advance(consumer.position(assignment))
                else:
                    where, partition, offset = msg.topic(), msg.partition(), msg.offset()
                    if msg.error() is None and where is not None and partition is not None and offset is not None:
                        self.apply_record(where, msg.value())
                        self._advance([TopicPartition(where, partition, offset + 1)])
                if not self.caught_up.is_set():
                    with self._lock:
                        reached = all(self._positions.get(k, 0) >= end for k, end in targets.items())
                    if reached:
                        log.info("paged index: caught up with %s", ", ".join(self.topics))
                        self.caught_up.set()
                if self._clock() - self._pruned_at > _PRUNE_EVERY:
                    self._pruned_at = self._clock()
                    self.prune()
        finally:
            consumer.close()

    def _advance(self, positions: Iterable[TopicPartition]) -> None:
        """Record how far each partition has been read (positions also move past records that
        are not data, such as transaction markers)."""
        with self._lock:
            moved = False
            for tp in positions:
                key = (tp.topic, tp.partition)
                if tp.offset >= 0 and tp.offset > self._positions.get(key, -1):
                    self._positions[key] = tp.offset
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
        if not partitions:
            return True
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(client_config(self.bootstrap,
                                                        **{"client.id": f"streamproc-api-paged-{os.getpid()}"}))
            admin = self._admin
        ends = self._ends(admin, partitions, deadline)
        if ends is None:
            return False
        with self._lock:
            while not self.stopping.is_set():
                if all(self._positions.get(k, 0) >= end for k, end in ends.items()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return False

    def _ends(self, admin: AdminClient, partitions: list[tuple[str, int]],
              deadline: float) -> dict[tuple[str, int], int] | None:
        """The end offset of each partition now. A failed or slow answer (a busy broker, a leader
        that moved) is asked again, each try bounded, until `deadline`; None when none came."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        error: BaseException | None = None
        while (remaining := deadline - time.monotonic()) > 0 and not self.stopping.is_set():
            attempt = min(remaining, _LIST_OFFSETS_TRY)
            futures = admin.list_offsets({TopicPartition(t, p): latest for t, p in partitions},
                                         request_timeout=attempt)
            try:
                return {(tp.topic, tp.partition): future.result(timeout=attempt).offset
                        for tp, future in futures.items()}
            except Exception as exc:
                error = exc
        log.warning("paged index: could not read the ends of %s (%r)", self.topics, error)
        return None

    async def sync(self, timeout: float = 3.0) -> bool:
        """Until the index reflects everything on its topics as of now (False: not within `timeout`)."""
        return await asyncio.to_thread(self.wait_synced, timeout)
