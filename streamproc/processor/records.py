"""Translate between Kafka records and the engine: bytes in, records to produce out.

Two stages, as in Kafka Streams' repartitioning: `on_incident_record` takes what any producer
wrote to `streamproc.incidents` and re-keys it into `streamproc.events`; `on_event_record` and
`on_tick_record` run the engine on the partition that holds the incident's state. Kept free of
Faust so it can be tested alone; the Faust agents in `app.py` only move bytes.

Spec §8: a heartbeat is an event of incident `heartbeat-<name>` like any other; a silence or
unsilence is copied to every events partition, each of which keeps its own book of the known
silences (`silences.py`, stored in the escalations table under `book_key(partition)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import ValidationError

from streamproc.engine.core import Engine, Result
from streamproc.engine.maintenance import NO_SILENCES, SilenceBook
from streamproc.engine.state import IncidentState
from streamproc.flood import FloodControl, UserFloodState
from streamproc.kafka import topics
from streamproc.timeutil import from_us, to_us
from streamproc.wire.events import Heartbeat, Silence, Trigger, Unsilence, error_text, parse_any_event
from streamproc.wire.outcomes import Audit, Dropped, Message, outcome_json
from streamproc.wire.records import FLOOD_ADAPTER, DeadLetter, FloodMessage, FloodStatus, FloodTick, Tick
from streamproc.wire.status import context_summary

T = TypeVar("T")

DeadLetterKind = Literal[
    "invalid-event",
    "unknown-application",
    "unknown-plan",
    "dynamic-targets",
    "unknown-monitor",
    "wrong-application",
    "not-from-stage-1",
    "rejected",
]
"""Bounded reasons of dead letters, for metrics (the record itself carries the full text)."""


@dataclass(frozen=True)
class Tally:
    """What an output record counts as in the worker's metrics (`metrics.py`)."""

    metric: Literal["event", "dead-letter", "outcome"]
    label: str
    """The event type, the dead letter's reason kind, or the outcome kind."""
    mode: str = ""
    """Outcomes: the message's mode, `drop` for dropped, empty otherwise."""
    at_us: int = 0
    """Outcomes: the scheduled time of the send."""


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    """Set for records keyed by incident id on internal topics (`topics.partition_for`)."""
    kind: str = ""
    """For logs: the outcome's or audit's kind (message, undeliverable, claimed, ...)."""
    message_id: str | None = None
    """For logs: a message's id."""
    tally: Tally | None = None
    """For metrics: what the record counts as."""
    headers: tuple[tuple[str, bytes], ...] = ()
    """Headers of its own, besides the correlation id (a silence's copies are marked)."""


SILENCE_HEADER = "streamproc-silence"
"""Marks stage 1's copies of a silence or unsilence event on the events topic (one per partition)."""
BOOK_PREFIX = b"\xffsilences:"
"""Escalations-table keys of the partitions' silence books. No incident id encodes to a byte 0xFF
(UTF-8 never does), so a book key is never an incident's."""


def has_header(headers: object, name: str) -> bool:
    """Whether a record's headers (a sequence of (name, value)) hold `name`."""
    return bool(headers) and any(n == name for n, _ in headers)  # type: ignore[attr-defined]


def book_key(partition: int) -> bytes:
    """The table key of an events partition's silence book (unique per partition: a table lookup
    that misses the partition's own store falls back to the others)."""
    return BOOK_PREFIX + str(partition).encode()


def book_partition(key: bytes) -> int | None:
    """The partition of a book key; None for an incident's key."""
    if not key.startswith(BOOK_PREFIX):
        return None
    return int(key[len(BOOK_PREFIX) :])


