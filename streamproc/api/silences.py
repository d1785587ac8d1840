"""Spec §8 silences as the doors see them: `SilenceIndex`, a follower of the incidents topic.

No database: the silences are the `silence` and `unsilence` events on `streamproc.incidents`,
whoever wrote them (this API, `streamproc silence`, `streamproc produce`, any producer).

Where it starts reading: a `kafka.follow.TopicFollower` reads every partition of the incidents
topic from its beginning (the oldest record the topic retains; assigned by hand: it joins no
consumer group and commits nothing, so every API replica and every `streamproc silence list`
holds all silences), and then stays live. A silence may be made long before its window (nothing
bounds `starts` after `at`), so no start time later than the topic's beginning is safe. Records
are skipped cheaply unless their bytes hold `silence` (a JSON parse only for those); a silence
event is applied at its `at`, or its record's timestamp when it has none, as the processor
applies it. After an error the reader starts over from the beginning with no silences known.

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

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from pydantic import ValidationError

from streamproc.engine.core import Engine
from streamproc.engine.maintenance import KnownSilence
from streamproc.kafka import topics as names
from streamproc.kafka.follow import TopicFollower
from streamproc.timeutil import from_us, to_us
from streamproc.wire.api import SilenceState, SilenceView
from streamproc.wire.events import Silence, Unsilence, parse_any_event

RETENTION = 5 * 86400.0
"""Seconds an expired silence stays listed (Alertmanager's default `--data.retention`, 120h)."""
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


class SilenceIndex(TopicFollower):
    """The silences of every application. `apply` and the queries are thread-safe; `start()` runs
    the Kafka reader (or `read_to_end()` reads once, for the command line)."""

    name = "silences"

    def __init__(
        self,
        bootstrap: str,
        engine: Engine,
        *,
        topic: str | None = None,
        retention: float = RETENTION,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(bootstrap, (topic or names.INCIDENTS,), clock)
        self.engine = engine
        self.topic = self.topics[0]
        self.retention = retention
        self._silences: dict[tuple[str, str], Known] = {}
        self._pruned_at = 0.0

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

    # ---------------------------------------------------------------------- the reader's hooks
    def apply_message(self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None) -> None:
        self.apply_record(value, timestamp_ms)

    def starting(self) -> None:
        self._silences.clear()  # read again from the beginning: every event again, in order

    def housekeeping(self) -> None:
        if self._clock() - self._pruned_at > _PRUNE_EVERY:
            self._pruned_at = self._clock()
            self.prune()

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

    # --------------------------------------------------------------------------------- the command line
    def read_to_end(self, timeout: float) -> bool:
        """Blocking, for the command line: start the reader, wait until it caught up, stop it."""
        self.start()
        try:
            return self.caught_up.wait(timeout)
        finally:
            self.stop()
