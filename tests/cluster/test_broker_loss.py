"""Issue 19: streamproc on a three-node cluster (replication 3, min.insync.replicas 2) loses no page
and sends none twice when a broker is SIGKILLed for good mid-escalation, or when all three are
restarted one at a time under load.

Each test runs two workers, an SMS sender into a local Twilio fake and the API, and compares what
Twilio accepted with replay of the same events. The figures (lateness, stall after the kill) are
printed, not asserted: speed is the benchmarks' business.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.timeutil import parse_time, to_us
from tests.cluster.conftest import KafkaCluster
from tests.cluster.pages import (
    USERS,
    WAIT,
    FullStack,
    compare,
    config_text,
    expected_pages,
    received_pages,
    start_full,
)
from tests.fakes import FakeTwilio
from tests.fakes.http import serving
from tests.harness import iso_ms, live_stack, wait_until
from tests.processor.producers import ConfluentSink, by_incident
from tests.processor.test_producers import at_wall_clock

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.cluster]


@pytest.fixture
def full(kafka_cluster: KafkaCluster, tmp_path: Path) -> Iterator[FullStack]:
    with serving(FakeTwilio()) as twilio, live_stack(kafka_cluster.bootstrap, tmp_path, config_text(twilio)) as stack:
        yield start_full(stack, twilio)


def trigger(n: int, at: float) -> dict[str, Any]:
    return {
        "type": "trigger",
        "at": iso_ms(at),
        "incident_id": f"i{n}",
        "application": "app",
        "plan": f"p{n % USERS}",
        "context": {"summary": f"incident {n}"},
    }


def between_pages(start: float, after: float) -> str:
    """Half-way between two pages of an incident triggered at `start` (pages fall every `WAIT`
    seconds after it), and after `after`: its trip through both stages does not race a page."""
    return iso_ms(start + WAIT * math.ceil((after - start) / WAIT) + WAIT / 2)


def coordinator(cluster: KafkaCluster, group: str) -> int:
    admin = cluster.admin()  # kept referenced until the future is done (its client answers it)
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return int(description.coordinator.id)


class LeaderWatch(threading.Thread):
    """Notes when Kafka has moved every partition led by `victim` elsewhere (its own detection:
    the controller fences a broker after broker.session.timeout.ms without a heartbeat)."""

    def __init__(self, cluster: KafkaCluster, victim: int, namespace: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.victim, self.namespace = cluster, victim, namespace
        self.moved_at: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        admin = self.cluster.admin()
        while not self.stop.is_set():
            try:
                topics = admin.list_topics(timeout=2).topics
            except Exception:
                continue
            partitions = [
                p for name, t in topics.items() if name.startswith(self.namespace) for p in t.partitions.values()
            ]
            if partitions and all(p.leader not in (self.victim, -1) for p in partitions):
                self.moved_at = time.time()
                return
            time.sleep(0.1)


def test_a_broker_killed_for_good_mid_escalation_loses_no_page_and_sends_none_twice(
    kafka_cluster: KafkaCluster, full: FullStack
) -> None:
    stack = full.stack
    for name, topic in kafka_cluster.admin().list_topics(timeout=10).topics.items():
        if name.startswith(stack.namespace):
            assert all(len(p.replicas) == 3 for p in topic.partitions.values()), name
    # The worst broker to lose: the one coordinating the workers' group.
    victim = coordinator(kafka_cluster, stack.namespace)
    watch = LeaderWatch(kafka_cluster, victim, stack.namespace)
    sink = ConfluentSink(stack.bootstrap, stack.topics.incidents, by_incident)
    t0 = time.time() + 0.5
    triggers = [trigger(n, t0 + n * 0.2) for n in range(40)]
    killed: list[float] = []

    def kill() -> None:
        killed.append(time.time())
        kafka_cluster.kill(victim)
        watch.start()

    try:
        at_wall_clock(sink, triggers, on={20: kill})
    finally:
        sink.close()
    result = compare(full, triggers + claim_some(full, triggers))
    watch.stop.set()
    kill_at = killed[0]
    moved = f"+{watch.moved_at - kill_at:.1f} s" if watch.moved_at else "not seen"
    print(
        f"\nbroker {victim} SIGKILLed at +{kill_at - t0:.1f} s; Kafka moved its leaders {moved} after; "
        f"pages flowing again {result.flowing_again(kill_at) - kill_at:.1f} s after the kill; "
        f"{result.summary(kill_at)}"
    )
    assert result.missing == 0 and result.extra == 0, result.summary(kill_at)


def wait_caught_up(full: FullStack, events: list[dict[str, Any]], timeout: float = 90.0, steady: float = 3.0) -> None:
    """Until, for `steady` seconds on end, Twilio has had every page replay of `events` has due more
    than half a second ago: the backlog after a stall is drained, not just reached once (a claim
    sent while the stages still worked through it took over a second to arrive)."""
    expected = expected_pages(full, events)
    deadline = time.monotonic() + timeout
    since: float | None = None
    while time.monotonic() < deadline:
        received = received_pages(full.twilio)
        now = time.time()
        if all(len(received.get(i, [])) >= sum(1 for at in ats if at < now - 0.5) for i, ats in expected.items()):
            since = time.monotonic() if since is None else since
            if time.monotonic() - since >= steady:
                return
        else:
            since = None
        time.sleep(0.1)
    raise TimeoutError("pages due before now did not keep arriving on time")


def claim_some(full: FullStack, triggers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claims of every fourth incident through the API, dated after the pages due until now have
    arrived (as a person claims after the page), each between two pages of its incident. Returns
    the events it sent (the claims and a probe trigger)."""
    wait_caught_up(full, triggers)
    # A probe through the same door first, paged before the claims are dated: the API's producer
    # had written nothing while the leaders moved, and its first write after them (stale metadata,
    # a retry on the new leader) took a second once, longer than a claim's margin before its page.
    probe = trigger(len(triggers) + 1000, time.time())
    assert full.post(probe) == 202
    wait_until(
        lambda: any(r.form["Body"].startswith(f"{probe['incident_id']}:") for r in full.twilio.sms),
        30,
        "the probe trigger was paged",
    )
    now = time.time()
    claims = [
        {
            "type": "claim",
            "at": between_pages(to_us(parse_time(t["at"])) / 1e6, now + 0.5),
            "incident_id": t["incident_id"],
            "owner": "bob",
        }
        for t in triggers[::4]
    ]
    claims.sort(key=lambda e: e["at"])
    # Each instant's claims in one request when the clock reaches it: one after another, the last
    # of them could reach the processor after the page it is half a second ahead of.
    for at in dict.fromkeys(c["at"] for c in claims):
        time.sleep(max(0.0, to_us(parse_time(at)) / 1e6 - time.time()))  # the scenario's timeline
        assert full.post([c for c in claims if c["at"] == at]) == 202
    return [probe, *claims]


