"""The escalation stage's parsed states (`escalate.StateCache`): bounded, newest kept."""

from __future__ import annotations

from streamproc.engine.state import IncidentState
from streamproc.processor.escalate import StateCache


def state(name: str) -> IncidentState:
    return IncidentState(incident_id=name)


def test_keeps_the_most_recently_written_up_to_its_size() -> None:
    cache = StateCache(2)
    cache.put(b"a", state("a"))
    cache.put(b"b", state("b"))
    cache.put(b"a", state("a2"))  # written again: now the newest
    cache.put(b"c", state("c"))
    assert cache.get(b"b") is None
    assert cache.get(b"a") is not None and cache.get(b"a").incident_id == "a2"  # type: ignore[union-attr]
    assert cache.get(b"c") is not None
    assert len(cache) == 2


def test_none_forgets_and_size_zero_keeps_nothing() -> None:
    cache = StateCache(5)
    cache.put(b"a", state("a"))
    cache.put(b"a", None)
    assert cache.get(b"a") is None
    off = StateCache(0)
    off.put(b"a", state("a"))
    off.fill([(b"b", state("b"))])
    assert off.get(b"a") is None and off.get(b"b") is None


def test_fill_stops_at_the_size() -> None:
    cache = StateCache(2)
    cache.fill([(b"a", state("a")), (b"b", state("b")), (b"c", state("c"))])
    assert len(cache) == 2 and cache.get(b"c") is None