def rejection_kind(reason: str) -> DeadLetterKind:
    """The kind of an `Engine.check_trigger`, `check_heartbeat` or `check_silence` reason (its own
    texts, not validation errors)."""
    if reason.startswith("application: monitor"):
        return "wrong-application"
    if reason.startswith("heartbeat:"):
        return "unknown-monitor"
    if reason.startswith("ends:"):
        return "invalid-event"
    if reason.startswith("application:"):
        return "unknown-application"
    if reason.startswith("plan:"):
        return "unknown-plan"
    if reason.startswith("dynamic_targets:"):
        return "dynamic-targets"
    return "rejected"


@dataclass
class Processed:
    outputs: list[Output] = field(default_factory=list)
    state: IncidentState | None = None
    """The incident's state after the record (None: the incident has none)."""
    changed: bool = False
    """Whether `state` must be written to the table."""
    expiries: int = 0
    """Heartbeat monitor expiries (spec §8) this record ran, for metrics."""

    @property
    def wake_at(self) -> int | None:
        return self.state.wake_at if self.state is not None else None

    @property
    def correlation_id(self) -> str | None:
        """The id of the record that opened the incident's instance, if known."""
        return self.state.correlation_id if self.state is not None else None


def load_state(raw: bytes | None) -> IncidentState | None:
    return IncidentState.model_validate_json(raw) if raw else None


def owned_states(
    items: Iterable[tuple[bytes | None, bytes | None]], partitions: int, actives: set[int]
) -> Iterator[tuple[bytes, int, IncidentState]]:
    """(key, partition, state) of the escalations table's entries on `actives`."""
    return owned_entries(items, partitions, actives, load_state)


def owned_entries(
    items: Iterable[tuple[bytes | None, bytes | None]],
    partitions: int,
    actives: set[int],
    load: Callable[[bytes], T | None],
) -> Iterator[tuple[bytes, int, T]]:
    """(key, partition, loaded value) of a table's entries on `actives`: the table's local store may
    also hold standby partitions, whose keys belong to another worker. The partitions' silence books
    (`book_key`) are not entries."""
    for key, raw in items:
        if key is None or raw is None or key.startswith(BOOK_PREFIX):
            continue
        partition = topics.partition_for(key, partitions)
        if partition not in actives:
            continue
        value = load(raw)
        if value is not None:
            yield key, partition, value


def dump_state(state: IncidentState) -> bytes:
    return state.model_dump_json().encode()


def dead_letter(
    reason: str,
    kind: DeadLetterKind,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    value: bytes | None,
    now_us: int,
) -> Output:
    record = DeadLetter(
        reason=reason,
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", "replace") if key is not None else None,
        value=(value or b"").decode("utf-8", "replace"),
        at=from_us(now_us),
    )
    return Output(topics.DEADLETTER, key or b"", record.model_dump_json().encode(), tally=Tally("dead-letter", kind))


