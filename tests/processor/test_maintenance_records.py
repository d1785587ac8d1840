"""Spec §8 events reaching the live worker before it applies them (issue 21): each is a dead letter
with a clear reason, never a crash, a re-keyed record or a state change."""

from __future__ import annotations

import json

import pytest

from streamproc.engine.core import Engine
from streamproc.kafka import topics
from streamproc.processor.records import on_event_record, on_incident_record
from streamproc.timeutil import parse_time, to_us

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))

SILENCE = {"type": "silence", "at": "2026-03-01T09:50:00Z", "silence_id": "db-upgrade", "application": "app",
           "starts": "2026-03-01T10:00:00Z", "ends": "2026-03-01T12:00:00Z", "plans": ["quick"],
           "match": {"host": ["db01", "db02"]}, "match_re": {"alertname": "Disk.*"}}
UNSILENCE = {"type": "unsilence", "at": "2026-03-01T11:10:00Z", "silence_id": "db-upgrade", "application": "app"}
HEARTBEAT = {"type": "heartbeat", "at": "2026-03-01T02:00:00Z", "heartbeat": "nightly", "application": "app"}


@pytest.mark.parametrize("event", [SILENCE, UNSILENCE, HEARTBEAT, {**HEARTBEAT, "at": None}],
                         ids=["silence", "unsilence", "heartbeat", "heartbeat-without-at"])
@pytest.mark.parametrize("key", [b"db-upgrade", None])
def test_valid_maintenance_events_are_dead_letters_saying_they_are_not_applied_live(
        engine: Engine, event: dict[str, object], key: bytes | None) -> None:
    value = json.dumps({k: v for k, v in event.items() if v is not None}).encode()
    out = on_incident_record(engine, key, value, T0, 4, 11, 12)
    assert out.topic == topics.DEADLETTER and out.partition is None
    letter = json.loads(out.value)
    assert letter["reason"].startswith(f"type: {event['type']} events")
    assert "not yet applied by the live processor" in letter["reason"]
    assert (letter["source_topic"], letter["partition"], letter["offset"], letter["value"]) == \
        (topics.INCIDENTS, 4, 11, value.decode())
    assert out.tally is not None and out.tally.metric == "dead-letter"


@pytest.mark.parametrize(("event", "reason"), [
    ({**SILENCE, "ends": "2026-03-01T09:00:00Z"}, "ends:"),
    ({**SILENCE, "ends": "2026-04-01T10:00:00Z"}, "ends:"),
    ({**SILENCE, "match_re": {"alertname": "(a)\\1"}}, "match_re.alertname:"),
    ({**SILENCE, "silence_id": None}, "silence_id:"),
    ({**HEARTBEAT, "heartbeat": None}, "heartbeat:"),
])
def test_invalid_maintenance_events_are_dead_letters_naming_the_field(engine: Engine, event: dict[str, object],
                                                                     reason: str) -> None:
    value = json.dumps({k: v for k, v in event.items() if v is not None}).encode()
    out = on_incident_record(engine, None, value, T0, 0, 1, 12)
    assert out.topic == topics.DEADLETTER
    assert json.loads(out.value)["reason"].startswith(reason)


def test_a_maintenance_event_on_the_events_topic_is_not_applied(engine: Engine) -> None:
    processed = on_event_record(engine, None, json.dumps(HEARTBEAT).encode(), 0, 5, T0)
    [out] = processed.outputs
    assert out.topic == topics.DEADLETTER and processed.state is None and not processed.changed
