"""Translate between Kafka records and the engine: bytes in, records to produce out.

Two stages, as in Kafka Streams' repartitioning: `on_incident_record` takes what any producer
wrote to `streamproc.incidents` and re-keys it into `streamproc.events`; `on_event_record` and
`on_tick_record` run the engine on the partition that holds the incident's state. Kept free of
Faust so it can be tested alone; the Faust agents in `app.py` only move bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from streamproc.engine.core import Engine, Result
from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.timeutil import from_us, to_us
from streamproc.wire.events import Trigger, error_text, parse_event
from streamproc.wire.outcomes import Message, outcome_dict
from streamproc.wire.records import DeadLetter, Tick


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    """Set for records keyed by incident id on internal topics (`topics.partition_for`)."""


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


def on_incident_record(engine: Engine, key: bytes | None, value: bytes | None, timestamp_us: int,
                       partition: int | None, offset: int | None, partitions: int) -> Output:
    """First stage: one record of `streamproc.incidents`, written by any client, with any key (or
    none) on any partition. A valid event is re-produced to `streamproc.events` keyed by its incident
    id (derived from `dedup_key` when needed) on the processor's partition for it, with `at` made
    explicit (the record's timestamp when the event has none); anything else is a dead letter."""
    try:
        event = parse_event(value or b"")
    except ValidationError as exc:
        return dead_letter(error_text(exc), topics.INCIDENTS, partition, offset, key, value, timestamp_us)
    if isinstance(event, Trigger):
        reason = engine.check_trigger(event)
        if reason is not None:
            return dead_letter(reason, topics.INCIDENTS, partition, offset, key, value, timestamp_us)
    if event.at is None:
        event.at = from_us(timestamp_us)
    incident = event.key.encode()
    return Output(topics.EVENTS, incident, event.model_dump_json(exclude_none=True).encode(),
                  topics.partition_for(incident, partitions))


def on_event_record(engine: Engine, stored: bytes | None, value: bytes | None, partition: int | None = None,
                    offset: int | None = None, now_us: int | None = None) -> Processed:
    """Second stage: an event from `streamproc.events` (checked and given its `at` by the first).
    Sends due at the event's time go out at once, but never before the wall clock `now_us`
    reaches them (an event dated in the future waits for its wake-up like any other send)."""
    try:
        event = parse_event(value or b"")
        if event.at is None:
            raise ValueError("at: missing (stage 1 always sets it)")
    except (ValidationError, ValueError) as exc:  # not written by the first stage
        reason = error_text(exc) if isinstance(exc, ValidationError) else str(exc)
        return Processed([dead_letter(reason, topics.EVENTS, partition, offset, None, value, now_us or 0)])
    at = to_us(event.at)
    state = load_state(stored)
    result = engine.handle(state, event, at)
    if result.rejected is not None:  # the config changed (SIGHUP) between the two stages
        return Processed([dead_letter(result.rejected, topics.EVENTS, partition, offset, event.key.encode(),
                                      value, at)])
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
