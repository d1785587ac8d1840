"""The worker's web pages: `/ready` (probes, tests), `/inspect` (`streamproc inspect workers`),
`/metrics` (Prometheus)."""

from __future__ import annotations

from typing import Any

from streamproc.kafka import topics
from streamproc.processor import metrics
from streamproc.processor.rebalance import Rebalance
from streamproc.processor.runtime import Runtime
from streamproc.processor.status import worker_status


def add_pages(app: Any, runtime: Runtime, rebalance: Rebalance, table: Any, instance_id: str | None) -> None:
    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        body = {
            "ready": runtime.ready,
            "pending": len(runtime.schedule),
            "processed": runtime.processed,
            "partitions": sorted(rebalance.active_partitions(topics.EVENTS)),
            "catching_up": sorted(runtime.catchup.events),
        }
        return web.json(body, status=200 if runtime.ready else 503)

    @app.page("/inspect")
    async def inspect(web: Any, request: Any) -> Any:
        return web.json(
            worker_status(
                instance=instance_id,
                url=str(app.conf.canonical_url),
                ready=runtime.ready,
                processed=runtime.processed,
                actives=rebalance.active_partitions(topics.EVENTS),
                standbys={tp.partition for tp in app.assignor.assigned_standbys()},
                items=list(table.items()),
                partitions=rebalance.partitions,
                schedule=runtime.schedule,
                catching_up=set(runtime.catchup.events),
            )
        )

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE})
