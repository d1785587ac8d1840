"""Spec §8 in the live processor's record stages, without Kafka: stage 1 copies a silence to every
events partition and keys a heartbeat by its monitor's incident; stage 2 keeps a silence book per
partition (`processor/silences.py`) in the escalations table, moves the silenced instances of that
partition when it changes, and applies heartbeats and monitor expiries with the incident's state.

`Pipeline` below does what `app.py`'s agents do with the same functions, on a virtual clock, with a
table of bytes and crashes that re-read what was not committed: it gives replay's outcomes."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState
from streamproc.kafka import topics
from streamproc.processor import metrics
from streamproc.processor.records import (
    BOOK_PREFIX,
    SILENCE_HEADER,
    Output,
    book_key,
    book_partition,
    dump_state,
    load_state,
    on_event,
    on_event_record,
    on_incident_record,
    on_tick,
    owned_states,
)
from streamproc.processor.silences import (
    EMPTY,
    PartitionSilences,
    SilenceIndex,
    dump_book,
    load_book,
    on_silence_copy,
    on_silence_record,
)
from streamproc.replay import replay
from streamproc.timeutil import format_us, parse_time, to_us
from streamproc.wire.outcomes import OUTCOME_ADAPTER
from streamproc.wire.records import Tick
from tests.processor.scenario import MAINTENANCE_CONFIG

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))
S = 1_000_000
P = 4

SILENCE = {
    "type": "silence",
    "at": "2026-03-01T09:50:00Z",
    "silence_id": "db-upgrade",
    "application": "app",
    "starts": "2026-03-01T10:00:00Z",
    "ends": "2026-03-01T12:00:00Z",
    "plans": ["quick"],
    "match": {"host": ["db01", "db02"]},
    "match_re": {"alertname": "Disk.*"},
}
UNSILENCE = {"type": "unsilence", "at": "2026-03-01T11:10:00Z", "silence_id": "db-upgrade", "application": "app"}
HEARTBEAT = {"type": "heartbeat", "at": "2026-03-01T02:00:00Z", "heartbeat": "backup", "application": "app"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.yaml"
    path.write_text(MAINTENANCE_CONFIG)
    return Engine(load_config(path))


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def at(offset_s: float) -> str:
    return format_us(T0 + round(offset_s * S))


# ---- stage 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", [SILENCE, UNSILENCE], ids=["silence", "unsilence"])
@pytest.mark.parametrize("key", [b"db-upgrade", None])
def test_a_silence_is_copied_to_every_events_partition_counted_once(
    engine: Engine, event: dict[str, Any], key: bytes | None
) -> None:
    value = encode(event)
    outs = on_incident_record(engine, key, value, T0, 4, 11, 12)
    assert [o.partition for o in outs] == list(range(12))
    assert {(o.topic, o.key) for o in outs} == {(topics.EVENTS, b"silence:app:db-upgrade")}
    assert {o.value for o in outs} == {outs[0].value} and json.loads(outs[0].value) == event
    assert [o.headers for o in outs] == [((SILENCE_HEADER, str(p).encode()),) for p in range(12)]
    assert [o.tally for o in outs if o.tally is not None] == [outs[0].tally]
    assert outs[0].tally is not None and (outs[0].tally.metric, outs[0].tally.label) == ("event", event["type"])


def test_a_silence_without_at_takes_the_record_time_in_every_copy(engine: Engine) -> None:
    outs = on_incident_record(engine, None, encode({**SILENCE, "at": None}), T0 - 60 * S, 0, 0, 3)
    assert len(outs) == 3 and {json.loads(o.value)["at"] for o in outs} == {"2026-03-01T09:59:00Z"}


@pytest.mark.parametrize("event", [HEARTBEAT, {**HEARTBEAT, "at": None}], ids=["with-at", "without-at"])
def test_a_heartbeat_is_keyed_and_placed_by_its_monitors_incident(engine: Engine, event: dict[str, Any]) -> None:
    [out] = on_incident_record(engine, b"whatever", encode(event), T0, 2, 3, 12)
    assert (out.topic, out.key, out.partition) == (
        topics.EVENTS,
        b"heartbeat-backup",
        topics.partition_for(b"heartbeat-backup", 12),
    )
    assert json.loads(out.value)["at"] == (event["at"] or "2026-03-01T10:00:00Z")
    assert out.tally is not None and out.tally.label == "heartbeat" and not out.headers


@pytest.mark.parametrize(
    ("event", "reason", "kind"),
    [
        ({**SILENCE, "application": "nope"}, "application: unknown application", "unknown-application"),
        ({**UNSILENCE, "application": "nope"}, "application: unknown application", "unknown-application"),
        ({**HEARTBEAT, "heartbeat": "nope"}, "heartbeat: unknown monitor", "unknown-monitor"),
        ({**HEARTBEAT, "application": "other"}, "application: monitor 'backup' belongs", "wrong-application"),
        ({**SILENCE, "ends": "2026-03-01T09:00:00Z"}, "ends:", "invalid-event"),
        ({**SILENCE, "ends": "2026-04-01T10:00:00Z"}, "ends:", "invalid-event"),
        ({**SILENCE, "starts": None, "at": None, "ends": "2026-03-01T09:00:00Z"}, "ends:", "invalid-event"),
        ({**SILENCE, "match_re": {"alertname": "(a)\\1"}}, "match_re.alertname:", "invalid-event"),
        ({**SILENCE, "silence_id": None}, "silence_id:", "invalid-event"),
        ({**HEARTBEAT, "heartbeat": None}, "heartbeat:", "invalid-event"),
    ],
)
def test_bad_maintenance_events_are_one_dead_letter_naming_the_field(
    engine: Engine, event: dict[str, Any], reason: str, kind: str
) -> None:
    value = encode(event)
    [out] = on_incident_record(engine, None, value, T0, 4, 11, 12)
    assert out.topic == topics.DEADLETTER
    letter = json.loads(out.value)
    assert letter["reason"].startswith(reason), letter["reason"]
    assert (letter["source_topic"], letter["partition"], letter["offset"], letter["value"]) == (
        topics.INCIDENTS,
        4,
        11,
        value.decode(),
    )
    assert out.tally is not None and (out.tally.metric, out.tally.label) == ("dead-letter", kind)


# ---- stage 2: the book ----------------------------------------------------------------------------


def test_the_book_changes_once_and_a_copy_read_again_is_skipped(engine: Engine) -> None:
    first = on_silence_record(engine, EMPTY, encode(SILENCE), 3, 10)
    assert first.changed and first.application == "app" and first.at_us == to_us(parse_time(SILENCE["at"]))
    assert [s.silence_id for s in first.after.book.by_app["app"]] == ["db-upgrade"] and first.after.offset == 10
    # the same copy read again after a crash (offset at or before the book's): nothing, not even E moved
    again = on_silence_record(engine, first.after, encode(SILENCE), 3, 10)
    assert not again.changed and again.after is first.after
    # the same silence event produced twice by stage 1 (a later offset): the same book
    twice = on_silence_record(engine, first.after, encode(SILENCE), 3, 11)
    assert not twice.changed
    # the book survives the table's JSON
    assert load_book(dump_book(first.after)) == first.after and load_book(None) == EMPTY
    ended = on_silence_record(engine, first.after, encode(UNSILENCE), 3, 12)
    assert ended.changed and ended.after.book.by_app == {} and ended.after.offset == 12


def test_a_copy_the_config_no_longer_allows_is_one_dead_letter_from_partition_0(engine: Engine) -> None:
    value = encode({**SILENCE, "application": "gone"})
    letters = [on_silence_record(engine, EMPTY, value, p, 5).outputs for p in range(P)]
    assert [len(x) for x in letters] == [1, 0, 0, 0]
    assert json.loads(letters[0][0].value)["reason"].startswith("application: unknown application")
    assert not on_silence_record(engine, EMPTY, value, 0, 5).changed


def test_book_keys_are_never_incident_states(engine: Engine) -> None:
    state = on_event(
        engine,
        None,
        encode(
            {"type": "trigger", "at": at(0), "incident_id": "i", "application": "app", "plan": "once", "context": {}}
        ),
        now_us=T0,
    ).state
    assert state is not None
    items = [(book_key(2), dump_book(EMPTY)), (b"i", dump_state(state)), (None, None)]
    partition = topics.partition_for(b"i", P)
    assert [(k, p) for k, p, _ in owned_states(items, P, set(range(P)))] == [(b"i", partition)]
    assert book_partition(book_key(2)) == 2 and book_partition(b"i") is None
    assert book_key(11).startswith(BOOK_PREFIX) and book_key(1) != book_key(11)
    index = SilenceIndex()
    assert [index.load(k, v, {2}) for k, v in items if k is not None] == [True, False]
    assert index.entry(2) == EMPTY and 2 in index.books
    other = SilenceIndex()
    other.load(book_key(2), dump_book(EMPTY), {1})  # a standby partition's book: not this worker's
    assert other.books == {}


def test_a_silence_change_moves_the_silenced_instances_of_the_partition_only(engine: Engine) -> None:
    index = SilenceIndex()
    book = on_silence_record(engine, EMPTY, encode(silence_event("s1", -60, 0, 600)), 0, 0)
    states: dict[bytes, IncidentState] = {}
    for name in ("a", "b", "c"):
        value = encode(
            {
                "type": "trigger",
                "at": at(10),
                "incident_id": name,
                "application": "app",
                "plan": "once",
                "context": {"summary": name},
            }
        )
        processed = on_event(engine, None, value, now_us=T0 + 10 * S, silences=book.after.book)
        assert processed.state is not None and processed.state.status == "silenced"
        assert processed.state.silenced_until == T0 + 600 * S
        states[name.encode()] = processed.state
        index.track(engine, name.encode(), 0 if name != "c" else 1, processed.state)
    index.books[0] = index.books[1] = book.after
    assert index.watchers(0, "app") == [b"a", b"b"] and index.watchers(1, "app") == [b"c"]
    change, moved = on_silence_copy(engine, index, encode(unsilence_event("s1", 100)), 0, 1, states.get)
    assert change.changed and [k for k, _ in moved] == [b"a", b"b"]
    for _, processed in moved:
        assert processed.state is not None and processed.changed and processed.outputs == []
        assert processed.state.silenced_until == T0 + 100 * S and processed.wake_at == T0 + 100 * S
    assert index.entry(0).offset == 1 and index.entry(1) is book.after  # partition 1 reads its own copy
    # started: no longer watching; a tick at E sends
    tick = Tick(incident_id="a", due=T0 + 100 * S, version=0).model_dump_json().encode()
    started = on_tick(engine, moved[0][1].state, tick, T0 + 100 * S, silences=index.book(0))
    assert [o.kind for o in started.outputs] == ["message", "exhausted"]
    index.track(engine, b"a", 0, started.state)
    assert index.watchers(0, "app") == [b"b"]
    index.drop_partitions({0})
    assert index.watchers(0, "app") == [] and 0 not in index.books and index.watchers(1, "app") == [b"c"]


def test_heartbeats_expiries_and_recoveries_on_the_monitors_state(engine: Engine) -> None:
    beat = on_event_record(engine, None, encode({**HEARTBEAT, "at": at(0)}), now_us=T0)
    state = beat.state
    assert state is not None and state.monitor_due == T0 + 10 * S and state.wake_at == T0 + 10 * S
    assert beat.outputs == [] and beat.changed and beat.expiries == 0
    index = SilenceIndex()
    index.track(engine, b"heartbeat-backup", 1, state)
    assert index.monitors == {b"heartbeat-backup": 1} and index.watchers(1, "app") == [b"heartbeat-backup"]
    tick = Tick(incident_id="heartbeat-backup", due=T0 + 10 * S, version=0).model_dump_json().encode()
    before = metrics.MONITOR_EXPIRIES._value.get()
    expired = on_tick(engine, state, tick, T0 + 10 * S)
    assert expired.expiries == 1 and expired.state is not None and expired.state.status == "exhausted"
    [message] = [o for o in expired.outputs if o.kind == "message"]
    assert json.loads(message.value)["subject"] == "backup is late"
    metrics.expired(expired.expiries)
    assert metrics.MONITOR_EXPIRIES._value.get() == before + 1
    index.track(engine, b"heartbeat-backup", 1, expired.state)
    assert index.monitors == {} and index.watchers(1, "app") == []
    # the next heartbeat resolves what the expiry opened (a normal resolve audit) and waits again
    back = on_event(engine, expired.state, encode({**HEARTBEAT, "at": at(12)}), now_us=T0 + 12 * S)
    assert [o.kind for o in back.outputs] == ["resolved"] and back.expiries == 0
    assert back.state is not None and back.state.status == "resolved" and back.state.monitor_due == T0 + 22 * S
    # an event dated after X that arrives before the tick: the expiry first, counted
    late = on_event(engine, state, encode({**HEARTBEAT, "at": at(15)}), now_us=T0 + 15 * S)
    assert late.expiries == 1 and [o.kind for o in late.outputs] == ["message", "exhausted", "resolved"]


def test_the_silenced_outcome_is_counted_but_is_not_a_send(engine: Engine) -> None:
    book = on_silence_record(engine, EMPTY, encode(silence_event("s1", -60, 0, 600)), 0, 0).after.book
    processed = on_event(
        engine,
        None,
        encode(
            {"type": "trigger", "at": at(10), "incident_id": "m", "application": "app", "plan": "once", "context": {}}
        ),
        now_us=T0 + 10 * S,
        silences=book,
    )
    [out] = processed.outputs
    assert out.kind == "silenced" and out.tally is not None and out.tally.label == "silenced"
    sends = metrics.SEND_LATENESS._sum.get()
    metrics.count([out], T0 + 99 * S)
    assert metrics.SEND_LATENESS._sum.get() == sends


def silence_event(silence_id: str, at_s: float, starts_s: float, ends_s: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": "silence",
        "at": at(at_s),
        "silence_id": silence_id,
        "application": "app",
        "starts": at(starts_s),
        "ends": at(ends_s),
        **fields,
    }


def unsilence_event(silence_id: str, at_s: float) -> dict[str, Any]:
    return {"type": "unsilence", "at": at(at_s), "silence_id": silence_id, "application": "app"}


# ---- both stages, as the agents run them ----------------------------------------------------------


class Pipeline:
    """`app.py`'s two agents and its ticker on a virtual clock, with the same record functions, a
    table of bytes per partition, offsets committed every `commit_every` records, and crashes that
    lose everything in memory and read again what was not committed."""

    def __init__(self, engine: Engine, partitions: int = P, commit_every: int = 3) -> None:
        self.engine, self.partitions, self.commit_every = engine, partitions, commit_every
        self.log: dict[int, list[tuple[bytes, bytes, bool]]] = defaultdict(list)
        """events partition -> (key, value, silence copy) records."""
        self.read: dict[int, int] = defaultdict(int)
        self.committed: dict[int, int] = defaultdict(int)
        self.table: dict[bytes, bytes] = {}
        self.index = SilenceIndex()
        self.out: list[Output] = []

    def produce(self, event: dict[str, Any]) -> None:
        at_us = to_us(parse_time(event["at"]))
        for output in on_incident_record(self.engine, None, encode(event), at_us, 0, 0, self.partitions):
            if output.topic == topics.EVENTS:
                assert output.partition is not None and output.key is not None
                self.log[output.partition].append((output.key, output.value, bool(output.headers)))
            else:
                self.out.append(output)

    def state(self, key: bytes) -> IncidentState | None:
        return load_state(self.table.get(key))

    def consume(self, now_us: int) -> None:
        """Stage 2 reads everything produced so far, partition by partition."""
        for partition in range(self.partitions):
            while self.read[partition] < len(self.log[partition]):
                offset = self.read[partition]
                key, value, copy = self.log[partition][offset]
                if copy:
                    change, moved = on_silence_copy(self.engine, self.index, value, partition, offset, self.state)
                    self.out += change.outputs
                    for watcher, processed in moved:
                        self.write(watcher, partition, processed.outputs, processed.state, processed.changed)
                    if change.changed:  # after the states, as the agent does
                        self.table[book_key(partition)] = dump_book(self.index.entry(partition))
                else:
                    processed = on_event(
                        self.engine,
                        self.state(key),
                        value,
                        partition,
                        offset,
                        now_us,
                        silences=self.index.book(partition),
                    )
                    self.write(key, partition, processed.outputs, processed.state, processed.changed)
                self.read[partition] = offset + 1
                if self.read[partition] - self.committed[partition] >= self.commit_every:
                    self.committed[partition] = self.read[partition]

    def write(
        self, key: bytes, partition: int, outputs: list[Output], state: IncidentState | None, changed: bool
    ) -> None:
        self.out += outputs  # acknowledged first
        if changed and state is not None:
            self.table[key] = dump_state(state)
        self.index.track(self.engine, key, partition, state)

    def wakes(self) -> list[tuple[int, bytes]]:
        return sorted(
            (s.wake_at, k)
            for k, _, s in owned_states(self.table.items(), self.partitions, set(range(self.partitions)))
            if s.wake_at is not None
        )

    def tick(self, due: int, key: bytes) -> None:
        partition = topics.partition_for(key, self.partitions)
        value = Tick(incident_id=key.decode(), due=due, version=0).model_dump_json().encode()
        processed = on_tick(self.engine, self.state(key), value, due, silences=self.index.book(partition))
        self.write(key, partition, processed.outputs, processed.state, processed.changed)

    def run_until(self, until_us: int) -> None:
        """Ticks due strictly before `until_us` (events at an instant go first)."""
        while (due := self.wakes()) and due[0][0] < until_us:
            self.tick(*due[0])

    def crash(self, now_us: int) -> None:
        """SIGKILL and restart: the index is rebuilt from the table, uncommitted records read again."""
        self.index = SilenceIndex()
        actives = set(range(self.partitions))
        for key, raw in self.table.items():
            self.index.load(key, raw, actives)
        for key, partition, state in owned_states(self.table.items(), self.partitions, actives):
            self.index.track(self.engine, key, partition, state)
        for partition in range(self.partitions):
            self.read[partition] = self.committed[partition]
        self.consume(now_us)

    def outcomes(self) -> set[str]:
        kinds = {"triggered", "claimed", "unclaimed", "resolved", "absorbed"}
        got = set()
        for output in self.out:
            data = json.loads(output.value)
            if output.topic != topics.DEADLETTER and data.get("kind") not in kinds:
                got.add(
                    json.dumps(
                        OUTCOME_ADAPTER.validate_python(data).model_dump(mode="json", exclude_none=True), sort_keys=True
                    )
                )
        return got


def run_live(
    engine: Engine,
    events: list[dict[str, Any]],
    crashes: set[int] = frozenset(),  # type: ignore[assignment]
    partitions: int = P,
) -> Pipeline:
    """Each event arrives when the clock reaches its `at` (ties: input order); crash after event n."""
    pipe = Pipeline(engine, partitions)
    order = sorted(range(len(events)), key=lambda n: (to_us(parse_time(events[n]["at"])), n))
    for n in order:
        now = to_us(parse_time(events[n]["at"]))
        pipe.run_until(now)
        pipe.produce(events[n])
        pipe.consume(now)
        if n in crashes:
            pipe.crash(now)
    pipe.run_until(2**62)
    return pipe


def replayed(engine: Engine, events: list[dict[str, Any]]) -> set[str]:
    report = replay(engine, [json.dumps(e) for e in events])  # replay orders them by time, ties by line
    return {json.dumps(json.loads(line), sort_keys=True) for line in report.lines()}


def test_a_silence_ahead_of_its_window_extended_then_ended_early_with_a_monitor(engine: Engine) -> None:
    """The live test's story on a virtual clock: the same outcomes as replay, a crash or not."""
    events = [silence_event("mw", 0, 20, 60), {**HEARTBEAT, "at": at(1)}]
    events += [
        {
            "type": "trigger",
            "at": at(t),
            "incident_id": f"i{n}",
            "application": "app",
            "plan": "quick",
            "context": {"summary": f"s{n}"},
        }
        for n, t in enumerate((5, 25, 30, 35, 50, 70))
    ]
    events += [
        silence_event("mw", 40, 20, 90),
        unsilence_event("mw", 45),
        {"type": "claim", "at": at(47), "incident_id": "i2", "owner": "bob"},
        {**HEARTBEAT, "at": at(14)},
        {**HEARTBEAT, "at": at(30)},
        {**HEARTBEAT, "at": at(55)},
    ]
    expected = replayed(engine, events)
    kinds = {json.loads(o)["kind"] for o in expected}
    assert {"silenced", "message"} <= kinds
    assert any(json.loads(o)["incident_id"] == "heartbeat-backup" for o in expected)
    assert run_live(engine, events).outcomes() == expected
    assert run_live(engine, events, crashes={3, 8, 9, 11}).outcomes() == expected