def outputs_of(
    result: Result, flood: FloodControl | None = None, partitions: int = topics.DEFAULT_PARTITIONS
) -> list[Output]:
    """The records of an engine result. With flood control (spec §7) configured, a message it may
    change goes to `streamproc.flood`, keyed by its user, instead of its mode's topic, and the
    instance's claims and resolves follow to the users it sent such messages of batching plans
    (`IncidentState.flood_users`, updated here on `result.state`)."""
    out: list[Output] = []
    state = result.state
    if result.audits and any(a.kind == "triggered" for a in result.audits):
        # A new instance: what the status topic says of it starts over.
        if flood is not None:
            state.flood_users = []
        state.summary, state.last_paged, state.last_paged_at = context_summary(state.context), [], None
        state.resolved_at = state.status_expires = None
    for emitted in result.emitted:
        outcome = emitted.outcome
        value = outcome_json(outcome).encode()
        if isinstance(outcome, Message):
            tally = Tally("outcome", outcome.kind, outcome.mode, to_us(outcome.at))
            if state.last_paged_at is None or tally.at_us > state.last_paged_at:
                state.last_paged, state.last_paged_at = [outcome.user], tally.at_us
            elif tally.at_us == state.last_paged_at and outcome.user not in state.last_paged:
                state.last_paged = [*state.last_paged, outcome.user]
            if flood is not None and flood.applies(outcome):
                user_key = outcome.user.encode()
                out.append(
                    Output(
                        topics.FLOOD,
                        user_key,
                        FloodMessage(message=outcome).model_dump_json().encode(),
                        topics.partition_for(user_key, partitions),
                        kind="flood",
                        message_id=outcome.message_id,
                        tally=tally,
                    )
                )
                if outcome.plan in flood.batching and outcome.user not in state.flood_users:
                    state.flood_users = [*state.flood_users, outcome.user]
                continue
            out.append(
                Output(
                    topics.messages_topic(outcome.mode),
                    topics.message_key(outcome.user),
                    value,
                    kind=outcome.kind,
                    message_id=outcome.message_id,
                    tally=tally,
                )
            )
        else:
            tally = Tally("outcome", outcome.kind, "drop" if isinstance(outcome, Dropped) else "", to_us(outcome.at))
            out.append(Output(topics.OUTCOMES, outcome.incident_id.encode(), value, kind=outcome.kind, tally=tally))
    for audit in result.audits:
        if audit.kind == "triggered":
            continue  # the trigger itself is on the incidents topic; nothing downstream needs it
        if audit.kind == "resolved":
            state.resolved_at = to_us(audit.at)
        out.append(
            Output(topics.OUTCOMES, audit.incident_id.encode(), audit.model_dump_json().encode(), kind=audit.kind)
        )
        if flood is not None and audit.kind in ("claimed", "unclaimed", "resolved"):
            for user in state.flood_users:
                status = FloodStatus(
                    user=user, incident_id=audit.incident_id, instance=audit.instance, status=audit.kind, at=audit.at
                )  # type: ignore[arg-type]
                user_key = user.encode()
                out.append(
                    Output(
                        topics.FLOOD,
                        user_key,
                        status.model_dump_json().encode(),
                        topics.partition_for(user_key, partitions),
                        kind="flood-" + audit.kind,
                    )
                )
            if audit.kind == "resolved":
                state.flood_users = []
    return out


def on_incident_record(
    engine: Engine,
    key: bytes | None,
    value: bytes | None,
    timestamp_us: int,
    partition: int | None,
    offset: int | None,
    partitions: int,
) -> list[Output]:
    """First stage: one record of `streamproc.incidents`, written by any client, with any key (or
    none) on any partition. A valid event is re-produced to `streamproc.events` keyed by its incident
    id (derived from `dedup_key` when needed) on the processor's partition for it, with `at` made
    explicit (the record's timestamp when the event has none); anything else is a dead letter.

    Spec §8: a heartbeat is keyed by its incident `heartbeat-<name>`. A silence or unsilence holds
    instances on every partition, so it is copied to each events partition (`SILENCE_HEADER`, keyed
    by `silence:<application>:<id>`), behind the events read before it on its source partition;
    stage 2 keeps a book of them per partition (`silences.py`)."""
    try:
        event = parse_any_event(value or b"")
    except ValidationError as exc:
        return [
            dead_letter(error_text(exc), "invalid-event", topics.INCIDENTS, partition, offset, key, value, timestamp_us)
        ]
    reason: str | None = None
    if isinstance(event, Trigger):
        reason = engine.check_trigger(event)
    elif isinstance(event, Heartbeat):
        reason = engine.check_heartbeat(event)
    elif isinstance(event, Silence | Unsilence):
        reason = engine.check_silence(event, timestamp_us)
    if reason is not None:
        return [
            dead_letter(reason, rejection_kind(reason), topics.INCIDENTS, partition, offset, key, value, timestamp_us)
        ]
    if event.at is None:
        event.at = from_us(timestamp_us)
    incident = event.key.encode()
    rekeyed = event.model_dump_json(exclude_none=True).encode()
    tally = Tally("event", event.type)
    if isinstance(event, Silence | Unsilence):
        # Counted once; every copy says which partition it is for.
        return [
            Output(
                topics.EVENTS,
                incident,
                rekeyed,
                p,
                tally=tally if p == 0 else None,
                headers=((SILENCE_HEADER, str(p).encode()),),
            )
            for p in range(partitions)
        ]
    return [Output(topics.EVENTS, incident, rekeyed, topics.partition_for(incident, partitions), tally=tally)]


