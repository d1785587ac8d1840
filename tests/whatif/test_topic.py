"""`replay --from-topic` and `whatif --from-topic` read a topic range like a file, without a
consumer group, commits or produced records."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamproc.cli import main
from streamproc.kafka.admin import ensure_topics
from streamproc.kafka.clients import producer_config
from streamproc.kafka.topics import Topics
from streamproc.timeutil import format_us, parse_time, to_us
from tests.whatif.scenario import EVENTS, write

pytestmark = pytest.mark.kafka
PARTITIONS = 3


def marks(bootstrap: str, names: Topics) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        topics = consumer.list_topics(timeout=10).topics
        return {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            if t.startswith(names.namespace + ".")
            for p in topics[t].partitions
        }
    finally:
        consumer.close()


def groups(bootstrap: str) -> set[str]:
    listed = AdminClient({"bootstrap.servers": bootstrap}).list_consumer_groups().result(timeout=10)
    return {g.group_id for g in listed.valid}


@pytest.fixture
def loaded(kafka_bootstrap: str, tmp_path: Path) -> dict[str, Any]:
    """The scenario's events on a fresh incidents topic, shuffled across partitions (each incident's
    events in order on one partition), record time = the event's `at` + 1 s. Before them, an hour
    older, one trigger outside any --since range; among them an invalid record and an event
    without `at` (it takes its record timestamp)."""
    names = Topics(f"w{uuid.uuid4().hex[:8]}")
    ensure_topics(kafka_bootstrap, PARTITIONS, names=names)
    producer = Producer(producer_config(kafka_bootstrap, partitioner="random"))
    base_ms = 1_772_445_600_000  # 2026-03-02T10:00:00Z
    old = {
        "type": "trigger",
        "at": "2026-03-02T09:00:00Z",
        "incident_id": "old",
        "application": "mon",
        "plan": "db",
        "context": {},
    }
    producer.produce(names.incidents, key=b"old", value=json.dumps(old).encode(), timestamp=base_ms - 3_600_000)
    by_incident: dict[str, list[dict[str, Any]]] = {}
    for event in EVENTS:
        by_incident.setdefault(str(event["incident_id"]), []).append(event)
    rng = random.Random(7)
    for incident, events in sorted(by_incident.items(), key=lambda kv: rng.random()):
        partition = rng.randrange(PARTITIONS)
        for event in events:
            ts = to_us(parse_time(str(event["at"]))) // 1000 + 1000
            value = dict(event)
            if incident == "inc-c":  # no `at`: replay takes the record timestamp, as the processor does
                del value["at"]
                ts -= 1000
            producer.produce(
                names.incidents,
                key=incident.encode(),
                value=json.dumps(value).encode(),
                partition=partition,
                timestamp=ts,
            )
    producer.produce(names.incidents, key=b"junk", value=b"{not json", partition=1, timestamp=base_ms + 5000)
    assert producer.flush(30) == 0
    base, new, events_file = write(tmp_path)
    return {"names": names, "base": base, "new": new, "events": events_file, "since": format_us(base_ms * 1000 - 1)}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_from_topic_equals_replay_of_the_file(
    kafka_bootstrap: str, loaded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    names: Topics = loaded["names"]
    before_marks, before_groups = marks(kafka_bootstrap, names), groups(kafka_bootstrap)
    code, from_file, _ = run(capsys, "replay", "--config", str(loaded["base"]), "--input", str(loaded["events"]))
    assert code == 0
    code, from_topic, err = run(
        capsys,
        "replay",
        "--config",
        str(loaded["base"]),
        "--from-topic",
        names.incidents,
        "--bootstrap",
        kafka_bootstrap,
        "--since",
        loaded["since"],
    )
    assert code == 0, err
    assert from_topic == from_file  # same lines, same order: `old` is before --since
    assert f"{names.incidents}[1]@" in err and "not processed: event: Invalid JSON" in err
    # without --since, `old` is read too
    code, everything, _ = run(
        capsys,
        "replay",
        "--config",
        str(loaded["base"]),
        "--from-topic",
        names.incidents,
        "--bootstrap",
        kafka_bootstrap,
    )
    assert {json.loads(line)["incident_id"] for line in everything.splitlines()} == {
        "old",
        "inc-a",
        "inc-b",
        "inc-c",
        "inc-d",
    }
    # --to (exclusive record time): only what was recorded before 2026-03-03
    code, first_day, _ = run(
        capsys,
        "replay",
        "--config",
        str(loaded["base"]),
        "--from-topic",
        names.incidents,
        "--bootstrap",
        kafka_bootstrap,
        "--since",
        loaded["since"],
        "--to",
        "2026-03-03T00:00Z",
    )
    assert {json.loads(line)["incident_id"] for line in first_day.splitlines()} == {"inc-a", "inc-d"}
    # reading joined no group, committed nothing and produced nothing
    assert marks(kafka_bootstrap, names) == before_marks
    assert {g for g in groups(kafka_bootstrap) - before_groups if "replay" in g} == set()


def test_offsets_select_records_and_the_namespace_gives_the_default_topic(
    kafka_bootstrap: str, loaded: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names: Topics = loaded["names"]
    monkeypatch.setenv("STREAMPROC_NAMESPACE", names.namespace)
    skip_all = [f"--offsets={p}:-0" for p in range(PARTITIONS)]
    code, out, _ = run(
        capsys, "replay", "--config", str(loaded["base"]), "--from-topic", "--bootstrap", kafka_bootstrap, *skip_all
    )
    assert code == 0 and out == ""
    counts = {p: end for (t, p), end in marks(kafka_bootstrap, names).items() if t == names.incidents}
    first_only = [f"--offsets={p}:0-1" for p in range(PARTITIONS)]
    code, out, err = run(
        capsys, "replay", "--config", str(loaded["base"]), "--from-topic", "--bootstrap", kafka_bootstrap, *first_only
    )
    assert code == 0, err
    match = re.search(r"replay: (\d+) events, \d+ outcomes, (\d+) rejected", err)
    assert match is not None, err
    assert int(match.group(1)) + int(match.group(2)) == sum(1 for c in counts.values() if c) > 0
    code, _, err = run(
        capsys,
        "replay",
        "--config",
        str(loaded["base"]),
        "--from-topic",
        "--bootstrap",
        kafka_bootstrap,
        "--offsets",
        "9:0-1",
    )
    assert code == 2 and "no partition [9]" in err
    code, _, err = run(
        capsys,
        "replay",
        "--config",
        str(loaded["base"]),
        "--input",
        str(loaded["events"]),
        "--since",
        "2026-03-01T00:00Z",
    )
    assert code == 2 and "--from-topic" in err


def test_whatif_from_topic_equals_whatif_of_the_file(
    kafka_bootstrap: str, loaded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["whatif", "--baseline", str(loaded["base"]), "--config", str(loaded["new"]), "--json"]
    code, from_file, _ = run(capsys, *common, "--input", str(loaded["events"]))
    assert code == 0
    code, from_topic, err = run(
        capsys,
        *common,
        "--from-topic",
        loaded["names"].incidents,
        "--bootstrap",
        kafka_bootstrap,
        "--since",
        loaded["since"],
    )
    assert code == 0, err
    a, b = json.loads(from_file), json.loads(from_topic)
    for r in (a, b):
        r.pop("source")
    assert b["rejected"] == {"baseline": 1, "new": 1}  # the junk record
    a.pop("rejected"), b.pop("rejected")
    assert a == b


def test_a_missing_topic_is_an_error(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base, _, _ = write(tmp_path)
    started = time.monotonic()
    code, _, err = run(
        capsys,
        "replay",
        "--config",
        str(base),
        "--from-topic",
        f"nope-{uuid.uuid4().hex}",
        "--bootstrap",
        kafka_bootstrap,
    )
    assert code == 2 and "not found" in err
    assert time.monotonic() - started < 30
