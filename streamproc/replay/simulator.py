"""Replay: run recorded events through the engine on a virtual clock (spec §5).

The same `Engine` as the live processor; the clock is simply the events' `at` values.
Incidents are independent, so each one advances only when one of its own events arrives.
"""

from __future__ import annotations

import gc
import gzip
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import IO

from pydantic import ValidationError

from streamproc.engine.core import Emitted, Engine, Result
from streamproc.engine.maintenance import NO_SILENCES, SilenceBook
from streamproc.engine.state import IncidentState
from streamproc.flood import FloodControl, apply_flood
from streamproc.flood.control import STATUS_KINDS
from streamproc.timeutil import to_us
from streamproc.wire.events import AnyEvent, Heartbeat, Silence, Unsilence, error_text, parse_any_event
from streamproc.wire.outcomes import Audit, Message, outcome_json


@dataclass
class ReplayReport:
    emitted: list[Emitted] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of each event that was not processed."""
    states: dict[str, IncidentState] = field(default_factory=dict)
    events: int = 0
    triggered: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)
    """(incident id, instance) -> (the time (us) the instance started, its plan)."""
    audits: list[tuple[int, Audit]] = field(default_factory=list)
    """(time in us, audit) of each claim, unclaim and resolve, in the order applied; kept when flood
    control (spec §7) is configured, which needs them."""
    silences: SilenceBook = NO_SILENCES
    """Spec §8: the silences known at the end of the replay."""

    def ordered(self) -> list[Emitted]:
        """Spec §4 order: at, incident_id, step, notification, repeat, user, mode."""
        # sorted() is stable: outcomes with equal keys keep the order they were emitted in.
        return sorted(self.emitted, key=_sort_key)

    def lines(self) -> list[str]:
        return [outcome_json(e.outcome) for e in self.ordered()]


_sort_key = attrgetter("sort_key")
_SILENCE_TYPES = (Silence, Unsilence)
_MAINTENANCE_TYPES = (Silence, Unsilence, Heartbeat)


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[int, AnyEvent | str]]:
    """(line number, event) for each non-blank line, or (line number, reason) when invalid."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_any_event(line)
        except ValidationError as exc:
            yield number, error_text(exc)
            continue
        if event.at is None:
            yield number, "at: Field required"
            continue
        yield number, event


def open_input(path: str) -> IO[str]:
    """`-` for stdin; a name ending in `.gz` is read through gzip."""
    if path == "-":
        return sys.stdin
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def replay(
    engine: Engine,
    lines: Iterable[str],
    until_us: int | None = None,
    on_reject: Callable[[int, str], None] | None = None,
) -> ReplayReport:
    with fewer_collections():
        return replay_events(engine, parse_lines(lines), until_us, on_reject)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Replay keeps every state and outcome to the end, so the collector's passes over them free
    nothing (the engine makes no reference cycles) yet took a fifth of the time. Collect less
    often while replaying, as `streamproc replay` and `whatif` do for their whole process."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], 50_000), max(previous[1], 20), max(previous[2], 100))
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def replay_events(
    engine: Engine,
    items: Iterable[tuple[int, AnyEvent | str]],
    until_us: int | None = None,
    on_reject: Callable[[int, str], None] | None = None,
    on_emit: Callable[[Emitted], None] | None = None,
) -> ReplayReport:
    """Replay parsed events: (position, event or the reason it is invalid). Events run in event
    time; events at the same instant in the order of their positions (line numbers for a file,
    partition then offset for a topic). With `on_emit`, outcomes go there instead of the report.

    Spec §8: the silences known so far are one `SilenceBook`, changed by silence and unsilence events
    in their turn; before a change of an application's silences, the states that watch that
    application's silences (silenced instances, waiting monitors) run up to the change under the
    old book, then see the new one (`Engine.silences_changed`). Heartbeats are events of incident
    `heartbeat-<name>`. Without silence or heartbeat events and monitors, none of this runs."""
    report = ReplayReport()
    out: Callable[[Emitted], None] = on_emit if on_emit is not None else report.emitted.append
    # Spec §7: messages flood control may change wait for the end (it needs them in time order).
    flood = FloodControl(engine.config)
    floodable: list[Emitted] = []
    emit = out
    if flood.active:

        def emit(e: Emitted) -> None:
            if isinstance(e.outcome, Message) and flood.applies(e.outcome):
                floodable.append(e)
            else:
                out(e)

    def reject(number: int, reason: str) -> None:
        report.rejected.append((number, reason))
        if on_reject:
            on_reject(number, reason)

    parsed: list[tuple[int, int, AnyEvent]] = []
    maintenance = bool(engine.config.heartbeats)
    for number, item in items:
        if isinstance(item, str):
            reject(number, item)
            continue
        assert item.at is not None
        parsed.append((to_us(item.at), number, item))
        if not maintenance and isinstance(item, _MAINTENANCE_TYPES):
            maintenance = True
    # Time order; events at the same instant keep their input order.
    parsed.sort(key=lambda row: (row[0], row[1]))
    states = report.states
    book = NO_SILENCES
    watch: dict[str, set[str]] = {}
    """Application -> keys of the states that watch its silences (`Engine.watches_silences`)."""
    watching: dict[str, tuple[str, ...]] = {}

    def take(key: str, result: Result) -> None:
        states[key] = result.state
        for audit in result.audits:
            if audit.kind == "triggered":
                report.triggered[(audit.incident_id, audit.instance)] = (to_us(audit.at), result.state.plan_name)
            elif flood.active and audit.kind in STATUS_KINDS:
                report.audits.append((to_us(audit.at), audit))
        for emitted in result.emitted:
            emit(emitted)
        if maintenance:
            apps = engine.watches_silences(result.state)
            before = watching.get(key, ())
            if apps != before:
                for app in before:
                    watch[app].discard(key)
                for app in apps:
                    watch.setdefault(app, set()).add(key)
                watching[key] = apps

    for at, number, event in parsed:
        if until_us is not None and at > until_us:
            break
        report.events += 1
        if isinstance(event, _SILENCE_TYPES):
            reason = engine.check_silence(event, at)
            if reason is not None:
                reject(number, reason)
                continue
            changed = book.apply(event, at)
            if changed is not book:
                for key in sorted(watch.get(event.application, ())):
                    take(key, engine.silences_changed(states[key], book, changed, at))
                book = changed
            continue
        key = event.key
        result = engine.handle(states.get(key), event, at, book)
        if result.rejected is not None:
            reject(number, result.rejected)
            continue
        if maintenance:
            take(key, result)
            continue
        states[key] = result.state  # `take` without the watch list, inline: once per event
        for audit in result.audits:
            if audit.kind == "triggered":
                report.triggered[(audit.incident_id, audit.instance)] = (at, result.state.plan_name)
            elif flood.active and audit.kind in STATUS_KINDS:
                report.audits.append((at, audit))
        for emitted in result.emitted:
            emit(emitted)
    for key, state in list(states.items()):
        final = engine.run_to_end(state, book) if until_us is None else engine.advance(state, until_us, silences=book)
        take(key, final)
    report.silences = book
    if flood.active:
        for emitted in apply_flood(flood, floodable, report.audits, until_us):
            out(emitted)
    return report