def on_event_record(
    engine: Engine,
    stored: bytes | None,
    value: bytes | None,
    partition: int | None = None,
    offset: int | None = None,
    now_us: int | None = None,
    correlation_id: str | None = None,
    silences: SilenceBook = NO_SILENCES,
) -> Processed:
    """`on_event` for a stored table value."""
    return on_event(engine, load_state(stored), value, partition, offset, now_us, correlation_id, silences=silences)


def expiries(audits: list[Audit], before_us: int | None = None) -> int:
    """Monitor expiries (spec §8) among a result's audits: an expiry is a trigger (or, with an open
    instance, an absorbed one) that no event made. `before_us`: the time of the event the result
    applied (its own audit is at that time; expiries it ran first are earlier)."""
    return sum(
        1 for a in audits if a.kind in ("triggered", "absorbed") and (before_us is None or to_us(a.at) < before_us)
    )


def on_event(
    engine: Engine,
    state: IncidentState | None,
    value: bytes | None,
    partition: int | None = None,
    offset: int | None = None,
    now_us: int | None = None,
    correlation_id: str | None = None,
    flood: FloodControl | None = None,
    partitions: int = topics.DEFAULT_PARTITIONS,
    silences: SilenceBook = NO_SILENCES,
) -> Processed:
    """Second stage: an event from `streamproc.events` (checked and given its `at` by the first).
    Sends due at the event's time go out at once, but never before the wall clock `now_us`
    reaches them (an event dated in the future waits for its wake-up like any other send).
    An event that opens an instance gives it its `correlation_id` (the record's header).
    `silences`: the book of the record's partition (spec §8); a heartbeat is applied to the state
    of its monitor's incident like any event."""
    try:
        event = parse_any_event(value or b"")
        if isinstance(event, Silence | Unsilence):
            raise ValueError(f"type: a {event.type} without stage 1's {SILENCE_HEADER} header")
        if event.at is None:
            raise ValueError("at: missing (stage 1 always sets it)")
    except (ValidationError, ValueError) as exc:  # not written by the first stage
        reason = error_text(exc) if isinstance(exc, ValidationError) else str(exc)
        return Processed(
            [dead_letter(reason, "not-from-stage-1", topics.EVENTS, partition, offset, None, value, now_us or 0)],
            state=state,
        )
    at = to_us(event.at)
    result = engine.handle(state, event, at, silences)
    if result.rejected is not None:  # the config changed (SIGHUP) between the two stages
        return Processed(
            [
                dead_letter(
                    result.rejected,
                    rejection_kind(result.rejected),
                    topics.EVENTS,
                    partition,
                    offset,
                    event.key.encode(),
                    value,
                    at,
                )
            ],
            state=state,
        )
    if result.duplicate:
        return Processed(state=state)
    expired = expiries(result.audits, at) if result.audits else 0
    advanced = engine.advance(result.state, at if now_us is None else min(at, now_us), silences=silences)
    result.emitted.extend(advanced.emitted)
    if advanced.audits:  # a monitor's expiry at the event's own time (after the event, spec §8)
        result.audits.extend(advanced.audits)
        expired += expiries(advanced.audits)
    result.state = advanced.state
    opened = state is None or result.state.instance != state.instance
    if correlation_id is not None and result.state is not state and (opened or result.state.correlation_id is None):
        result.state.correlation_id = correlation_id  # a new copy: the stored state is never touched
    return Processed(outputs_of(result, flood, partitions), result.state, result.state is not state, expired)


