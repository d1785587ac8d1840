"""Fairness (round robin by application) and priority (two lanes)."""

from __future__ import annotations

import asyncio

from streamproc.senders.lanes import Lanes, RoundRobin
from tests.senders.helpers import pending


def apps(items: list[object]) -> list[str]:
    return [i.message.application for i in items]  # type: ignore[attr-defined]


def test_round_robin_takes_applications_in_turn() -> None:
    queue = RoundRobin()
    for app, n in (("a", 4), ("b", 2), ("c", 1)):
        for _ in range(n):
            queue.push(pending(application=app, priority="low"))
    order = [queue.pop() for _ in range(len(queue))]
    assert apps(order) == ["a", "b", "c", "a", "b", "a", "a"]
    assert queue.pop() is None


def test_round_robin_keeps_fifo_within_an_application() -> None:
    queue = RoundRobin()
    items = [pending(application="a") for _ in range(3)]
    for item in items:
        queue.push(item)
    assert [queue.pop() for _ in range(3)] == items


def test_flood_does_not_starve_a_newcomer() -> None:
    queue = RoundRobin()
    for _ in range(100):
        queue.push(pending(application="noisy"))
    queue.pop()
    late = pending(application="quiet")
    queue.push(late)
    assert queue.pop() is not late  # noisy's turn had not ended...
    assert queue.pop() is late  # ...but quiet goes right after


def test_urgent_and_high_go_before_medium_and_low() -> None:
    lanes = Lanes()
    lows = [pending(application="noisy", priority=p) for p in ("low", "medium") * 5]
    for item in lows:
        lanes.push(item)
    urgent = pending(application="pager", priority="urgent")
    high = pending(application="noisy", priority="high")
    lanes.push(urgent)
    lanes.push(high)
    assert lanes.pop() is urgent
    assert lanes.pop() is high
    assert [lanes.pop() for _ in range(10)] == lows
    assert lanes.pop() is None and len(lanes) == 0


def test_retry_goes_to_the_front_of_its_application() -> None:
    lanes = Lanes()
    first, second = pending(application="a", priority="low"), pending(application="a", priority="low")
    lanes.push(first)
    lanes.push(second)
    again = lanes.pop()
    lanes.push(again, front=True)  # type: ignore[arg-type]
    assert lanes.pop() is first


def test_remove_if_drops_revoked_partitions() -> None:
    lanes = Lanes()
    keep = [pending(partition=0, application=a) for a in "ab"]
    drop = [pending(partition=1, application=a, priority="urgent") for a in "ab"]
    for item in keep + drop:
        lanes.push(item)
    assert sorted(map(id, lanes.remove_if(lambda p: p.partition == 1))) == sorted(map(id, drop))
    assert len(lanes) == 2 and {lanes.pop(), lanes.pop()} == set(keep)


async def test_get_waits_for_work() -> None:
    lanes = Lanes()
    getter = asyncio.create_task(lanes.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    item = pending()
    lanes.push(item)
    assert await asyncio.wait_for(getter, 1) is item
