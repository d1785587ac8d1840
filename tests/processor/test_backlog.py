"""Wake-ups wait for records a stage has not read (`processor/backlog.py`)."""

from __future__ import annotations

from streamproc.kafka import topics
from streamproc.processor.backlog import Backlog


def ends(**by_topic: dict[int, int]) -> object:
    table = {topics.INCIDENTS: by_topic.get("incidents", {}), topics.EVENTS: by_topic.get("events", {})}
    return lambda topic, partition: table[topic].get(partition)


def test_an_events_partition_with_unread_records_is_held() -> None:
    backlog = Backlog()
    backlog.read_event(0, 9)
    backlog.read_event(1, 4)
    highwater = ends(events={0: 10, 1: 7})  # partition 1: offsets 5 and 6 not read yet
    assert backlog.lagging(highwater, range(3)) == {1}  # type: ignore[arg-type]
    backlog.read_event(1, 6)
    assert backlog.lagging(highwater, range(3)) == set()  # type: ignore[arg-type]


def test_unread_incidents_hold_every_partition() -> None:
    backlog = Backlog()
    backlog.read_incident(2, 3)
    backlog.read_event(0, 9)
    assert backlog.lagging(ends(incidents={2: 5}, events={0: 10}), range(3)) == {0, 1, 2}  # type: ignore[arg-type]
    backlog.read_incident(2, 4)
    assert backlog.lagging(ends(incidents={2: 5}, events={0: 10}), range(3)) == set()  # type: ignore[arg-type]


def test_unknown_ends_and_a_rebalance_hold_nothing() -> None:
    backlog = Backlog()
    backlog.read_event(0, 1)
    backlog.read_event(0, 0)  # an older offset never moves it back
    assert backlog.events[0] == 1
    assert backlog.lagging(ends(), range(2)) == set()  # type: ignore[arg-type]
    backlog.clear()
    assert backlog.lagging(ends(events={0: 100}), range(2)) == set()  # type: ignore[arg-type]


def test_records_that_arrive_during_a_wait_do_not_extend_it() -> None:
    backlog = Backlog()
    backlog.read_event(0, 4)
    assert backlog.lagging(ends(events={0: 7}), range(1)) == {0}  # type: ignore[arg-type]
    backlog.read_event(0, 6)  # what was there when the wake-ups fell due is read...
    # ...while two more records came: the held wake-ups run now
    assert backlog.lagging(ends(events={0: 9}), range(1)) == set()  # type: ignore[arg-type]
    # and the next look starts a new wait for those two
    assert backlog.lagging(ends(events={0: 9}), range(1)) == {0}  # type: ignore[arg-type]
