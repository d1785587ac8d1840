"""`GET /status` of a sender: queue depth and rate-limiter state per mode, as JSON, for
`streamproc inspect senders`; `GET /ready`: 200 once every mode's consumer has its partitions
and has re-read their delivery records (the dedupe set), 503 before (and after a fatal error).

Its own small aiohttp server (`--status-port`, or `STREAMPROC_SENDER_STATUS_PORT`; off by
default), kept apart from the Prometheus `/metrics` endpoint (`metrics.py`): the routes are built
by `routes()` so they can be mounted on any aiohttp application.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from streamproc.config import environment
from streamproc.senders.pipeline import ModePipeline
from streamproc.senders.ratelimit import RateLimits

log = logging.getLogger(__name__)

PORT_ENV = environment.SENDER_STATUS_PORT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status-port",
        type=int,
        default=environment.sender_status_port(),
        help=f"serve JSON /status (queues, rate limiters) on this port (default ${PORT_ENV}, else off)",
    )
    parser.add_argument(
        "--status-host",
        default=environment.web_bind(),
        help="address the status endpoint listens on (default 127.0.0.1, or $STREAMPROC_WEB_BIND)",
    )


def sender_status(pipelines: Mapping[str, ModePipeline], limits: RateLimits, started: float) -> dict[str, Any]:
    modes = []
    for mode, pipeline in sorted(pipelines.items()):
        modes.append(
            {
                "mode": mode,
                "vendor": pipeline.vendor.name,
                "partitions": pipeline.owned_partitions,
                "queued": len(pipeline.lanes),
                "in_flight": pipeline.in_flight,
                "failed": pipeline.failed is not None,
                "rate_limit": limits.snapshot(mode),
            }
        )
    return {"pid": os.getpid(), "uptime_seconds": round(time.monotonic() - started, 1), "modes": modes}


Readiness = Callable[[], Mapping[str, bool]]
"""Per mode: whether its consumer has taken an assignment (and rebuilt its dedupe set) and runs."""


def routes(
    pipelines: Mapping[str, ModePipeline], limits: RateLimits, readiness: Readiness | None = None
) -> list[web.RouteDef]:
    started = time.monotonic()

    async def status(request: web.Request) -> web.Response:
        return web.json_response(sender_status(pipelines, limits, started))

    async def ready(request: web.Request) -> web.Response:
        modes = dict(readiness()) if readiness is not None else {}
        failed = sorted(m for m, p in pipelines.items() if p.failed is not None)
        ok = bool(modes) and all(modes.values()) and not failed
        body = {
            "ready": ok,
            "modes": {
                m: {"assigned": a, "partitions": pipelines[m].owned_partitions}
                for m, a in sorted(modes.items())
                if m in pipelines
            },
        }
        return web.json_response(body, status=200 if ok else 503)

    return [web.get("/status", status), web.get("/ready", ready)]


async def serve(
    pipelines: Mapping[str, ModePipeline], limits: RateLimits, host: str, port: int, readiness: Readiness | None = None
) -> web.AppRunner:
    """Start the status server; returns its runner (`await runner.cleanup()` stops it)."""
    app = web.Application()
    app.add_routes(routes(pipelines, limits, readiness))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("sender status on http://%s:%d/status (and /ready)", host, port)
    return runner
