"""The worker's Prometheus metrics, without Kafka: what each output counts as, wake-ups, open
escalations per partition and status."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from streamproc.engine.core import Engine
from streamproc.processor import metrics
from streamproc.processor.records import Tally, on_event_record, on_incident_record
from streamproc.timeutil import parse_time, to_us
from tests.processor.scenario import event_bytes

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("value", "tally"),
    [
        (event_bytes(), Tally("event", "trigger")),
        (event_bytes(type="claim", owner="bob", plan=None), Tally("event", "claim")),
        (b"not json", Tally("dead-letter", "invalid-event")),
        (event_bytes(plan=None), Tally("dead-letter", "invalid-event")),  # "plan: Field required" is not unknown-plan
        (event_bytes(plan="nope"), Tally("dead-letter", "unknown-plan")),
        (event_bytes(application="nope"), Tally("dead-letter", "unknown-application")),
    ],
)
def test_stage_one_outputs_say_what_they_count_as(engine: Engine, value: bytes, tally: Tally) -> None:
    assert [o.tally for o in on_incident_record(engine, None, value, T0, 0, 0, 12)] == [tally]


def test_outcomes_are_counted_by_kind_and_mode_with_their_lateness(engine: Engine) -> None:
    processed = on_event_record(engine, None, event_bytes(), 0, 0, T0)
    tallies = [o.tally for o in processed.outputs if o.tally is not None]
    assert tallies and all(t.metric == "outcome" and t.at_us == T0 for t in tallies)
    modes = {t.mode for t in tallies}
    before = {m: sample("streamproc_worker_outcomes_total", kind="message", mode=m) for m in modes}
    lateness = sample("streamproc_worker_send_lateness_seconds_count")
    late_sum = sample("streamproc_worker_send_lateness_seconds_sum")
    metrics.count(processed.outputs, T0 + 250_000)
    for mode in modes:
        expected = before[mode] + sum(1 for t in tallies if t.mode == mode)
        assert sample("streamproc_worker_outcomes_total", kind="message", mode=mode) == expected
    assert sample("streamproc_worker_send_lateness_seconds_count") == lateness + len(tallies)
    assert sample("streamproc_worker_send_lateness_seconds_sum") == pytest.approx(late_sum + 0.25 * len(tallies))


def test_wakeups_more_than_a_second_after_due_are_late() -> None:
    due, late = sample("streamproc_worker_wakeups_due_total"), sample("streamproc_worker_wakeups_late_total")
    metrics.wakeup(T0, T0 + 1_000_000)
    assert (sample("streamproc_worker_wakeups_due_total"), sample("streamproc_worker_wakeups_late_total")) == (
        due + 1,
        late,
    )
    metrics.wakeup(T0, T0 + 1_000_001)
    assert sample("streamproc_worker_wakeups_late_total") == late + 1


def test_open_escalations_per_partition_and_status() -> None:
    opened = metrics.OpenEscalations()

    def gauge(partition: int, status: str) -> float | None:
        return REGISTRY.get_sample_value(
            "streamproc_worker_escalations_open", {"partition": str(partition), "status": status}
        )

    opened.clear()
    opened.set("a", 1, "escalating")
    opened.set("b", 1, "escalating")
    opened.set("c", 2, "claimed")
    assert (gauge(1, "escalating"), gauge(2, "claimed")) == (2, 1)
    opened.set("a", 1, "exhausted")
    opened.set("b", 1, "resolved")
    assert (gauge(1, "escalating"), gauge(1, "exhausted")) == (0, 1)
    opened.set("b", 1, None)  # not open, not known: nothing changes
    opened.drop_partitions({1})
    assert (gauge(1, "exhausted"), gauge(2, "claimed")) == (None, 1)
    opened.clear()
    assert gauge(2, "claimed") is None
