"""Spec §8 silences: the known silences of every application, as a pure value.

Silences are not per-incident state: one silence event holds new instances of a whole application.
`SilenceBook` is what a reader of the incidents topic knows at some event time; replay keeps one,
and the live processor (a later step) keeps one per worker, fed the same silence events in the same
order. `apply` returns a new book and never changes the one it was given, so a caller can hand the
book before a change and the book after it to `Engine.silences_changed`.

Times are integer µs since the epoch, as everywhere in the engine.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from streamproc.timeutil import to_us
from streamproc.wire.events import Silence, Unsilence, context_text


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class KnownSilence(BaseModel):
    """One known silence (spec §8), its times in µs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    silence_id: str
    application: str
    starts: int
    ends: int
    plans: tuple[str, ...] | None = None
    match: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    known_at: int = Field(description="The time of the event that made it known (µs)")
    created_by: str | None = None
    comment: str | None = None

    @classmethod
    def of(cls, event: Silence, at_us: int) -> KnownSilence:
        starts = to_us(event.starts) if event.starts is not None else at_us
        match = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in event.match.items()}
        return cls(
            silence_id=event.silence_id,
            application=event.application,
            starts=starts,
            ends=to_us(event.ends),
            plans=tuple(event.plans) if event.plans is not None else None,
            match=match,
            match_re=dict(event.match_re),
            known_at=at_us,
            created_by=event.created_by,
            comment=event.comment,
        )

    def matches(self, plan: str, context: dict[str, Any]) -> bool:
        """Whether the silence matches an instance of this application with `plan` and the trigger's
        `context` (the application is the caller's to compare)."""
        if self.plans is not None and plan not in self.plans:
            return False
        for key, values in self.match.items():
            if key not in context or context_text(context[key]) not in values:
                return False
        for key, pattern in self.match_re.items():
            if key not in context or _compiled(pattern).fullmatch(context_text(context[key])) is None:
                return False
        return True

    def covers(self, t: int) -> bool:
        return self.starts <= t < self.ends


class SilenceBook(BaseModel):
    """The known silences, by application (spec §8). A value: `apply` returns a new book."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by_app: dict[str, tuple[KnownSilence, ...]] = Field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_app)

    def apply(self, event: Silence | Unsilence, at_us: int) -> SilenceBook:
        """The book after `event` at `at_us` (the caller has checked it: `Engine.check_silence`).
        Silences that ended at or before `at_us` are dropped: they cover no time from now on.
        Returns `self` when nothing changed (an unsilence of an unknown or ended silence)."""
        app = event.application
        current = self.by_app.get(app, ())
        kept = [s for s in current if s.ends > at_us and s.silence_id != event.silence_id]
        old = next((s for s in current if s.silence_id == event.silence_id), None)
        if isinstance(event, Silence):
            kept.append(KnownSilence.of(event, at_us))
        elif old is not None:
            # `unsilence` at U: ends = max(starts, U) when that is earlier.
            ends = max(old.starts, at_us)
            if ends < old.ends:
                kept.append(old.model_copy(update={"ends": ends}))
            else:
                kept.append(old)
        kept = [s for s in kept if s.ends > at_us and s.ends > s.starts]  # covering nothing: gone
        kept.sort(key=lambda s: s.silence_id)
        new = tuple(kept)
        if new == current:
            return self
        by_app = dict(self.by_app)
        if new:
            by_app[app] = new
        else:
            del by_app[app]
        return SilenceBook(by_app=by_app)

    def matching(self, application: str, plan: str, context: dict[str, Any]) -> list[KnownSilence]:
        return [s for s in self.by_app.get(application, ()) if s.matches(plan, context)]

    def hold(self, application: str, plan: str, context: dict[str, Any], t: int) -> tuple[str, int] | None:
        """For an instance starting at `t`: (the covering silence: latest `ends`, then smallest id; E,
        when its step 1 starts), or None when no known matching silence covers `t`."""
        if application not in self.by_app:
            return None
        found = self.matching(application, plan, context)
        covering = [s for s in found if s.covers(t)]
        if not covering:
            return None
        first = min(covering, key=lambda s: (-s.ends, s.silence_id))
        return first.silence_id, clear_from(found, t)

    def clear_from(self, application: str, plan: str, context: dict[str, Any], t: int) -> int:
        """E: the first time `>= t` at which no known matching silence covers the instance."""
        if application not in self.by_app:
            return t
        return clear_from(self.matching(application, plan, context), t)

    def active(self, application: str, at_us: int) -> list[KnownSilence]:
        """The application's silences that cover `at_us` or start later (for listing them)."""
        return [s for s in self.by_app.get(application, ()) if s.ends > at_us and s.ends > s.starts]


def clear_from(silences: list[KnownSilence], t: int) -> int:
    """The first time `>= t` that none of `silences` covers."""
    e = t
    moved = True
    while moved:
        moved = False
        for s in silences:
            if s.starts <= e < s.ends:
                e = s.ends
                moved = True
    return e


NO_SILENCES = SilenceBook()
"""The book with no silences: the default wherever the engine takes one."""
