"""Translate between Kafka records and the engine: bytes in, records to produce out.

Kept free of Faust so it can be tested alone; the Faust agent in `app.py` only moves bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from streamproc.engine.core import Engine, Result
from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.timeutil import from_us, to_us
from streamproc.wire.events import error_text, parse_event
from streamproc.wire.outcomes import Message, outcome_dict
from streamproc.wire.records import DeadLetter, Tick


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes
    value: bytes


@dataclass
class Processed:
    outputs: list[Output] = field(default_factory=list)
    state: IncidentState | None = None
    """The incident's state after the record (None: the incident has none)."""
    changed: bool = False
    """Whether `state` must be written to the table."""

    @property
    def wake_at(self) -> int | None:
        return self.state.wake_at if self.state is not None else None


def load_state(raw: bytes | None) -> IncidentState | None:
    return IncidentState.model_validate_json(raw) if raw else None


def dump_state(state: IncidentState) -> bytes:
    return state.model_dump_json().encode()


def dead_letter(reason: str, topic: str, partition: int | None, offset: int | None, key: bytes | None,
                value: bytes | None, now_us: int) -> Output:
    record = DeadLetter(reason=reason, source_topic=topic, partition=partition, offset=offset,
                        key=key.decode("utf-8", "replace") if key is not None else None,
                        value=(value or b"").decode("utf-8", "replace"), at=from_us(now_us))
    return Output(topics.DEADLETTER, key or b"", record.model_dump_json().encode())


def outputs_of(result: Result) -> list[Output]:
    out: list[Output] = []
    for emitted in result.emitted:
        outcome = emitted.outcome
        value = json.dumps(outcome_dict(outcome)).encode()
        if isinstance(outcome, Message):
            out.append(Output(topics.messages_topic(outcome.mode), topics.message_key(outcome.user), value))
        else:
            out.append(Output(topics.OUTCOMES, outcome.incident_id.encode(), value))
    for audit in result.audits:
        if audit.kind == "triggered":
            continue  # the trigger itself is on the incidents topic; nothing downstream needs it
        out.append(Output(topics.OUTCOMES, audit.incident_id.encode(), audit.model_dump_json().encode()))
    return out


def on_incident_record(engine: Engine, stored: bytes | None, key: bytes | None, value: bytes | None,
                       timestamp_us: int, partition: int | None = None, offset: int | None = None,
                       now_us: int | None = None) -> Processed:
    """An event from `streamproc.incidents`. `timestamp_us` (the record's) stands in for a missing `at`.
    Sends due at the event's time go out at once, but never before the wall clock `now_us`
    reaches them (an event dated in the future waits for its wake-up like any other send)."""
    try:
        event = parse_event(value or b"")
    except ValidationError as exc:
        return Processed([dead_letter(error_text(exc), topics.INCIDENTS, partition, offset, key, value,
                                      timestamp_us)])
    if key is not None and key.decode("utf-8", "replace") != event.key:
        reason = f"incident_id: record key {key.decode('utf-8', 'replace')!r} is not the incident id {event.key!r}"
        return Processed([dead_letter(reason, topics.INCIDENTS, partition, offset, key, value, timestamp_us)])
    at = to_us(event.at) if event.at is not None else timestamp_us
    state = load_state(stored)
    result = engine.handle(state, event, at)
    if result.rejected is not None:
        return Processed([dead_letter(result.rejected, topics.INCIDENTS, partition, offset, key, value,
                                      timestamp_us)])
    if result.duplicate:
        return Processed(state=state)
    advanced = engine.advance(result.state, at if now_us is None else min(at, now_us))
    result.emitted.extend(advanced.emitted)
    result.state = advanced.state
    return Processed(outputs_of(result), result.state, result.state is not state)


def on_tick_record(engine: Engine, stored: bytes | None, value: bytes | None, now_us: int) -> Processed:
    """A wake-up: emit whatever is due by now (the wall clock, never earlier than the tick's due time)."""
    state = load_state(stored)
    try:
        tick = Tick.model_validate_json(value or b"")
    except ValidationError:
        return Processed(state=state)
    if state is None:
        return Processed()
    result = engine.advance(state, max(now_us, tick.due))
    return Processed(outputs_of(result), result.state, result.state is not state)
