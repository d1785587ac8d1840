"""`GET /inspect` on a worker's web server: what `streamproc inspect workers` shows.

Per active partition: open escalations (from the table), scheduled wake-ups and the next one,
and whether its wake-ups are still held by the catch-up after a rebalance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamproc.processor.records import owned_states
from streamproc.processor.schedule import WakeSchedule
from streamproc.timeutil import format_us


def worker_status(
    *,
    instance: str | None,
    url: str,
    ready: bool,
    processed: int,
    actives: set[int],
    standbys: set[int],
    items: Iterable[tuple[bytes | None, bytes | None]],
    partitions: int,
    schedule: WakeSchedule,
    catching_up: set[int],
) -> dict[str, Any]:
    open_by: dict[int, int] = dict.fromkeys(actives, 0)
    for _, partition, state in owned_states(items, partitions, actives):
        if state.is_open:
            open_by[partition] += 1
    wakes = schedule.by_partition()
    rows = []
    for partition in sorted(actives):
        count, earliest = wakes.get(partition, (0, None))
        rows.append(
            {
                "partition": partition,
                "open": open_by.get(partition, 0),
                "wake_ups": count,
                "next_wake": format_us(earliest) if earliest is not None else None,
                "catching_up": partition in catching_up,
            }
        )
    return {
        "instance": instance,
        "url": url,
        "ready": ready,
        "processed": processed,
        "partitions": rows,
        "standby_partitions": sorted(standbys),
    }
