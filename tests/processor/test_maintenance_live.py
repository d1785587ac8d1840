"""Spec §8 on the real broker: a silence made ahead of its window, extended, then ended early;
incidents of several partitions inside and outside it; a heartbeat monitor that expires, recovers
and expires again; two workers, one SIGKILLed while instances are held. Live equals replay, nothing
is lost, and a record written twice is the same record (the senders deliver it once).

Every event is dated when it is produced, and any two that could race (an event and a page it must
precede, a silence change and a trigger it must hold) are at least a second apart (spec §6)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from streamproc.inspect.incident import collect
from streamproc.inspect.reader import TopicReader
from streamproc.kafka.topics import partition_for
from streamproc.timeutil import parse_time, to_us
from tests.harness import Stack, iso_ms, live_stack, replay_outcomes
from tests.processor.scenario import MAINTENANCE_CONFIG, canonical, heartbeat, silence, trigger, unsilence

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MATCH = {"plans": ["quick"], "match_re": {"summary": "disk full in.*"}}
"""Held: plan quick, incidents named in*. Not held: other plans, incidents named out*."""


def key_of(event: dict[str, Any]) -> bytes:
    return str(event.get("incident_id") or event.get("silence_id") or event.get("heartbeat")).encode()


def produce_at_their_time(stack: Stack, events: list[dict[str, Any]]) -> None:
    """Each event when the wall clock reaches its `at`, in `at` order (the sleeps are the scenario's
    timeline)."""
    for event in sorted(events, key=lambda e: to_us(parse_time(e["at"]))):
        time.sleep(max(0.0, to_us(parse_time(event["at"])) / 1e6 - time.time()))
        stack.produce_raw(key_of(event), json.dumps(event).encode())
        stack.flush()


def names(prefix: str, count: int, partitions: int, owners: list[set[int]]) -> list[str]:
    """`count` incident ids with `prefix` on as many partitions as possible, taking turns between the
    workers' partitions (`owners`)."""
    chosen: list[str] = []
    used: set[int] = set()
    for n in range(10_000):
        name = f"{prefix}{n}"
        partition = partition_for(name.encode(), partitions)
        wanted = owners[len(chosen) % len(owners)]
        if partition in wanted and partition not in used:
            chosen.append(name)
            used.add(partition)
            if len(chosen) == count:
                return chosen
    raise AssertionError("no names")


