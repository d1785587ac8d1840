"""Issue 22, live: 30 incidents across the partitions of two workers, one SIGKILLed in the middle,
some claimed, some resolved; `GET /v1/incidents?status=open` (and `streamproc incidents`) equals
the open instances replay gives at that moment. Another application's key sees none of them,
and `/ui` without the token is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.engine.state import IncidentState
from streamproc.kafka.topics import partition_for
from streamproc.replay import replay
from streamproc.timeutil import format_us, to_us
from streamproc.wire.outcomes import Message
from tests.harness import REPO, Stack, iso_ms, live_stack, read, wait_until
from tests.processor.producers import ConfluentSink, by_incident
from tests.processor.status_scenario import APP_KEY, CONFIG, OTHER_KEY, UI_TOKEN, request
from tests.processor.test_producers import at_wall_clock

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PAGE_EVERY = 300.0


@pytest.fixture
def status_stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with live_stack(kafka_bootstrap, tmp_path, CONFIG) as stack:
        yield stack


def trigger(incident: str, at: float, plan: str, event_id: str | None = None) -> dict[str, Any]:
    event = {
        "type": "trigger",
        "at": iso_ms(at),
        "incident_id": incident,
        "application": "app",
        "plan": plan,
        "context": {"summary": f"disk full {incident}"},
    }
    if event_id:
        event["event_id"] = event_id
    return event


def expected_at(config: Path, events: list[dict[str, Any]], at_us: int) -> dict[str, dict[str, Any]]:
    """Replay's summaries of the instances as of `at_us`: its states advanced to then, and who its
    messages due by then paged last."""
    report = replay(Engine(load_config(str(config))), [json.dumps(e) for e in events], until_us=at_us)
    paged: dict[str, tuple[int, list[str]]] = {}
    for emitted in report.ordered():
        outcome = emitted.outcome
        if isinstance(outcome, Message) and to_us(outcome.at) <= at_us:
            when, users = paged.get(outcome.incident_id, (0, []))
            at = to_us(outcome.at)
            paged[outcome.incident_id] = (at, [outcome.user]) if at > when else (when, [*users, outcome.user])
    return {key: view(state, paged.get(key)) for key, state in report.states.items()}


def view(state: IncidentState, paged: tuple[int, list[str]] | None) -> dict[str, Any]:
    return {
        "incident_id": state.incident_id,
        "instance": state.instance,
        "status": state.status,
        "plan": state.plan_name,
        "application": state.application,
        "step": state.step + 1,
        "created": format_us(state.created),
        "absorbed": state.absorbed if state.is_open else None,
        "claimed_by": state.owner if state.status == "claimed" else None,
        "next_page_at": format_us(state.pending[0].at) if state.status == "escalating" and state.pending else None,
        "last_paged": sorted(paged[1]) if paged else [],
        "last_paged_at": format_us(paged[0]) if paged else None,
    }


def listed_view(summary: dict[str, Any]) -> dict[str, Any]:
    out = {
        k: summary[k]
        for k in (
            "incident_id",
            "instance",
            "status",
            "plan",
            "application",
            "step",
            "created",
            "claimed_by",
            "next_page_at",
            "last_paged_at",
        )
    }
    out["absorbed"] = summary["absorbed"] if summary["status"] != "resolved" else None
    out["last_paged"] = sorted(summary["last_paged"])
    return out


def same_times(view: dict[str, Any]) -> dict[str, Any]:
    """Times as instants (the API writes `...Z` with or without fractions)."""
    from streamproc.timeutil import parse_time

    return {
        k: (format_us(to_us(parse_time(v))) if isinstance(v, str) and k.endswith(("_at", "created")) else v)
        for k, v in view.items()
    }


def test_open_incidents_equal_replay_after_a_worker_is_killed(status_stack: Stack) -> None:
    stack = status_stack
    workers = [stack.start_worker("w0"), stack.start_worker("w1")]
    stack.wait_ready()
    api = stack.start_api()
    sink = ConfluentSink(stack.bootstrap, stack.topics.incidents, by_incident)
    try:
        t0 = time.time() + 0.5
        # Every event has an id, as clients are asked to give: a worker that takes over repeats the
        # records after the last commit, and only an id tells a repeat from a trigger absorbed again.
        triggers = [trigger(f"s{i}", t0 + i * 0.1, "long" if i % 2 else "oncall", f"first-{i}") for i in range(30)]
        assert len({partition_for(t["incident_id"].encode(), stack.partitions) for t in triggers}) == stack.partitions
        # Three triggers again (absorbed by the open instance), then SIGKILL a worker halfway.
        triggers += [trigger(f"s{i}", t0 + 3.2 + i * 0.1, "oncall", f"again-{i}") for i in (0, 2, 4)]
        at_wall_clock(sink, triggers, on={15: workers[1].kill})
        stack.wait_ready([workers[0]])
        # Claims and resolves once the survivor owns everything, each well between two pages.
        now = time.time()
        assert now + 5 < t0 + PAGE_EVERY - 1, "too slow: the comparison below would race the second pages"
        later = [
            {
                "type": "claim",
                "at": iso_ms(now + i * 0.01),
                "incident_id": f"s{i}",
                "owner": "bob",
                "event_id": f"claim-{i}",
            }
            for i in range(0, 30, 3)
        ]
        later += [
            {"type": "resolve", "at": iso_ms(now + 0.5 + i * 0.01), "incident_id": f"s{i}", "event_id": f"resolve-{i}"}
            for i in range(1, 30, 4)
        ]
        later += [{"type": "unclaim", "at": iso_ms(now + 1.0), "incident_id": "s3", "event_id": "unclaim-3"}]
        later.sort(key=lambda e: e["at"])
        at_wall_clock(sink, later)
    finally:
        sink.close()
    try:
        # Wait for the processor's audit records of the last events (written with their summaries).
        def audits_done(records: list[tuple[str, dict[str, Any], int]]) -> bool:
            kinds = [v.get("kind") for _, v, _ in records]
            return kinds.count("claimed") == 10 and kinds.count("resolved") == 8 and "unclaimed" in kinds

        stack.read([stack.topics.outcomes], until=audits_done, timeout=90)
        moment = int(time.time() * 1_000_000)
        assert moment < to_us_s(t0 + PAGE_EVERY - 1)
        status, answer = request(api, "/v1/incidents?status=open&limit=500", APP_KEY)
        assert status == 200, answer
        live_open = {s["incident_id"]: same_times(listed_view(s)) for s in answer["incidents"]}
        replayed = expected_at(stack.config, triggers + later, moment)
        replay_open = {k: same_times(v) for k, v in replayed.items() if v["status"] not in ("resolved", "none")}
        assert len(replay_open) == 30 - 8 and answer["total"] == 22
        differing = {
            k: {f: (live_open.get(k, {}).get(f), v.get(f)) for f in v if live_open.get(k, {}).get(f) != v[f]}
            for k, v in replay_open.items()
            if live_open.get(k) != v
        }
        assert live_open == replay_open, differing
        assert {s["status"] for s in answer["incidents"]} == {"escalating", "claimed"}
        assert sum(1 for s in answer["incidents"] if s["absorbed"]) == 3

        status, resolved = request(api, "/v1/incidents?status=resolved&limit=500", APP_KEY)
        assert status == 200
        assert sorted(s["incident_id"] for s in resolved["incidents"]) == sorted(
            k for k, v in replayed.items() if v["status"] == "resolved"
        )

        # The CLI reads the same topic.
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamproc.cli",
                "incidents",
                "--bootstrap",
                stack.bootstrap,
                "--json",
                "--application",
                "app",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "STREAMPROC_NAMESPACE": stack.namespace},
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        listed = [json.loads(line) for line in cli.stdout.splitlines()]
        assert {s["incident_id"]: same_times(listed_view(s)) for s in listed} == replay_open

        # Another application's key sees none of them; /ui wants its token.
        status, other = request(api, "/v1/incidents?status=all", OTHER_KEY)
        assert status == 200 and other["incidents"] == [] and other["total"] == 0
        assert request(api, "/v1/incidents/s0", OTHER_KEY)[0] == 404
        assert request(api, "/v1/incidents/s0", APP_KEY)[0] == 200
        assert request(api, "/ui")[0] == 401
        assert request(api, "/ui", OTHER_KEY)[0] == 401
        status, page = request(api, "/ui", UI_TOKEN)  # as a bearer token
        assert status == 200 and b'data-incident="s0"' in page and b'data-incident="s1"' not in page
    finally:
        api.stop()


def to_us_s(seconds: float) -> int:
    return int(seconds * 1_000_000)


def status_records(stack: Stack, until: Any, timeout: float = 90) -> list[tuple[str, dict[str, Any] | None, int]]:
    """(key, summary or None for a tombstone, append time ms) of the status topic, from its start,
    until `until(records)` holds (AssertionError otherwise); `until=None`: up to its end now."""
    return read(
        stack.bootstrap,
        stack.topics.status,
        until,
        convert=lambda r: ((r.key or b"").decode(), r.json, r.timestamp),
        timeout=timeout,
    )


def wait_committed(stack: Stack, key: bytes, timeout: float = 30) -> None:
    """Until the workers' group has committed the events partition of `key` up to its end."""
    from confluent_kafka import Consumer, TopicPartition

    partition = TopicPartition(stack.topics.events, partition_for(key, stack.partitions))
    consumer = Consumer(
        {"bootstrap.servers": stack.bootstrap, "group.id": stack.namespace, "enable.auto.commit": False}
    )
    try:
        _, end = consumer.get_watermark_offsets(partition, timeout=10)
        wait_until(
            lambda: consumer.committed([partition], timeout=10)[0].offset >= end,
            timeout,
            "the events were not committed",
        )
    finally:
        consumer.close()