class Paced(threading.Thread):
    """Triggers at `rate` a second, each produced when the wall clock reaches its time, until stopped."""

    def __init__(self, full: FullStack, rate: float) -> None:
        super().__init__(daemon=True)
        self.sink = ConfluentSink(full.stack.bootstrap, full.stack.topics.incidents, by_incident)
        self.rate = rate
        self.triggers: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        start = time.time() + 0.2
        try:
            n = 0
            while not self.stop.is_set():
                event = trigger(n, start + n / self.rate)
                time.sleep(max(0.0, start + n / self.rate - time.time()))  # the scenario: paced triggers
                self.sink.send(event)
                self.triggers.append(event)
                n += 1
            self.sink.close()
        except BaseException as exc:  # reported by the test
            self.error = exc


def test_a_rolling_restart_of_every_broker_under_load_loses_no_page_and_sends_none_twice(
    kafka_cluster: KafkaCluster, full: FullStack
) -> None:
    paced = Paced(full, rate=2.0)
    paced.start()
    marks = []
    for node in (1, 2, 3):  # one at a time, each back in sync before the next, as an operator rolls a cluster
        started = time.time()
        kafka_cluster.stop(node)
        kafka_cluster.start(node)
        kafka_cluster.wait_in_sync()
        marks.append(f"node {node} {time.time() - started:.1f} s")
    paced.stop.set()
    paced.join(30)
    assert paced.error is None, paced.error
    result = compare(full, paced.triggers + claim_some(full, paced.triggers))
    print(f"\nrolling restart ({', '.join(marks)}), {len(paced.triggers)} incidents: {result.summary()}")
    assert result.missing == 0 and result.extra == 0, result.summary()
