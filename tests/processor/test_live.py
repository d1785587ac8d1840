"""The stream processor on the real broker: conformance with replay, claims, failover, scale-out.

Every test here runs real `streamproc worker` processes (Faust, RocksDB tables) in their own
namespace on the session broker.
"""

from __future__ import annotations

import json
import signal
import statistics
import threading
import time
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer

from streamproc.kafka.clients import producer_config
from streamproc.kafka.topics import partition_for
from tests.harness import Stack, iso_ms, replay_outcomes, wait_until
from tests.processor.scenario import CONFIG, canonical, trigger

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def play(stack: Stack, timeline: list[tuple[float, dict[str, Any]]]) -> None:
    """Produce each event when the wall clock reaches its offset (events carry their own `at`): the
    sleeps are the scenario's timeline."""
    start = time.time()
    for offset, event in sorted(timeline, key=lambda row: row[0]):
        time.sleep(max(0.0, start + offset - time.time()))
        stack.produce(event)
        stack.flush()


def test_live_outcomes_equal_replay_including_at(stack: Stack) -> None:
    stack.start_worker("w1")
    stack.wait_ready()
    t0 = time.time() + 1.0
    events: list[tuple[float, dict[str, Any]]] = []
    for i in range(6):
        events.append((1.0 + i * 0.3, trigger(f"c{i}", t0 + i * 0.3)))
    # c1 claimed between repeats, c2 claimed and unclaimed, c3 resolved, c4 triggered twice (absorbed)
    events.append((4.0, {"type": "claim", "at": iso_ms(t0 + 3.0), "incident_id": "c1", "owner": "alice"}))
    events.append((4.2, {"type": "claim", "at": iso_ms(t0 + 3.2), "incident_id": "c2", "owner": "bob"}))
    events.append((5.5, {"type": "unclaim", "at": iso_ms(t0 + 4.5), "incident_id": "c2"}))
    events.append((4.4, {"type": "resolve", "at": iso_ms(t0 + 3.4), "incident_id": "c3"}))
    events.append((2.5, trigger("c4", t0 + 1.5)))
    # each event is produced when the wall clock reaches its `at`
    timeline = events
    play(stack, timeline)
    expected = replay_outcomes(stack.config, [e for _, e in sorted(timeline, key=lambda r: r[1]["at"])])
    wanted = set(canonical(expected))
    got = stack.outcomes(until=lambda recs: {json.dumps(v, sort_keys=True) for _, v, _ in recs} >= wanted, timeout=40)
    live = [o for o, _ in got]
    assert canonical(live) == canonical(expected)
    lateness = sorted(ts - _ms(o["at"]) for o, ts in got)
    print(
        f"\nconformance: {len(expected)} outcomes equal replay; append time minus `at`: "
        f"p50 {statistics.median(lateness):.0f} ms, max {lateness[-1]:.0f} ms"
    )


def _ms(text: str) -> float:
    from streamproc.timeutil import parse_time, to_us

    return to_us(parse_time(text)) / 1000


def test_claim_between_repeats_stops_the_next_repeat(stack: Stack) -> None:
    stack.start_worker("w1")
    stack.wait_ready()
    t0 = time.time()
    stack.produce(trigger("k1", t0, plan="slow"))
    stack.flush()
    # Pages at t0 and t0+2 (2 s apart): the claim goes out once the second is there, before t0+4.
    stack.wait_for([stack.topics.messages("sms")], lambda recs: len(recs) >= 2, timeout=20)
    claim_at = time.time()
    assert claim_at < t0 + 3.5, "too slow: the claim would race the page at t0+4"
    stack.produce({"type": "claim", "at": iso_ms(claim_at), "incident_id": "k1", "owner": "bob"})
    stack.flush()
    stack.wait_for([stack.topics.outcomes], lambda recs: any(v.get("kind") == "claimed" for _, v, _ in recs))
    # The scenario: the clock passes the repeats the claim cancelled (t0+4 and t0+6).
    time.sleep(max(0.0, t0 + 6.5 - time.time()))
    got = [o for o, _ in stack.outcomes(until=lambda recs: True, timeout=10)]
    ats = sorted(_ms(o["at"]) / 1000 for o in got if o["kind"] == "message")
    assert len(ats) == 2, got
    assert all(a < claim_at for a in ats)


