"""One mode's sender pipeline: the stages in a line, like Alertmanager's notify pipeline.

    lanes (priority, then round robin by application)
      -> dedupe (message id already handled?)
      -> claimed/resolved check (a batch message: every incident in it)
      -> rate limit (mode share, vendor-account share)
      -> vendor call
      -> retry with backoff (temporary failures re-enter the lanes)
      -> fallback to email, or `failed`
      -> delivery record (durable) -> offset may be committed

Each stage lives in its own module and is tested alone; this module only composes them.
Kafka stays outside: the pipeline writes through a `Sink`, so tests can use a list.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from streamproc.config.senders import RetrySettings
from streamproc.senders import metrics
from streamproc.senders.claims import Claims
from streamproc.senders.dedupe import DeliveredSet
from streamproc.senders.fallback import fallback_message
from streamproc.senders.lanes import Lanes
from streamproc.senders.pending import Pending
from streamproc.senders.ratelimit import RateLimits
from streamproc.senders.retry import decide
from streamproc.senders.vendors.base import Vendor, VendorResult
from streamproc.timeutil import to_us
from streamproc.wire.deliveries import HANDLED, Delivery, DeliveryStatus
from streamproc.wire.outcomes import Message

log = logging.getLogger(__name__)

EmailOf = Callable[[str], str | None]


def log_fields(item: Pending) -> dict[str, Any]:
    """What a log line about a message carries (see `streamproc.logs`)."""
    message = item.message
    return {
        "correlation_id": item.correlation_id,
        "incident_id": message.incident_id,
        "instance": message.instance,
        "message_id": message.message_id,
        "application": message.application,
        "plan": message.plan,
        "partition": item.partition,
        "mode": message.mode,
        "user": message.user,
    }


class Sink(Protocol):
    """Where the pipeline's results go. Both writes are durable when they return."""

    async def record(self, delivery: Delivery, pending: Pending) -> None: ...

    async def requeue(self, message: Message, pending: Pending) -> None: ...

    def done(self, pending: Pending) -> None:
        """The message is settled: its offset may be committed."""


