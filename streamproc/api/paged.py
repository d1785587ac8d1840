"""Who was paged for what: the in-memory index the replies (`api.replies`) ask.

Why a file of its own: this is the index alone (records in, answers out, no Kafka client), so it
is tested without a broker; `paged_reader.py` feeds it from Kafka.

No database: the index is built from two topics that the rest of the stack already writes.

- `streamproc.deliveries`: a `sent` record says user U was paged for incident I (instance N) by
  message M at time T (and the vendor's id of the page, a Twilio SID or a Slack ts). The record of
  a batch message (flood control, docs/behaviour.md) names the batch's incidents too
  (`batch.incident_ids`, I being the first): message M stands for all of them, and each of them
  paged U.
- `streamproc.outcomes`: the processor's audit records say whether an instance is open:
  `claimed` and `resolved` close it, `unclaimed` opens it again (other records are ignored).

Pages older than `window` (`api.paged_window`) are not taken, and `prune()` drops entries that
have grown older than it. Applying a record again is harmless.

A batch names incidents, not instances. Its first member's instance is the record's; for another
member the index takes the instance that was open when the batch was sent: the lowest instance of
the incident it knows that was not resolved by then (instances of an incident follow each other,
each but the newest ends with a resolve). When it knows none, the member is open: no claim or
resolve record names it. The instance is worked out when asked, so records read later count.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from streamproc.timeutil import to_us
from streamproc.wire.deliveries import Delivery
from streamproc.wire.outcomes import Audit

log = logging.getLogger(__name__)

_AUDIT_KINDS = frozenset({"claimed", "unclaimed", "resolved"})


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


class PagedIndex:
    """The index. `apply_*`, `prune` and the queries are thread-safe."""

    def __init__(self, window: float, *, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._pages: dict[str, Page] = {}  # message_id -> page
        self._by_vendor_id: dict[str, str] = {}  # vendor id -> message_id
        self._by_user: dict[str, dict[str, Paged]] = {}  # user -> incident -> newest paging
        self._instances: dict[str, dict[int, _Instance]] = {}  # incident -> instance -> its state

    # ----------------------------------------------------------------------------- applying records
    def apply_delivery(self, record: Delivery) -> None:
        if record.status != "sent" or record.user is None or record.incident_id is None:
            return
        if record.instance is None or record.mode is None:
            return
        if to_us(record.at) / 1e6 < self.clock() - self.window:
            return
        batch = tuple(dict.fromkeys([record.incident_id, *record.batch.incident_ids])) if record.batch else ()
        page = Page(
            record.message_id,
            record.user,
            record.incident_id,
            record.instance,
            record.mode,
            record.at,
            record.vendor_id,
            batch,
        )
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

    def apply_delivery_record(self, value: bytes | None) -> None:
        """One record of the deliveries topic (one it cannot read is skipped)."""
        try:
            self.apply_delivery(Delivery.model_validate_json(value or b""))
        except (ValidationError, ValueError):
            log.debug("paged index: skipping a deliveries record it cannot read")

    def apply_outcome_record(self, value: bytes | None) -> None:
        """One record of the outcomes topic: claims, unclaims and resolves count, the rest is skipped."""
        try:
            data = json.loads(value or b"")
            if isinstance(data, dict) and data.get("kind") in _AUDIT_KINDS:
                self.apply_audit(Audit.model_validate(data))
        except (ValidationError, ValueError):
            log.debug("paged index: skipping an outcomes record it cannot read")

    def prune(self) -> None:
        """Drop what is older than the window."""
        cutoff = self.clock() - self.window
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
