"""Flood control over a finished replay (spec §5, §7): a pure function of the engine's outcomes and
the claim/unclaim/resolve audits, each user's inputs fed in time order.

Users are independent, so each user's timeline runs on its own: the messages flood control can
change, in §4 order, and the status changes of the instances those messages belong to, which at one
instant come before the messages (§3: events apply before the sends scheduled at their instant).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from streamproc.engine.core import Emitted
from streamproc.flood.control import STATUS_KINDS, FloodControl
from streamproc.flood.state import UserFloodState
from streamproc.wire.outcomes import Audit, Message

Item = tuple[tuple[Any, ...], Message | Audit]


def user_timelines(
    control: FloodControl, emitted: Iterable[Emitted], audits: Iterable[tuple[int, Audit]]
) -> tuple[dict[str, list[Item]], list[Emitted]]:
    """Split outcomes into each user's ordered inputs and the outcomes flood control passes by.
    `audits` are (time in µs, audit) in the order the engine applied them."""
    timelines: dict[str, list[Item]] = defaultdict(list)
    passed: list[Emitted] = []
    users_of: dict[tuple[str, int], set[str]] = defaultdict(set)
    for e in emitted:
        o = e.outcome
        if isinstance(o, Message) and control.applies(o):
            timelines[o.user].append(((e.sort_key[0], 1, e.sort_key), o))
            users_of[(o.incident_id, o.instance)].add(o.user)
        else:
            passed.append(e)
    for position, (at, audit) in enumerate(audits):
        if audit.kind not in STATUS_KINDS:
            continue
        for user in users_of.get((audit.incident_id, audit.instance), ()):
            timelines[user].append(((at, 0, position), audit))
    for items in timelines.values():
        items.sort(key=lambda item: item[0])
    return dict(timelines), passed


def run_user(control: FloodControl, user: str, items: Iterable[Item], until_us: int | None) -> list[Emitted]:
    """One user's inputs through flood control; then the batches due by `until_us`, or all of them."""
    state = UserFloodState(user=user)
    out: list[Emitted] = []
    for order, item in items:
        if isinstance(item, Message):
            result = control.on_message(state, item, order[2], in_place=True)
        else:
            result = control.on_status(state, item.incident_id, item.instance, item.kind, order[0], in_place=True)
        out.extend(result.emitted)
    final = control.flush(state, in_place=True) if until_us is None else control.advance(state, until_us, in_place=True)
    out.extend(final.emitted)
    return out


def apply_flood(
    control: FloodControl, emitted: Iterable[Emitted], audits: Iterable[tuple[int, Audit]], until_us: int | None = None
) -> list[Emitted]:
    """The outcomes after flood control: the ones it passes by, then each user's (unordered: sort by
    `sort_key` for §4 order). With `until_us`, batches due at or before it; else every batch."""
    timelines, out = user_timelines(control, emitted, audits)
    for user in sorted(timelines):
        out.extend(run_user(control, user, timelines[user], until_us))
    return out