class ModePipeline:
    def __init__(
        self,
        mode: str,
        vendor: Vendor,
        limits: RateLimits,
        delivered: DeliveredSet,
        claims: Claims,
        sink: Sink,
        email_of: EmailOf,
        retry: RetrySettings,
        concurrency: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self.mode = mode
        self.vendor = vendor
        self.limits = limits
        self.delivered = delivered
        self.claims = claims
        self.sink = sink
        self.email_of = email_of
        self.retry = retry
        self.lanes = Lanes(mode)
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        self._owned: dict[int, int] = {}
        self._generation = 0
        self._active: dict[str, int] = {}
        """Message ids queued, waiting for a retry or in flight, and their partition."""
        self._tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._timers: dict[int, dict[int, asyncio.TimerHandle]] = {}
        self.failed: BaseException | None = None
        """Set when a delivery record could not be written; the worker stops on it."""

    # ownership -----------------------------------------------------------------------------
    def adopt(self, partitions: Iterable[int], delivered: Iterable[Delivery] = ()) -> None:
        """Partitions assigned: remember what was already delivered on them."""
        self.delivered.load(delivered)
        for partition in partitions:
            self._generation += 1
            self._owned[partition] = self._generation

    async def release(self, partitions: Iterable[int], timeout: float = 30.0) -> None:
        """Partitions revoked: forget queued and waiting messages (the next owner reads them
        again from the committed offset) and let sends in flight finish and be recorded, so
        the next owner sees their delivery records."""
        gone = set(partitions)
        for partition in gone:
            self._owned.pop(partition, None)
            for handle in self._timers.pop(partition, {}).values():
                handle.cancel()
        self.lanes.remove_if(lambda p: p.partition in gone)
        waiting = [t for p in gone for t in self._tasks.get(p, set())]
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=timeout)
            if pending:
                log.warning("%s: %d sends still in flight after %.0fs of revoke", self.mode, len(pending), timeout)
        self._active = {i: p for i, p in self._active.items() if p not in gone}

    @property
    def owned_partitions(self) -> list[int]:
        return sorted(self._owned)

    def owns(self, item: Pending) -> bool:
        return self._owned.get(item.partition) == item.generation

    # intake --------------------------------------------------------------------------------
    def enqueue(self, item: Pending) -> None:
        generation = self._owned.get(item.partition)
        if generation is None:
            return  # read just before a revoke; the next owner reads it again
        item.generation = generation
        message_id = item.message.message_id
        if message_id in self._active:
            # Another copy is queued or in flight; it settles the id. Not in HANDLED, so a
            # crash before that copy is recorded still leaves the id to be sent.
            self._spawn(item, self._settle(item, "duplicate", "another copy is being delivered", owner=False))
            return
        self._active[message_id] = item.partition
        self.lanes.push(item)

    def enqueue_all(self, items: Iterable[Pending]) -> None:
        """`enqueue` for each, in order: what the consumer thread hands over per batch."""
        for item in items:
            self.enqueue(item)

    # the dispatcher ------------------------------------------------------------------------
    async def run(self) -> None:
        """Take messages in lane order, pass them through the gates, start their sends.
        Runs until cancelled; sends in flight are left to `drain`."""
        while True:
            await self._slots.acquire()
            started = False
            try:
                item = await self.lanes.get()
                if not self.owns(item):
                    continue
                gate = self._gate(item)
                if gate is not None:
                    status, detail = gate
                    self._spawn(item, self._settle(item, status, detail))
                    continue
                waiting = time.perf_counter()
                await self.limits.acquire(self.mode)
                metrics.waited(self.mode, time.perf_counter() - waiting)
                if not self.owns(item):
                    continue
                self._spawn(item, self._attempt(item), slot=True)
                started = True
            finally:
                if not started:
                    self._slots.release()

    def _gate(self, item: Pending) -> tuple[DeliveryStatus, str] | None:
        message = item.message
        if message.message_id in self.delivered:
            return "duplicate", "already delivered"
        if message.batch is not None:
            ids = message.batch.incident_ids
            verdict = self.claims.batch_verdict(ids, (message.incident_id, message.instance), to_us(message.at))
            if verdict is not None:
                shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
                settled = "resolved" if verdict == "dropped-resolved" else "claimed or resolved"
                return verdict, f"batch: every incident {settled} ({shown})"
            return None
        verdict = self.claims.verdict(message.incident_id, message.instance, to_us(message.at))
        if verdict is not None:
            return verdict, f"incident {message.incident_id}#{message.instance} {verdict.split('-')[1]}"
        return None

    async def _attempt(self, item: Pending) -> None:
        item.attempts += 1
        started = time.perf_counter()
        try:
            result = await self.vendor.send(item.message)
        except Exception as exc:  # a vendor bug must not kill the worker; treat it as temporary
            log.exception("%s vendor %s raised", self.mode, self.vendor.name, extra=log_fields(item))
            result = VendorResult.temporary(f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        metrics.vendor_called(self.mode, self.vendor.name, result, seconds, item.message)
        call: dict[str, Any] = {}
        # An accepted page's call is told on its `delivery sent` line (one JSON line a page, not two:
        # the lines were a fifth of the sender's CPU); a call that failed gets a line of its own.
        level = logging.DEBUG if result.outcome == "ok" else logging.INFO
        if log.isEnabledFor(logging.INFO):
            call = {
                "vendor": self.vendor.name,
                "attempt": item.attempts,
                "result": result.outcome,
                "detail": result.detail,
                "vendor_id": result.vendor_id,
                "seconds": round(seconds, 4),
            }
            if log.isEnabledFor(level):
                log.log(level, "vendor call", extra={**log_fields(item), **call})
        decision = decide(result, item.attempts, self.retry, self._rng)
        if decision.action == "done":
            await self._settle(item, "sent", result.detail, result.vendor_id, call=call)
        elif decision.action == "retry":
            metrics.retried(self.mode, self.vendor.name)
            if result.retry_after is not None:
                self.limits.pause(self.mode, result.retry_after)
            log.info(
                "%s %s: attempt %d failed (%s); retry in %.2fs",
                self.mode,
                item.message.message_id,
                item.attempts,
                result.detail,
                decision.delay,
            )
            self._later(item, decision.delay)
        else:
            reason = result.detail
            email = self.email_of(item.message.user) if item.message.mode != "email" else None
            copy = fallback_message(item.message, email, reason)
            if copy is None:
                await self._settle(item, "failed", reason)
            else:
                await self.sink.requeue(copy, item)
                await self._settle(item, "fallback", f"{reason}; re-queued as email {copy.message_id}")

    def _later(self, item: Pending, delay: float) -> None:
        timers = self._timers.setdefault(item.partition, {})

        def back() -> None:
            timers.pop(id(item), None)
            if self.owns(item):
                self.lanes.push(item, front=True)

        timers[id(item)] = asyncio.get_running_loop().call_later(delay, back)

    async def _settle(
        self,
        item: Pending,
        status: DeliveryStatus,
        detail: str,
        vendor_id: str | None = None,
        owner: bool = True,
        call: dict[str, Any] | None = None,
    ) -> None:
        """Write the delivery record, then let the offset go. `owner` is False for a copy
        turned away at intake, whose id still belongs to the copy being delivered; `call` is the
        vendor call that made it, for the log line."""
        message = item.message
        record = Delivery(
            message_id=message.message_id,
            incident_id=message.incident_id,
            instance=message.instance,
            mode=message.mode,
            vendor=self.vendor.name,
            status=status,
            at=datetime.now(UTC),
            attempts=item.attempts,
            detail=detail,
            vendor_id=vendor_id,
            user=message.user,
            batch=message.batch,
        )
        await self.sink.record(record, item)
        metrics.settled(self.mode, self.vendor.name, status)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "delivery %s",
                status,
                extra={
                    **log_fields(item),
                    **(call or {}),
                    "vendor": self.vendor.name,
                    "status": status,
                    "attempts": item.attempts,
                    "detail": detail,
                },
            )
        if status in HANDLED:
            self.delivered.add(message.message_id)
        if owner:
            self._active.pop(message.message_id, None)
        self.sink.done(item)

    def _spawn(self, item: Pending, work: Coroutine[Any, Any, None], slot: bool = False) -> None:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                log.exception("%s: settling %s failed", self.mode, item.message.message_id)
                self.failed = exc
            finally:
                if slot:
                    self._slots.release()

        task = asyncio.get_running_loop().create_task(run())
        tasks = self._tasks.setdefault(item.partition, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # shutdown ------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return sum(len(t) for t in self._tasks.values())

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait for sends in flight (bounded); queued messages stay uncommitted."""
        await self.release(list(self._owned), timeout)
