"""Flood control live (spec §7): the stage keyed by user between the escalation agent and the
per-mode topics gives what replay gives, across a SIGKILLed worker: no batch lost, none sent
twice with different content."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.kafka.topics import partition_for
from tests.harness import Stack, iso_ms, live_stack, replay_outcomes

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
applications:
  app: {}
users:
  alice:
    contacts: {sms: "+1001", call: "+1001", email: "alice@x"}
    downgrade:
      - {from: call, to: sms, count: 1, window: 60s}
plans:
  storm:
    batching: {threshold: 2, window: 30s, every: 4s, quiet: 3s}
    steps:
      - - {role: user, target: alice, priority: high, template: t}
  page:
    steps:
      - - {role: user, target: alice, priority: urgent, template: t}
templates:
  t:
    default:
      default: {subject: "{{ summary }}", body: "{{ summary }} #{{ incident.id }}"}
"""


@pytest.fixture
def flood_stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with live_stack(kafka_bootstrap, tmp_path, CONFIG) as s:
        yield s


def _trigger(incident: str, at: float, plan: str) -> dict[str, Any]:
    return {
        "type": "trigger",
        "at": iso_ms(at),
        "incident_id": incident,
        "application": "app",
        "plan": plan,
        "context": {"summary": f"disk full {incident}"},
    }


def test_live_flood_control_equals_replay_across_a_killed_worker(flood_stack: Stack) -> None:
    stack = flood_stack
    workers = [stack.start_worker("w0"), stack.start_worker("w1")]
    stack.wait_ready()
    alice_partition = partition_for(b"alice", stack.partitions)
    statuses = [w.status() for w in workers]
    owner = next(w for w, s in zip(workers, statuses, strict=True) if s and alice_partition in s["partitions"])
    t0 = time.time() + 0.5
    timeline: list[tuple[float, dict[str, Any]]] = [
        (0.0, _trigger("s1", t0, "storm")),
        (0.1, _trigger("p1", t0 + 0.1, "page")),  # a call
        (0.3, _trigger("s2", t0 + 0.3, "storm")),
        (0.4, _trigger("p2", t0 + 0.4, "page")),  # a second call within the window: by sms
        (0.6, _trigger("s3", t0 + 0.6, "storm")),  # 3 > 2 in 30 s: batching from here, batch at +4.6
        (0.9, _trigger("s4", t0 + 0.9, "storm")),
        (1.2, _trigger("s5", t0 + 1.2, "storm")),
        (1.5, {"type": "claim", "at": iso_ms(t0 + 1.5), "incident_id": "s4", "owner": "alice"}),
    ]
    events: list[dict[str, Any]] = []
    # The sleeps below are the scenario's timeline: each event when the clock reaches its `at`, the
    # kill at +2 (messages held, a batch wake-up pending), the late trigger at +6.
    for offset, event in timeline:
        time.sleep(max(0.0, t0 + offset - time.time()))
        stack.produce(event)
        stack.flush()
        events.append(event)
    time.sleep(max(0.0, t0 + 2.0 - time.time()))
    owner.kill()  # holds alice's held messages and her batch wake-up; another worker takes both over
    time.sleep(max(0.0, t0 + 6.0 - time.time()))
    late = _trigger("s6", t0 + 6.0, "storm")  # batching again from +6 (6 in 30 s), alone in its batch at +10
    stack.produce(late)
    stack.flush()
    events.append(late)

    expected = replay_outcomes(stack.config, events)
    kinds = [o["kind"] for o in expected]
    assert kinds.count("batched") == 4 and any(o.get("batch") for o in expected), expected  # the scenario holds
    assert any(o.get("downgraded_from") == "call" for o in expected)
    want = {json.dumps(o, sort_keys=True) for o in expected}
    got_records = stack.outcomes(
        until=lambda recs: {json.dumps(v, sort_keys=True) for _, v, _ in recs} >= want, timeout=90
    )
    got = [json.dumps(v, sort_keys=True) for v, _ in got_records]
    assert set(got) - want == set(), "live outcomes replay does not give"
    assert want - set(got) == set(), "replay outcomes live never gave"
    by_id: dict[str, set[str]] = {}
    for v, _ in got_records:
        if v.get("kind") == "message":
            by_id.setdefault(v["message_id"], set()).add(json.dumps(v, sort_keys=True))
    assert all(len(bodies) == 1 for bodies in by_id.values()), "a message id with two different contents"
    batch = next(json.loads(o) for o in want if json.loads(o).get("batch"))
    assert batch["batch"]["incident_ids"] == ["s3", "s5"]  # s4 was claimed before the batch time