def test_the_pipeline_can_tell_a_lost_silence(engine: Engine) -> None:
    """The comparison above is not blind: a silence that reaches one partition only changes outcomes."""
    events = [silence_event("mw", 0, 20, 60)] + [
        {"type": "trigger", "at": at(30), "incident_id": f"i{n}", "application": "app", "plan": "once", "context": {}}
        for n in range(8)
    ]
    pipe = Pipeline(engine)
    first = on_incident_record(engine, None, encode(events[0]), T0, 0, 0, P)[0]
    pipe.log[0].append((first.key or b"", first.value, True))  # partition 0's copy only
    for event in events[1:]:
        pipe.run_until(to_us(parse_time(event["at"])))
        pipe.produce(event)
        pipe.consume(to_us(parse_time(event["at"])))
    pipe.run_until(2**62)
    assert pipe.outcomes() != replayed(engine, events)


second = st.integers(0, 120)
rows = st.lists(
    st.one_of(
        st.tuples(
            st.just("silence"),
            second,
            st.integers(-10, 60),
            st.integers(1, 60),
            st.sampled_from(["s1", "s2"]),
            st.booleans(),
        ),
        st.tuples(st.just("unsilence"), second, st.sampled_from(["s1", "s2"])),
        st.tuples(st.sampled_from(["trigger", "claim", "unclaim", "resolve"]), second, st.integers(0, 5)),
        st.tuples(st.just("heartbeat"), second),
    ),
    max_size=14,
)


