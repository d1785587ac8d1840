"""The processor's two stages without Kafka: re-keying what any producer wrote, and the wake-up
hold after a rebalance."""

from __future__ import annotations

import json

import pytest

from streamproc.engine.core import Engine
from streamproc.kafka import topics
from streamproc.kafka.headers import BARRIER_HEADER
from streamproc.processor.catchup import CatchUp, barrier_token
from streamproc.processor.records import on_event_record, on_incident_record
from streamproc.processor.schedule import WakeSchedule
from streamproc.timeutil import parse_time, to_us
from streamproc.wire.events import derive_incident_id
from tests.processor.scenario import event_bytes

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))


@pytest.mark.parametrize("key", [b"inc-1", b"some-host", None])
def test_any_key_is_rekeyed_by_incident_id_on_the_processors_partition(engine: Engine, key: bytes | None) -> None:
    [out] = on_incident_record(engine, key, event_bytes(), T0, partition=5, offset=7, partitions=12)
    assert (out.topic, out.key, out.partition) == (topics.EVENTS, b"inc-1", topics.partition_for(b"inc-1", 12))
    assert json.loads(out.value)["incident_id"] == "inc-1"


def test_a_dedup_key_names_the_incident_and_places_it(engine: Engine) -> None:
    [out] = on_incident_record(engine, None, event_bytes(incident_id=None, dedup_key="disk/db01"), T0, 0, 0, 12)
    incident = derive_incident_id("app", "disk/db01")
    assert out.key == incident.encode() and out.partition == topics.partition_for(out.key, 12)


def test_a_missing_at_becomes_the_source_records_timestamp(engine: Engine) -> None:
    stamp = T0 + 1_234_000
    [out] = on_incident_record(engine, None, event_bytes(at=None), stamp, 0, 0, 12)
    assert to_us(parse_time(json.loads(out.value)["at"])) == stamp


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "json"),
        (event_bytes(plan="nope"), "plan: unknown plan"),
        (event_bytes(application="nope"), "application: unknown application"),
        (json.dumps({"type": "claim", "at": "2026-03-01T10:00:00Z"}).encode(), "incident_id"),
    ],
)
def test_bad_input_is_a_dead_letter_naming_the_field(engine: Engine, value: bytes, reason: str) -> None:
    [out] = on_incident_record(engine, b"k", value, T0, 3, 9, 12)
    assert out.topic == topics.DEADLETTER
    letter = json.loads(out.value)
    assert reason in letter["reason"].lower() or letter["reason"].startswith(reason)
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == (topics.INCIDENTS, 3, 9)


def test_the_second_stage_gives_what_the_engine_gives(engine: Engine) -> None:
    [rekeyed] = on_incident_record(engine, b"x", event_bytes(), T0, 0, 0, 12)
    processed = on_event_record(engine, None, rekeyed.value, rekeyed.partition, 0, now_us=T0)
    first = [json.loads(o.value) for o in processed.outputs]
    assert {(o["user"], o["mode"], o["at"]) for o in first if o["kind"] == "message"} == {
        (user, mode, "2026-03-01T10:00:00Z")
        for user, mode in [("alice", "sms"), ("alice", "email"), ("bob", "email"), ("carol", "email")]
    }
    assert processed.state is not None and processed.wake_at == T0 + 2_000_000


def test_barriers_release_wakeups_only_after_both_backlogs_were_read() -> None:
    catchup = CatchUp()
    old = catchup.start({0, 1}, {0, 1})
    token = catchup.start({0, 1}, {0, 1})  # a second rebalance: the first one's barriers mean nothing
    assert not catchup.incidents_read(0, old)
    assert not catchup.events_read(0, token)  # the incidents backlog is not read yet
    assert not catchup.incidents_read(0, token)
    assert catchup.incidents_read(1, token)  # the last one: time to append the events barriers
    assert catchup.events_read(1, token) and catchup.events == {0}
    assert not catchup.events_read(1, token)
    assert catchup.events_read(0, token) and not catchup.events
    assert barrier_token([("x", b"1"), (BARRIER_HEADER, token)]) == token
    assert barrier_token(None) is None and barrier_token([("x", b"1")]) is None


def test_held_partitions_keep_their_wakeups() -> None:
    schedule = WakeSchedule()
    schedule.set("a", 0, 100)
    schedule.set("b", 1, 50)
    assert schedule.next_due(held={1}) == 100
    assert schedule.pop_due(200, held={1}) == [("a", 100)]
    assert schedule.pop_due(200) == [("b", 50)]


def test_a_record_on_events_that_stage_one_did_not_write_is_a_dead_letter(engine: Engine) -> None:
    for value in (b"{}", event_bytes(at=None)):
        processed = on_event_record(engine, None, value, 2, 5, now_us=T0)
        assert [o.topic for o in processed.outputs] == [topics.DEADLETTER] and processed.state is None


def test_schedule_skips_held_partitions_and_superseded_entries() -> None:
    schedule = WakeSchedule()
    schedule.set("a", 0, 100)
    schedule.set("b", 1, 50)
    schedule.set("c", 1, 70)
    schedule.set("c", 2, 60)  # moved: its entry on partition 1 is superseded
    assert schedule.next_due(held={1}) == 60
    assert schedule.pop_due(200, held={1}) == [("c", 60), ("a", 100)]
    assert schedule.wake_of("b") == 50  # held: untouched
    assert schedule.pop_due(200) == [("b", 50)]  # c's old entry on partition 1 is not fired
    schedule.drop_partitions({0, 2})
    assert len(schedule) == 1 and schedule.next_due() == 200 + schedule.retry_us
