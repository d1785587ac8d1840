"""Spec §2: the processor gives the same outcomes whoever produced the events, with whichever
partitioner and key (or none). Each case runs two real workers, SIGKILLs one in the middle of the
stream, and compares everything the survivors wrote with replay of the same events.

Issue 8: with librdkafka's default partitioner (confluent-kafka's and kcat's), escalations used to
stop after their first page, because the wake-ups were produced with murmur2 and landed on a
partition that did not hold the incident's state.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from streamproc.kafka.topics import partition_for
from tests.harness import Stack, iso_ms, replay_outcomes
from tests.harness.stack import event_seconds
from tests.processor.producers import ConfluentSink, KcatSink, KeyOf, Sink, by_host, by_incident, no_key
from tests.processor.scenario import canonical, trigger

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PRODUCERS: dict[str, tuple[Callable[[str, str, KeyOf], Sink], KeyOf]] = {
    "confluent-kafka-defaults": (ConfluentSink, by_incident),
    "kcat": (KcatSink, by_incident),
    "no-key": (ConfluentSink, no_key),
    "keyed-by-host": (ConfluentSink, by_host),
}


def at_wall_clock(sink: Sink, events: list[dict[str, Any]], on: dict[int, Callable[[], None]] | None = None) -> None:
    """Send each event when the wall clock reaches its `at` (the sleep is the scenario's timeline);
    run on[i] just before event i."""
    for i, event in enumerate(events):
        if on and i in on:
            on[i]()
        time.sleep(max(0.0, event_seconds(event) - time.time()))
        sink.send(event)


@pytest.mark.parametrize("producer", list(PRODUCERS))
def test_live_equals_replay_whoever_produced_the_events_with_a_worker_killed(stack: Stack, producer: str) -> None:
    make_sink, key_of = PRODUCERS[producer]
    workers = [stack.start_worker("w0"), stack.start_worker("w1")]
    stack.wait_ready()
    sink = make_sink(stack.bootstrap, stack.topics.incidents, key_of)
    t0 = time.time() + 0.5
    triggers = [trigger(f"p{i}", t0 + i * 0.2, plan="quick" if i % 2 else "slow") for i in range(24)]
    try:
        # SIGKILL one worker halfway through the triggers, then let the survivor take over.
        at_wall_clock(sink, triggers, on={12: workers[1].kill})
        stack.wait_ready([workers[0]])

        # Claims and resolves once the survivor owns everything: a claim stops a slow plan's
        # repeats, a resolve ends one, a claim of a finished quick plan changes nothing. Each is
        # dated half-way between two of its incident's pages (they fall on whole seconds after
        # its trigger), so its trip through both stages cannot race a page.
        def between_pages(i: int, after: float) -> str:
            start = t0 + i * 0.2
            return iso_ms(start + math.ceil(after - start) + 0.5)

        now = time.time()
        later = [
            {"type": "claim", "at": between_pages(i, now), "incident_id": f"p{i}", "owner": "bob"}
            for i in range(0, 24, 3)
        ]
        later += [{"type": "resolve", "at": between_pages(i, now + 1), "incident_id": f"p{i}"} for i in range(2, 24, 6)]
        later.sort(key=lambda e: e["at"])
        at_wall_clock(sink, later)
    finally:
        sink.close()

    expected = replay_outcomes(stack.config, triggers + later)
    wanted = set(canonical(expected))
    got = stack.outcomes(until=lambda recs: {json.dumps(o, sort_keys=True) for _, o, _ in recs} >= wanted, timeout=90)
    copies: dict[str, set[str]] = defaultdict(set)
    for outcome, _ in got:
        copies[outcome.get("message_id") or json.dumps(outcome, sort_keys=True)].add(
            json.dumps(outcome, sort_keys=True)
        )
    live = {json.dumps(o, sort_keys=True) for o, _ in got}
    missing, unexpected = wanted - live, live - wanted
    records = len(got)
    print(
        f"\n{producer}: expected {len(wanted)} outcomes, live {len(live)} distinct in {records} records, "
        f"missing {len(missing)}, unexpected {len(unexpected)}"
    )
    assert not missing, sorted(missing)[:5]
    assert not unexpected, sorted(unexpected)[:5]
    # A record written again after the kill is the same record (same message_id, same content),
    # which the senders deliver once.
    assert all(len(versions) == 1 for versions in copies.values())

    # The producer really did put records where the processor's partitioner would not.
    placed = stack.placed(stack.topics.incidents)
    assert len(placed) == len(triggers) + len(later)
    if key_of is no_key:
        assert {key for _, key, _ in placed} == {None}
    elsewhere = [p for p, _, event in placed if p != partition_for(event["incident_id"].encode(), stack.partitions)]
    assert elsewhere, "every record sits where partition_for would have put it: this case tests nothing"