def test_failover_no_escalation_is_lost_when_a_worker_is_killed(stack: Stack) -> None:
    workers = [stack.start_worker(f"w{i}") for i in range(3)]
    stack.wait_ready()
    t0 = time.time()
    timeline = [(i * 0.2, trigger(f"f{i}", t0 + i * 0.2)) for i in range(40)]
    # kill one worker in the middle of the stream
    half = len(timeline) // 2
    play(stack, timeline[:half])
    workers[1].kill()
    play(stack, [(0.0, e) for _, e in timeline[half:]])
    expected = replay_outcomes(stack.config, [e for _, e in timeline])
    expected_ids = {o["message_id"] for o in expected if o["kind"] == "message"}
    records = stack.read(
        [stack.topics.messages(m) for m in ("sms", "email", "call")],
        until=lambda recs: {v["message_id"] for _, v, _ in recs} >= expected_ids,
        timeout=90,
    )
    delivered = Counter(v["message_id"] for _, v, _ in records)
    missing = expected_ids - set(delivered)
    duplicated = sum(c - 1 for c in delivered.values() if c > 1)
    unexpected = set(delivered) - expected_ids
    print(
        f"\nfailover: expected {len(expected_ids)}, delivered {len(set(delivered))} distinct "
        f"({sum(delivered.values())} records), missing {len(missing)}, duplicated {duplicated}, "
        f"unexpected {len(unexpected)}"
    )
    assert not missing
    assert not unexpected


def test_takeovers_process_every_record_that_arrived_while_partitions_changed_hands(stack: Stack) -> None:
    """Issue 14: Faust sought a taken-over partition to its committed offset only after resuming it,
    and threw away what it had fetched in between: triggers that arrived on a dead worker's
    partitions before the group noticed were never processed. Here triggers arrive all the time
    while workers are killed and restarted, so every takeover has records waiting. Without the
    fixes in `faustfix.py` this lost records in 2 of 2 runs here."""
    workers = {name: stack.start_worker(name) for name in ("w0", "w1", "w2")}
    stack.wait_ready()
    sent: list[dict[str, Any]] = []
    stop = threading.Event()

    def stream() -> None:  # one trigger every 25 ms, each in time order
        producer = Producer(producer_config(stack.bootstrap))
        while not stop.is_set():
            event = trigger(f"t{len(sent)}", time.time(), plan="once")
            producer.produce(stack.topics.incidents, key=event["incident_id"].encode(), value=json.dumps(event))
            producer.poll(0)
            sent.append(event)
            time.sleep(0.025)  # the scenario: a trigger every 25 ms
        assert producer.flush(30) == 0

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        for name in ("w1", "w2", "w0"):
            workers[name].kill()  # its partitions wait, with records arriving, until the group notices
            stack.wait_ready()
            workers[name] = stack.start_worker(name)  # and a rebalance that hands them back
            stack.wait_ready()
    finally:
        stop.set()
        thread.join()
    expected = {o["message_id"] for o in replay_outcomes(stack.config, sent) if o["kind"] == "message"}
    assert len(expected) == len(sent)
    records = stack.read(
        [stack.topics.messages("sms")], until=lambda recs: {v["message_id"] for _, v, _ in recs} >= expected, timeout=60
    )
    missing = expected - {v["message_id"] for _, v, _ in records}
    print(f"\ntakeovers: {len(sent)} triggers during 6 rebalances, missing {len(missing)}")
    assert not missing


