"""Issue 12, must-show (1): the incidents topic of a live run, replayed with `replay --from-topic`
over a record-time range, gives exactly the outcomes the live processor produced."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.harness import AUDIT_KINDS, REPO, Stack, iso_ms
from tests.processor.scenario import canonical, trigger

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_replay_of_a_live_runs_topic_range_gives_the_live_outcomes(stack: Stack) -> None:
    stack.start_worker("w1")
    stack.wait_ready()
    # Before the range: an incident recorded an hour ago (record time), processed live now.
    early = trigger("before-range", time.time(), plan="once")
    stack.producer.produce(
        stack.topics.incidents,
        key=b"before-range",
        value=json.dumps(early).encode(),
        timestamp=int((time.time() - 3600) * 1000),
    )
    since = time.time()
    t0 = since + 0.5
    events = [trigger(f"l{i}", t0 + i * 0.2) for i in range(5)]
    events += [
        {"type": "claim", "at": iso_ms(t0 + 2.5), "incident_id": "l1", "owner": "alice"},
        {"type": "claim", "at": iso_ms(t0 + 2.6), "incident_id": "l2", "owner": "bob"},
        {"type": "unclaim", "at": iso_ms(t0 + 3.6), "incident_id": "l2"},
        {"type": "resolve", "at": iso_ms(t0 + 2.8), "incident_id": "l3"},
        trigger("l4", t0 + 1.5),  # absorbed
    ]
    for event in sorted(events, key=lambda e: e["at"]):  # the scenario: each when the clock reaches its `at`
        time.sleep(max(0.0, event_time(event) - time.time()))
        stack.produce(event)
        stack.flush()
    stack.produce_raw(b"junk", b"{not json")  # a dead letter live, a reported reject in replay
    stack.flush()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamproc.cli",
            "replay",
            "--config",
            str(stack.config),
            "--from-topic",
            stack.topics.incidents,
            "--bootstrap",
            stack.bootstrap,
            "--since",
            iso_ms(since - 0.05),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=120,
    )
    replayed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "not processed: event: Invalid JSON" in proc.stderr
    assert replayed and "before-range" not in {o["incident_id"] for o in replayed}

    def complete(recs: list[tuple[str, dict[str, Any], int]]) -> bool:
        return sum(1 for _, v, _ in recs if v.get("kind") not in AUDIT_KINDS) >= len(replayed) + 2

    got = stack.outcomes(until=complete, timeout=60)
    live = [o for o, _ in got if o["incident_id"] != "before-range"]
    assert {o["incident_id"] for o, _ in got} >= {"before-range"}  # the live run did see it
    assert canonical(live) == canonical(replayed)
    print(f"\nlive = replay --from-topic: {len(replayed)} outcomes")


def event_time(event: dict[str, Any]) -> float:
    from streamproc.timeutil import parse_time, to_us

    return to_us(parse_time(event["at"])) / 1e6