def test_live_equals_replay_with_a_silence_extended_and_ended_early_and_a_monitor(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with live_stack(kafka_bootstrap, tmp_path, MAINTENANCE_CONFIG) as stack:
        workers = [stack.start_worker("w0"), stack.start_worker("w1")]
        stack.wait_ready()
        owned = [set((w.status() or {}).get("partitions", ())) for w in workers]
        assert owned[0] and owned[1], owned
        held = names("in", 5, stack.partitions, owned)  # in1..in5 of the story, on both workers' partitions
        before = ["in-early"]
        t0 = time.time() + 0.5
        # Phase 1: the silence, made 4 s ahead of its window [t0+4, t0+10) and then extended to t0+90;
        # a monitor's first heartbeat (it expires at t0+10.5 with nobody's heartbeat).
        phase1 = [
            silence("mw", t0, t0 + 4, t0 + 10, **MATCH),
            heartbeat(t0 + 0.5),
            trigger(before[0], t0 + 2),  # before the window: pages
            trigger(held[0], t0 + 4.5),
            trigger(held[1], t0 + 5),
            trigger(held[2], t0 + 5.5),
            trigger("out1", t0 + 5.5),  # in the window, not matched: pages
            trigger("in-slow", t0 + 5.5, plan="slow"),  # in the window, another plan: pages
            silence("mw", t0 + 6, t0 + 4, t0 + 90, **MATCH),  # extended
            trigger(held[3], t0 + 6.5),
            trigger("out2", t0 + 8.5),  # and 2.5 s on (stage 1 committed the silences)
        ]
        produce_at_their_time(stack, phase1)
        # SIGKILL a worker while the instances are held; its partitions (states, books, wake-ups)
        # move to the survivor.
        workers[1].kill()
        stack.wait_ready([workers[0]])
        t1 = time.time() + 1.0
        # Phase 2: a claim and a resolve of held instances, one more held trigger, the silence ended
        # early (E = t1+2.5 for those still held), a trigger after it, the monitor's recovery.
        after = [f"in{n}-after" for n in range(3)]
        phase2 = [
            {"type": "claim", "at": iso_ms(t1), "incident_id": held[3], "owner": "bob"},
            {"type": "resolve", "at": iso_ms(t1 + 0.5), "incident_id": held[2]},
            trigger(held[4], t1 + 1),
            heartbeat(t1 + 1.5),  # recovers: resolves what the expiry opened
            unsilence("mw", t1 + 2.5),
            *(trigger(name, t1 + 3.5 + 0.1 * n) for n, name in enumerate(after)),  # after it: pages
        ]
        produce_at_their_time(stack, phase2)
        events = phase1 + phase2

        expected = replay_outcomes(stack.config, events)
        wanted = set(canonical(expected))
        got = stack.outcomes(
            until=lambda recs: {json.dumps(o, sort_keys=True) for _, o, _ in recs} >= wanted, timeout=90
        )
        live = {json.dumps(o, sort_keys=True) for o, _ in got}
        missing, unexpected = wanted - live, live - wanted
        copies: dict[str, set[str]] = defaultdict(set)
        for outcome, _ in got:
            copies[outcome.get("message_id") or json.dumps(outcome, sort_keys=True)].add(
                json.dumps(outcome, sort_keys=True)
            )
        print(
            f"\nsilences live: expected {len(wanted)} outcomes, live {len(live)} distinct in {len(got)} records, "
            f"missing {len(missing)}, unexpected {len(unexpected)}"
        )
        assert not missing, sorted(missing)[:5]
        assert not unexpected, sorted(unexpected)[:5]
        assert all(len(versions) == 1 for versions in copies.values())

        # What the story is about, in replay's (hence live's) outcomes.
        silenced = {o["incident_id"]: o for o in expected if o["kind"] == "silenced"}
        assert set(silenced) == set(held) and {o["silence_id"] for o in silenced.values()} == {"mw"}
        assert len({partition_for(i.encode(), stack.partitions) for i in held} & owned[1]) >= 2
        first_page = {}
        for o in sorted(expected, key=lambda o: to_us(parse_time(o["at"]))):
            if o["kind"] == "message":
                first_page.setdefault(o["incident_id"], o["at"])
        ended = iso_ms(t1 + 2.5)
        assert {i: first_page.get(i) for i in held} == {
            held[0]: ended,
            held[1]: ended,
            held[2]: None,
            held[3]: None,
            held[4]: ended,
        }
        assert {i for i in first_page if not i.startswith("heartbeat")} == {
            *held[:2],
            held[4],
            *before,
            "out1",
            "out2",
            "in-slow",
            *after,
        }
        expiries = sorted(
            o["at"] for o in expected if o["incident_id"] == "heartbeat-backup" and o["kind"] == "message"
        )
        assert expiries == [iso_ms(t0 + 10.5), iso_ms(t1 + 11.5)]

        # `streamproc inspect incident` tells it from the topics: held by mw, started when it ended.
        with TopicReader(stack.bootstrap, progress=False) as reader:
            entries = collect(reader, stack.topics, held[1])
        assert [e.held for e in entries if e.held] == [
            {"instance": 1, "silence_id": "mw", "starts": ended, "status": "started"}
        ]
        assert [e.summary.split(": ")[0] for e in entries if e.kind == "silence moved"] == [
            "#1 silence mw",
            "#1 unsilence mw",
        ]