def on_tick_record(
    engine: Engine, stored: bytes | None, value: bytes | None, now_us: int, silences: SilenceBook = NO_SILENCES
) -> Processed:
    """`on_tick` for a stored table value."""
    return on_tick(engine, load_state(stored), value, now_us, silences=silences)


def on_tick(
    engine: Engine,
    state: IncidentState | None,
    value: bytes | None,
    now_us: int,
    flood: FloodControl | None = None,
    partitions: int = topics.DEFAULT_PARTITIONS,
    silences: SilenceBook = NO_SILENCES,
) -> Processed:
    """A wake-up: emit whatever is due by now (the wall clock, never earlier than the tick's due time).
    `silences`: the book of the tick's partition (a silenced instance starts, a monitor expires)."""
    try:
        tick = Tick.model_validate_json(value or b"")
    except ValidationError:
        return Processed(state=state)
    return on_wake(engine, state, tick.due, now_us, flood, partitions, silences)


def on_wake(
    engine: Engine,
    state: IncidentState | None,
    due: int,
    now_us: int,
    flood: FloodControl | None = None,
    partitions: int = topics.DEFAULT_PARTITIONS,
    silences: SilenceBook = NO_SILENCES,
) -> Processed:
    """A wake-up due at `due`, applied at the wall clock `now_us` (never earlier than `due`): the
    worker's own wake-ups of the partitions it owns (`escalate.py`), and the tick records of
    `streamproc.ticks` (`on_tick`)."""
    if state is None:
        return Processed()
    result = engine.advance(state, max(now_us, due), silences=silences)
    return Processed(
        outputs_of(result, flood, partitions),
        result.state,
        result.state is not state,
        expiries(result.audits) if result.audits else 0,
    )


@dataclass
class FloodProcessed:
    outputs: list[Output] = field(default_factory=list)
    state: UserFloodState | None = None
    """The user's flood-control state after the record (None: the user has none)."""
    changed: bool = False

    @property
    def wake_at(self) -> int | None:
        return self.state.wake_at if self.state is not None else None


def load_flood_state(raw: bytes | None) -> UserFloodState | None:
    return UserFloodState.model_validate_json(raw) if raw else None


def on_flood_record(
    control: FloodControl,
    state: UserFloodState | None,
    value: bytes | None,
    now_us: int,
    partition: int | None = None,
    offset: int | None = None,
) -> FloodProcessed:
    """The flood-control stage (spec §7), keyed by user: a message from the escalation stage, a
    claim or resolve of an instance the user was sent messages of, or a wake-up for a batch.
    Its messages go to their mode's topic and its `batched` (and `undeliverable`) outcomes to
    `streamproc.outcomes`, as the escalation stage's do."""
    try:
        record = FLOOD_ADAPTER.validate_json(value or b"")
    except ValidationError as exc:  # not written by the escalation stage
        return FloodProcessed(
            [dead_letter(error_text(exc), "not-from-stage-1", topics.FLOOD, partition, offset, None, value, now_us)],
            state=state,
        )
    if isinstance(record, FloodMessage):
        result = control.on_message(state, record.message)
    elif isinstance(record, FloodStatus):
        result = control.on_status(
            state, record.incident_id, record.instance, record.status, to_us(record.at), user=record.user
        )
    else:
        assert isinstance(record, FloodTick)
        if state is None:
            return FloodProcessed()
        result = control.advance(state, max(now_us, record.due))
    out: list[Output] = []
    for emitted in result.emitted:
        outcome = emitted.outcome
        value_out = outcome_json(outcome).encode()
        if isinstance(outcome, Message):
            out.append(
                Output(
                    topics.messages_topic(outcome.mode),
                    topics.message_key(outcome.user),
                    value_out,
                    kind=outcome.kind,
                    message_id=outcome.message_id,
                )
            )
        else:
            out.append(Output(topics.OUTCOMES, outcome.incident_id.encode(), value_out, kind=outcome.kind))
    return FloodProcessed(out, result.state, result.state is not state)