def test_a_claim_waiting_in_the_backlog_is_applied_before_the_pages_that_fell_due_meanwhile(stack: Stack) -> None:
    """Spec §3 across a takeover: pages that fell due while a partition had no owner are sent by the
    new owner only after it has read the claims that arrived meanwhile."""
    workers = [stack.start_worker("w0"), stack.start_worker("w1")]
    stack.wait_ready()
    status = workers[1].status()
    assert status is not None
    ids = [
        i for i in (f"b{n}" for n in range(200)) if partition_for(i.encode(), stack.partitions) in status["partitions"]
    ][:6]
    t0 = time.time()
    events = [trigger(i, t0, plan="slow") for i in ids]  # bob at t0, t0+2, t0+4, ... t0+12
    for event in events:
        stack.produce(event)
    stack.flush()
    stack.wait_for(  # each incident's first page, from w1
        [stack.topics.messages("sms")], lambda recs: {v["incident_id"] for _, v, _ in recs} >= set(ids)
    )
    workers[1].kill()
    # The scenario: the pages at t0+2 and t0+4 fall due with nobody to send them.
    time.sleep(max(0.0, t0 + 4.5 - time.time()))
    claim_at = time.time()
    claims = [{"type": "claim", "at": iso_ms(claim_at), "incident_id": i, "owner": "bob"} for i in ids]
    for claim in claims:
        stack.produce(claim)
    stack.flush()
    stack.wait_ready([workers[0]])
    expected = replay_outcomes(stack.config, events + claims)
    expected_ids = {o["message_id"] for o in expected}
    stack.read(
        [stack.topics.messages("sms")],
        until=lambda recs: {v["message_id"] for _, v, _ in recs} >= expected_ids,
        timeout=40,
    )
    # Every claim applied (its audit is written after the outputs of what the survivor read before
    # it): a page sent ahead of its claim is on the topic by now, and none comes after it.
    stack.wait_for(
        [stack.topics.outcomes],
        lambda recs: {v["incident_id"] for _, v, _ in recs if v.get("kind") == "claimed"} >= set(ids),
        timeout=40,
    )
    got = stack.read([stack.topics.messages("sms")], until=lambda recs: True, timeout=10)
    late = sorted({v["at"] for _, v, _ in got if _ms(v["at"]) >= claim_at * 1000})
    print(
        f"\nbacklog: {len(expected)} pages expected, {len({v['message_id'] for _, v, _ in got})} sent, "
        f"after the claim: {late}"
    )
    assert not late
    assert set(canonical([v for _, v, _ in got])) == set(canonical(expected))


def test_scale_out_moves_partitions_and_escalations_to_the_new_worker(stack: Stack) -> None:
    first = stack.start_worker("w1")
    stack.wait_ready()
    t0 = time.time()
    timeline = [(i * 0.05, trigger(f"s{i}", t0 + i * 0.05, plan="slow")) for i in range(24)]
    play(stack, timeline)
    second = stack.start_worker("w2")
    stack.wait_ready()
    owned = second.status()
    assert owned is not None and owned["partitions"], owned
    expected = replay_outcomes(stack.config, [e for _, e in timeline])
    expected_ids = {o["message_id"] for o in expected if o["kind"] == "message"}
    records = stack.read(
        [stack.topics.messages("sms")],
        until=lambda recs: {v["message_id"] for _, v, _ in recs} >= expected_ids,
        timeout=60,
    )
    assert expected_ids <= {v["message_id"] for _, v, _ in records}
    after = second.status()
    assert after is not None and after["processed"] > 0
    print(
        f"\nscale-out: w2 took partitions {owned['partitions']} and processed {after['processed']} records; "
        f"w1 kept {first.status()['partitions'] if first.status() else '?'}"
    )


def test_bad_input_goes_to_the_dead_letter_topic_and_the_agent_keeps_going(stack: Stack) -> None:
    stack.start_worker("w1")
    stack.wait_ready()
    now = time.time()
    stack.produce_raw(b"junk", b"{not json")
    stack.produce_raw(b"x1", json.dumps({"type": "trigger", "incident_id": "x1", "application": "app"}).encode())
    stack.produce({**trigger("x2", now), "plan": "no-such-plan"})
    stack.produce({**trigger("x3", now), "application": "nope"})
    stack.produce(trigger("ok", now))
    stack.flush()
    letters = stack.read([stack.topics.deadletter], until=lambda recs: len(recs) >= 4, timeout=30)
    reasons = {v["key"]: v["reason"] for _, v, _ in letters}
    assert set(reasons) == {"junk", "x1", "x2", "x3"}, reasons
    assert "json" in reasons["junk"].lower()
    assert reasons["x1"].startswith("plan:")
    assert reasons["x2"].startswith("plan: unknown plan")
    assert reasons["x3"].startswith("application: unknown application")
    assert {v["value"] for _, v, _ in letters} >= {"{not json"}
    got = stack.outcomes(until=lambda recs: any(o.get("incident_id") == "ok" for _, o, _ in recs), timeout=30)
    assert {o["incident_id"] for o, _ in got} == {"ok"}


