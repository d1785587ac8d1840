"""Replay: run recorded events through the engine on a virtual clock (spec §5).

The same `Engine` as the live processor; the clock is simply the events' `at` values.
Incidents are independent, so each one advances only when one of its own events arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from streamproc.engine.core import Emitted, Engine
from streamproc.engine.state import IncidentState
from streamproc.timeutil import to_us
from streamproc.wire.events import Event, error_text, parse_event
from streamproc.wire.outcomes import outcome_dict


@dataclass
class ReplayReport:
    emitted: list[Emitted] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of each event that was not processed."""
    states: dict[str, IncidentState] = field(default_factory=dict)
    events: int = 0

    def ordered(self) -> list[Emitted]:
        """Spec §4 order: at, incident_id, step, notification, repeat, user, mode."""
        indexed = sorted(enumerate(self.emitted), key=lambda pair: (pair[1].sort_key, pair[0]))
        return [e for _, e in indexed]

    def lines(self) -> list[str]:
        return [json.dumps(outcome_dict(e.outcome)) for e in self.ordered()]


def parse_lines(lines: Iterable[str]) -> Iterable[tuple[int, Event | str]]:
    """(line number, event) for each non-blank line, or (line number, reason) when invalid."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except ValidationError as exc:
            yield number, error_text(exc)
            continue
        if event.at is None:
            yield number, "at: Field required"
            continue
        yield number, event


def replay(engine: Engine, lines: Iterable[str], until_us: int | None = None,
           on_reject: Callable[[int, str], None] | None = None) -> ReplayReport:
    report = ReplayReport()
    parsed: list[tuple[int, int, Event]] = []
    for number, item in parse_lines(lines):
        if isinstance(item, str):
            report.rejected.append((number, item))
            if on_reject:
                on_reject(number, item)
            continue
        assert item.at is not None
        parsed.append((to_us(item.at), number, item))
    # Time order; events at the same instant keep their input order.
    parsed.sort(key=lambda row: (row[0], row[1]))
    states = report.states
    for at, number, event in parsed:
        if until_us is not None and at > until_us:
            break
        report.events += 1
        result = engine.handle(states.get(event.key), event, at)
        if result.rejected is not None:
            report.rejected.append((number, result.rejected))
            if on_reject:
                on_reject(number, result.rejected)
            continue
        states[event.key] = result.state
        report.emitted.extend(result.emitted)
    for key, state in states.items():
        final = engine.run_to_end(state) if until_us is None else engine.advance(state, until_us)
        states[key] = final.state
        report.emitted.extend(final.emitted)
    return report
