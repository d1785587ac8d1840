"""`streamproc inspect incident` for an instance a silence held (spec §8): the silence id, E (when
its step 1 starts) after each change of the silences, and its status, from records as the topics
hold them (an in-memory reader: no broker)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from streamproc.inspect.incident import as_json, collect, held_lines
from streamproc.inspect.reader import Record
from streamproc.kafka.topics import Topics, partition_for
from streamproc.timeutil import format_us

TOPICS = Topics("insp")
P = 3


class FakeReader:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, topic: str, partition: int, key: bytes | None, value: dict[str, Any]) -> None:
        offset = sum(1 for r in self.records if (r.topic, r.partition) == (topic, partition))
        self.records.append(Record(topic, partition, offset, None, key, json.dumps(value).encode()))

    def partition_counts(self) -> dict[str, int]:
        return {
            TOPICS.incidents: P,
            TOPICS.events: P,
            TOPICS.outcomes: P,
            TOPICS.deliveries: P,
            TOPICS.messages("sms"): P,
        }

    def read(
        self,
        spans: Iterable[tuple[str, int]],
        keep: Callable[[Record], bool],
        since_ms: int | None = None,
        label: str = "",
    ) -> list[Record]:
        wanted = set(spans)
        return [r for r in self.records if (r.topic, r.partition) in wanted and keep(r)]


def at(clock: str) -> str:
    return f"2026-03-01T{clock}Z"


def story(until: str = "11:30", claim: str | None = None) -> FakeReader:
    reader = FakeReader()
    silence = {
        "type": "silence",
        "at": at("09:00:00"),
        "silence_id": "mw",
        "application": "app",
        "starts": at("10:00:00"),
        "ends": at("11:00:00"),
        "match": {"host": "db01"},
    }
    other = {**silence, "silence_id": "other", "match": {"host": "db02"}, "ends": at("13:00:00")}
    trigger = {
        "type": "trigger",
        "at": at("10:15:00"),
        "incident_id": "inc-1",
        "application": "app",
        "plan": "quick",
        "context": {"host": "db01", "summary": "x"},
    }
    reader.add(TOPICS.incidents, 2, b"mw", silence)
    reader.add(TOPICS.incidents, 2, b"other", other)  # another host: never moves inc-1
    reader.add(TOPICS.incidents, 0, b"inc-1", trigger)
    reader.add(TOPICS.events, partition_for(b"inc-1", P), b"inc-1", trigger)
    reader.add(
        TOPICS.outcomes,
        partition_for(b"inc-1", P),
        b"inc-1",
        {"kind": "silenced", "at": at("10:15:00"), "incident_id": "inc-1", "instance": 1, "silence_id": "mw"},
    )
    reader.add(TOPICS.incidents, 1, b"mw", {**silence, "at": at("10:30:00"), "ends": at(until)})  # extended
    if claim is not None:
        reader.add(
            TOPICS.outcomes,
            partition_for(b"inc-1", P),
            b"inc-1",
            {"kind": "claimed", "at": at(claim), "incident_id": "inc-1", "instance": 1, "owner": "bob"},
        )
    reader.add(
        TOPICS.incidents,
        2,
        b"mw",
        {"type": "unsilence", "at": at("11:10:00"), "silence_id": "mw", "application": "app"},
    )
    return reader


def test_a_held_instance_shows_its_silence_and_when_it_starts_after_each_change() -> None:
    entries = collect(story(), TOPICS, "inc-1")  # type: ignore[arg-type]
    [silenced] = [e for e in entries if e.kind == "silenced"]
    assert "silence_id=mw" in silenced.summary and f"starts={at('11:00:00')}" in silenced.summary
    moved = [(format_us(e.at_us), e.summary) for e in entries if e.kind == "silence moved"]
    assert moved == [
        (at("10:30:00"), f"#1 silence mw: starts={at('11:30:00')}"),
        (at("11:10:00"), f"#1 unsilence mw: starts={at('11:10:00')}"),
    ]
    assert silenced.held == {"instance": 1, "silence_id": "mw", "starts": at("11:10:00"), "status": "started"}
    assert held_lines(entries) == [f"instance #1: started, held by silence mw; step 1 starts at {at('11:10:00')}"]
    assert json.loads(as_json("inc-1", entries))["entries"][[e.kind for e in entries].index("silenced")]["silenced"][
        "starts"
    ] == at("11:10:00")
    # in time order: trigger, silenced, the extension, the unsilence
    assert [e.kind for e in entries if e.topic != TOPICS.events] == [
        "trigger",
        "silenced",
        "silence moved",
        "silence moved",
    ]


def test_a_held_instance_still_waiting_and_one_claimed_before_it_started() -> None:
    far = story(until="23:59")
    entries = collect(far, TOPICS, "inc-1")  # type: ignore[arg-type]
    # the unsilence at 11:10 still ends it; a silence ending in the future leaves it silenced
    assert [e.held for e in entries if e.held] == [
        {"instance": 1, "silence_id": "mw", "starts": at("11:10:00"), "status": "started"}
    ]
    claimed = collect(story(claim="10:40:00"), TOPICS, "inc-1")  # type: ignore[arg-type]
    assert [e.held for e in claimed if e.held] == [
        {"instance": 1, "silence_id": "mw", "starts": at("11:30:00"), "status": "claimed"}
    ]
    assert [e.summary for e in claimed if e.kind == "silence moved"] == [f"#1 silence mw: starts={at('11:30:00')}"]


def test_an_instance_held_until_later_is_silenced() -> None:
    import time

    now = int(time.time()) * 1_000_000
    hour = 3600 * 1_000_000
    reader = FakeReader()
    reader.add(
        TOPICS.incidents,
        0,
        b"mw",
        {
            "type": "silence",
            "at": format_us(now - 2 * hour),
            "silence_id": "mw",
            "application": "app",
            "ends": format_us(now + 5 * hour),
        },
    )
    trigger = {
        "type": "trigger",
        "at": format_us(now - hour),
        "incident_id": "inc-1",
        "application": "app",
        "plan": "quick",
        "context": {},
    }
    reader.add(TOPICS.incidents, 1, b"inc-1", trigger)
    reader.add(
        TOPICS.outcomes,
        partition_for(b"inc-1", P),
        b"inc-1",
        {"kind": "silenced", "at": format_us(now - hour), "incident_id": "inc-1", "instance": 1, "silence_id": "mw"},
    )
    entries = collect(reader, TOPICS, "inc-1")  # type: ignore[arg-type]
    assert [e.held for e in entries if e.held] == [
        {"instance": 1, "silence_id": "mw", "starts": format_us(now + 5 * hour), "status": "silenced"}
    ]