def test_sighup_reloads_the_config_and_open_instances_keep_their_plan(stack: Stack) -> None:
    worker = stack.start_worker("w1")
    stack.wait_ready()
    t0 = time.time()
    stack.produce(trigger("old", t0, plan="slow"))  # bob, every 2 s
    stack.flush()
    stack.wait_for([stack.topics.messages("sms")], lambda recs: len(recs) >= 1, timeout=20)  # opened
    mark = len(worker.log_text())
    stack.config.write_text(
        CONFIG.replace(
            "target: bob, priority: high, template: t, repeat: 6",
            "target: carol, priority: high, template: t, repeat: 6",
        )
    )
    worker.signal(signal.SIGHUP)
    wait_until(lambda: "config reloaded" in worker.log_text()[mark:], 20, "the worker reloaded its config")
    t1 = time.time()
    stack.produce(trigger("new", t1, plan="slow"))
    stack.flush()
    got = stack.outcomes(until=lambda recs: sum(1 for _, o, _ in recs if o.get("kind") == "message") >= 14, timeout=40)
    users = {(o["incident_id"], o["user"]) for o, _ in got if o["kind"] == "message"}
    assert users == {("old", "bob"), ("new", "carol")}, users
    assert worker.alive


def test_an_event_without_at_takes_its_record_timestamp(stack: Stack) -> None:
    stack.start_worker("w1")
    stack.wait_ready()
    event = trigger("noat", time.time())
    del event["at"]
    stamp_ms = int(time.time() * 1000) - 60_000  # a record time clearly different from "now"
    stack.producer.produce(stack.topics.incidents, key=b"noat", value=json.dumps(event).encode(), timestamp=stamp_ms)
    stack.flush()
    got = stack.outcomes(until=lambda recs: len(recs) >= 1, timeout=30)
    firsts = [o for o, _ in got if o["kind"] == "message" and o["repeat"] == 0 and o["step"] == 1]
    assert firsts and {_ms(o["at"]) for o in firsts} == {stamp_ms}


def test_a_quick_restart_keeps_its_partitions_without_rebalancing_the_others(stack: Stack) -> None:
    # Static membership (instance id = worker name): a restart within the session timeout
    # gets the same partitions back and the other workers never stop.
    first, other = stack.start_worker("w1"), stack.start_worker("w2")
    stack.wait_ready()
    t0 = time.time()
    stack.produce(trigger("r1", t0, plan="slow"))
    stack.flush()
    before = (first.status(), other.status())
    assert before[0] is not None and before[1] is not None
    mark = len(other.log.read_text())
    first.stop()
    again = stack.start_worker("w1")
    stack.wait_ready([again, other])
    after = (again.status(), other.status())
    assert after[0] is not None and after[1] is not None
    assert (after[0]["partitions"], after[1]["partitions"]) == (before[0]["partitions"], before[1]["partitions"])
    assert "Revoking previously assigned partitions" not in other.log.read_text()[mark:]
    # and the escalation that was running goes on: all 7 sends of the slow plan arrive
    expected = {
        o["message_id"]
        for o in replay_outcomes(stack.config, [trigger("r1", t0, plan="slow")])
        if o["kind"] == "message"
    }
    got = stack.read(
        [stack.topics.messages("sms")], until=lambda recs: {v["message_id"] for _, v, _ in recs} >= expected, timeout=40
    )
    assert expected <= {v["message_id"] for _, v, _ in got}