def test_a_resolved_incidents_tombstone_survives_a_sigkill(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The worker that owns the incident writes the tombstone `status.resolved_retention` after the
    resolved summary, even when the worker that resolved it was SIGKILLed in between."""
    config = CONFIG + "status:\n  resolved_retention: 10\n"
    with live_stack(kafka_bootstrap, tmp_path, config) as stack:
        first = stack.start_worker("w0")
        stack.wait_ready()
        now = time.time()
        stack.produce(trigger("gone", now, "oncall", "t-gone"))
        stack.produce({"type": "resolve", "at": iso_ms(now + 0.5), "incident_id": "gone", "event_id": "r-gone"})
        stack.flush()
        resolved = status_records(stack, lambda rs: any(v and v["status"] == "resolved" for _, v, _ in rs))
        # Once w0 has committed both events (so the next worker does not apply them again: the
        # tombstone must come from the deadline in the table), SIGKILL it before the tombstone is due.
        wait_committed(stack, b"gone")
        first.kill()
        current = status_records(stack, None)
        assert all(v is not None for _, v, _ in current)  # no tombstone yet
        summary = next(v for _, v, _ in resolved if v and v["status"] == "resolved")
        stack.start_worker("w1")
        records = status_records(stack, lambda rs: any(k == "gone" and v is None for k, v, _ in rs))
        tombstone_ms = next(ts for k, v, ts in records if k == "gone" and v is None)
        from streamproc.timeutil import parse_time

        # A record's timestamp is in whole milliseconds (the producer's clock, cut down): a tombstone
        # written in the very millisecond of the deadline carries that millisecond.
        assert tombstone_ms >= to_us(parse_time(summary["expires_at"])) // 1000
        # (The trigger and the resolve may share a batch: one summary, resolved. The new worker may
        # repeat what w0 did not commit: the resolved summary again, with a later deadline.)
        before = [v["status"] for k, v, _ in records if k == "gone" and v is not None]
        assert before[-1] == "resolved" and set(before) <= {"escalating", "resolved"}