def row_event(row: tuple[Any, ...], n: int) -> dict[str, Any]:
    """Event n of a generated list, at its second plus n ms: no two events at one instant (live, one
    that arrives after a page of that instant went out cannot take it back, spec §6)."""
    kind = row[0]
    row = (kind, row[1] + n / 1000, *row[2:])
    if kind == "silence":
        _, when, starts, length, sid, every_plan = row
        return silence_event(
            sid, when, when + starts, when + starts + length, **({} if every_plan else {"plans": ["quick"]})
        )
    if kind == "unsilence":
        return unsilence_event(row[2], row[1])
    if kind == "heartbeat":
        return {**HEARTBEAT, "at": at(row[1]), "event_id": f"e{n}"}
    event: dict[str, Any] = {"type": kind, "at": at(row[1]), "incident_id": f"i{row[2]}", "event_id": f"e{n}"}
    if kind == "trigger":
        event.update(application="app", plan="quick" if row[2] % 2 else "once", context={"summary": "x"})
    elif kind == "claim":
        event["owner"] = "bob"
    return event


@settings(max_examples=300, deadline=None)
@given(rows=rows, crashes=st.sets(st.integers(0, 13), max_size=3))
def test_the_record_stages_give_replays_outcomes_with_crashes(
    engine: Engine, rows: list[tuple[Any, ...]], crashes: set[int]
) -> None:
    events = [row_event(row, n) for n, row in enumerate(rows)]
    assert run_live(engine, events, crashes).outcomes() == replayed(engine, events)


def test_a_book_entry_has_its_own_json() -> None:
    assert PartitionSilences.model_validate_json(dump_book(EMPTY)) == EMPTY
    with pytest.raises(ValueError):
        PartitionSilences.model_validate_json(b'{"book": {}, "offset": 1, "x": 2}')


def test_an_expiry_at_an_events_own_time_comes_after_it_under_the_partitions_book(engine: Engine) -> None:
    """X = the time of an event of the monitor's incident: the event first, then the expiry, which a
    silence holds (the book goes to the advance after the event too)."""
    book = on_silence_record(engine, EMPTY, encode(silence_event("s1", 0, 0, 60)), 0, 0).after.book
    beat = on_event(engine, None, encode({**HEARTBEAT, "at": at(0)}), now_us=T0, silences=book)
    assert beat.state is not None
    claim = encode({"type": "claim", "at": at(10), "incident_id": "heartbeat-backup", "owner": "bob"})
    processed = on_event(engine, beat.state, claim, now_us=T0 + 10 * S, silences=book)
    assert processed.expiries == 1 and [o.kind for o in processed.outputs] == ["silenced"]
    assert processed.state is not None and processed.state.silenced_until == T0 + 60 * S
