"""How a stage's batch becomes records to produce, and the rule that a batch is handled to its end.

Every stage takes the records that are there (up to `batch_max`, waiting at most `batch_within`
for more), enqueues all its outputs, awaits every acknowledgement once, and only then writes its
table; Faust acknowledges (and may commit) a batch's records only after the stage has finished
with the batch. So "acknowledged before the state is written, committed after both" holds for a
batch as it did for each record.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Iterable
from typing import NoReturn

from streamproc.processor.producer import Record
from streamproc.processor.records import Output

log = logging.getLogger("streamproc.worker")

Headers = list[tuple[str, bytes]] | None


def records(items: Iterable[Output], headers: Headers = None) -> list[Record]:
    """The records to produce for `items`, each with `headers` (the correlation id) and its own."""
    return [
        (o.topic, o.key, o.value, o.partition, [*(headers or ()), *o.headers] if o.headers else headers) for o in items
    ]


async def whole(batch_done: Awaitable[None]) -> None:
    """Handle a batch to its end. Faust acknowledges a batch's records as the agent leaves it,
    handled or not, and then commits them: a stopping worker (the agent cancelled) first
    finishes the batch, and an error while handling one ends the process instead of letting
    its records be committed unhandled (they are read again after the restart)."""
    task = asyncio.ensure_future(batch_done)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await asyncio.wait([task])  # the agent was cancelled: finish the batch first
        if task.cancelled() or task.exception() is not None:
            fatal(task)
        raise
    except BaseException:
        fatal(task)


def fatal(task: asyncio.Future[None]) -> NoReturn:
    error = None if task.cancelled() else task.exception()
    log.critical("a batch failed (%r): exiting before Faust commits its records", error, exc_info=error)
    logging.shutdown()
    os._exit(70)
