"""The record stages with flood control (spec §7), without Kafka: which messages the escalation
stage hands to the flood stage, where claims go, and what the flood stage writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.flood import FloodControl
from streamproc.kafka import topics
from streamproc.processor.records import on_event, on_flood_record
from streamproc.timeutil import format_us, parse_time, to_us
from streamproc.wire.records import FloodTick
from tests.processor.test_flood_live import CONFIG

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))
P = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, FloodControl]:
    path = Path(tmp_path_factory.mktemp("flood")) / "config.yaml"
    path.write_text(
        CONFIG.replace(
            "      - - {role: user, target: alice, priority: urgent, template: t}",
            "      - - {role: user, target: alice, priority: urgent, template: t}\n"
            "  plain:\n    steps:\n      - - {role: user, target: bob, priority: high,"
            " template: t}",
        ).replace("users:\n", 'users:\n  bob: {contacts: {sms: "+2"}}\n')
    )
    config = load_config(path)
    return Engine(config), FloodControl(config)


def event(kind: str, incident: str, at_us: int, **fields: object) -> bytes:
    return json.dumps({"type": kind, "at": format_us(at_us), "incident_id": incident, **fields}).encode()


def trigger(incident: str, at_us: int, plan: str) -> bytes:
    return event("trigger", incident, at_us, application="app", plan=plan, context={"summary": incident})


def test_messages_the_stage_can_change_go_to_the_flood_topic_keyed_by_user(setup: tuple[Engine, FloodControl]) -> None:
    engine, flood = setup
    storm = on_event(engine, None, trigger("s1", T0, "storm"), now_us=T0, flood=flood, partitions=P)
    page = on_event(engine, None, trigger("p1", T0, "page"), now_us=T0, flood=flood, partitions=P)
    plain = on_event(engine, None, trigger("x1", T0, "plain"), now_us=T0, flood=flood, partitions=P)
    for processed in (storm, page):
        [msg] = [o for o in processed.outputs if o.message_id]
        assert (msg.topic, msg.key, msg.partition) == (topics.FLOOD, b"alice", topics.partition_for(b"alice", P))
        assert json.loads(msg.value)["message"]["user"] == "alice"
    [direct] = [o for o in plain.outputs if o.message_id]  # bob has no rules and `plain` does not batch
    assert direct.topic == topics.messages_topic("sms")
    assert storm.state is not None and storm.state.flood_users == ["alice"]
    assert page.state is not None and page.state.flood_users == []  # downgrade alone needs no claims


def test_claims_and_resolves_of_a_batching_instance_follow_to_its_users(setup: tuple[Engine, FloodControl]) -> None:
    engine, flood = setup
    opened = on_event(engine, None, trigger("s1", T0, "storm"), now_us=T0, flood=flood, partitions=P)
    claimed = on_event(
        engine, opened.state, event("claim", "s1", T0 + 1_000_000, owner="alice"), now_us=T0, flood=flood, partitions=P
    )
    statuses = [json.loads(o.value) for o in claimed.outputs if o.topic == topics.FLOOD]
    assert statuses == [
        {
            "kind": "status",
            "user": "alice",
            "incident_id": "s1",
            "instance": 1,
            "status": "claimed",
            "at": "2026-03-01T10:00:01Z",
        }
    ]
    resolved = on_event(
        engine, claimed.state, event("resolve", "s1", T0 + 2_000_000), now_us=T0, flood=flood, partitions=P
    )
    assert [json.loads(o.value)["status"] for o in resolved.outputs if o.topic == topics.FLOOD] == ["resolved"]
    assert resolved.state is not None and resolved.state.flood_users == []
    again = on_event(
        engine, resolved.state, trigger("s1", T0 + 3_000_000, "storm"), now_us=T0 + 3_000_000, flood=flood, partitions=P
    )
    assert again.state is not None and again.state.flood_users == ["alice"]


def test_without_flood_control_messages_go_straight_to_their_modes_topic(setup: tuple[Engine, FloodControl]) -> None:
    engine, _ = setup
    processed = on_event(engine, None, trigger("s1", T0, "storm"), now_us=T0, partitions=P)
    assert {o.topic for o in processed.outputs if o.message_id} == {topics.messages_topic("sms")}


def test_the_flood_stage_holds_then_sends_the_batch_at_its_time(setup: tuple[Engine, FloodControl]) -> None:
    engine, flood = setup
    state = None
    written: list[tuple[str, dict[str, object]]] = []
    for n in range(4):  # 3 > threshold 2 within 30 s: the third and fourth are held
        at = T0 + n * 1_000_000
        processed = on_event(engine, None, trigger(f"s{n}", at, "storm"), now_us=at, flood=flood, partitions=P)
        [msg] = [o for o in processed.outputs if o.topic == topics.FLOOD]
        result = on_flood_record(flood, state, msg.value, at)
        assert result.changed
        state = result.state
        written += [(o.topic, json.loads(o.value)) for o in result.outputs]
    assert [(t, v["kind"]) for t, v in written] == [(topics.messages_topic("sms"), "message")] * 2 + [
        (topics.OUTCOMES, "batched")
    ] * 2
    assert state is not None and state.wake_at == T0 + 2_000_000 + 4_000_000
    tick = FloodTick(user="alice", due=state.wake_at).model_dump_json().encode()
    fired = on_flood_record(flood, state, tick, now_us=state.wake_at)
    [batch] = [json.loads(o.value) for o in fired.outputs]
    assert batch["batch"] == {"count": 2, "incident_ids": ["s2", "s3"]} and batch["at"] == "2026-03-01T10:00:06Z"
    assert on_flood_record(flood, fired.state, tick, now_us=state.wake_at).outputs == []  # a late duplicate tick


def test_a_record_the_escalation_stage_did_not_write_is_a_dead_letter(setup: tuple[Engine, FloodControl]) -> None:
    _, flood = setup
    result = on_flood_record(flood, None, b'{"kind": "message"}', T0, partition=1, offset=4)
    [letter] = result.outputs
    assert letter.topic == topics.DEADLETTER and "message" in json.loads(letter.value)["reason"]
