"""The status topic in memory: the latest summary of every incident, by incident id.

A `kafka.follow.TopicFollower`: every partition of `<namespace>.status` is assigned by hand (no
consumer group, nothing committed), read from its beginning to its end, then followed. A record
replaces its incident's summary; a tombstone (no value) removes it. The topic is compacted, so a
reader that starts reads about one record per incident that is open or recently resolved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from streamproc.kafka import topics as names
from streamproc.kafka.follow import TopicFollower
from streamproc.wire.status import OPEN_STATUSES, IncidentSummary

log = logging.getLogger(__name__)

STATUS_FILTERS = ("open", "escalating", "claimed", "silenced", "exhausted", "resolved", "all")
"""`open`: every status but resolved; `all`: every one."""


def statuses_of(name: str) -> frozenset[str] | None:
    """The statuses a filter stands for (None: every one). ValueError for an unknown name."""
    if name == "all":
        return None
    if name == "open":
        return OPEN_STATUSES
    if name in STATUS_FILTERS:
        return frozenset({name})
    raise ValueError(f"status: one of {', '.join(STATUS_FILTERS)}")


@dataclass(frozen=True)
class Query:
    status: str = "open"
    application: str | None = None
    plan: str | None = None
    owner: str | None = None
    """Claimed by this user."""


def order(summaries: Iterable[IncidentSummary]) -> list[IncidentSummary]:
    """Newest first (by trigger time, then incident id): a stable order for pages."""
    return sorted(summaries, key=lambda s: (s.created, s.incident_id), reverse=True)


class StatusIndex(TopicFollower):
    """Thread-safe: the reader thread applies records, any thread queries."""

    name = "status-index"

    def __init__(self, bootstrap: str, topic: str | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(bootstrap, (topic or names.STATUS,), clock)
        self._summaries: dict[str, IncidentSummary] = {}
        self.version = 0
        """Counts the changes applied (the status page asks again only when it moved)."""

    def apply_message(self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None) -> None:
        if key is None:
            return
        incident_id = key.decode(errors="replace")
        if not value:
            with self._lock:
                if self._summaries.pop(incident_id, None) is not None:
                    self.version += 1
                    self._lock.notify_all()
            return
        try:
            summary = IncidentSummary.model_validate_json(value)
        except ValidationError:
            log.debug("status index: skipping a record of %s it cannot read", topic)
            return
        with self._lock:
            self._summaries[incident_id] = summary
            self.version += 1
            self._lock.notify_all()

    def get(self, incident_id: str) -> IncidentSummary | None:
        with self._lock:
            return self._summaries.get(incident_id)

    def query(self, query: Query) -> list[IncidentSummary]:
        statuses = statuses_of(query.status)
        with self._lock:
            found = [
                s
                for s in self._summaries.values()
                if (statuses is None or s.status in statuses)
                and (query.application is None or s.application == query.application)
                and (query.plan is None or s.plan == query.plan)
                and (query.owner is None or s.claimed_by == query.owner)
            ]
        return order(found)

    def wait_changed(self, since: int, timeout: float) -> int:
        """Blocking: until `version` differs from `since` (or `timeout`); returns the version."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.version == since and not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return self.version


def read_all(bootstrap: str, timeout: float = 30.0, topic: str | None = None) -> StatusIndex:
    """The status topic read once to its end (for `streamproc incidents`). TimeoutError when the
    end was not reached within `timeout`."""
    index = StatusIndex(bootstrap, topic)
    index.start()
    try:
        if not index.caught_up.wait(timeout):
            raise TimeoutError(f"could not read {index.topics[0]} to its end within {timeout:.0f} s")
    finally:
        index.stop()
    return index
