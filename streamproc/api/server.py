"""The aiohttp application: routes of every door, the middlewares around them, and `run_api`.

Middlewares, outermost first:
- metrics: requests by route and status, and the latency of accepted writes (prometheus_client);
- errors: `ApiError` -> its JSON answer; aiohttp's own HTTP errors (413 from the body cap, 404,
  405) keep their status with a JSON body; anything else is logged and answered 500.
The body cap is aiohttp's `client_max_size` (reading a larger body raises 413).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from streamproc.api import alertmanager, amsilences, incidents, iris, maintenance, native, pagerduty, replies, ui
from streamproc.api.common import Doors
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.api.openapi import openapi_document
from streamproc.api.paged import PagedIndex
from streamproc.api.paged_reader import PagedReader
from streamproc.api.publish import Publisher
from streamproc.api.silences import SilenceIndex
from streamproc.config.models import Config
from streamproc.engine.core import Engine
from streamproc.incidents.index import StatusIndex
from streamproc.kafka.headers import HTTP_HEADER, HTTP_REQUEST_HEADERS, new_correlation_id, valid_correlation_id
from streamproc.lifecycle import arm_watchdog
from streamproc.logs import bind, setup_logging, unbind

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DOORS_KEY = web.AppKey("doors", Doors)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "streamproc_api_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.accept_latency = Histogram(
            "streamproc_api_accept_latency_seconds",
            "From a write's arrival to its answer, for accepted writes (2xx on POST)",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


def _route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def build_app(
    config: Config, publisher: Publisher, paged: PagedReader | None = None, silences: SilenceIndex | None = None
) -> web.Application:
    """The application. `paged` (who was paged for what, for the replies) and `silences` (spec §8,
    for the silence doors) default to indexes read from the publisher's broker, started with the
    application and stopped at its cleanup."""
    engine = Engine(config)
    doors = Doors(engine, publisher)
    limiter = RateLimiter(config)
    metrics = Metrics()

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            route = _route_of(request)
            metrics.requests.labels(route, request.method, str(status)).inc()
            if request.method == "POST" and 200 <= status < 300:
                metrics.accept_latency.labels(route).observe(time.perf_counter() - started)

    @web.middleware
    async def correlate(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The request's correlation id (the caller's X-Correlation-Id / X-Request-Id, or a new one):
        bound for logs and for the records the request writes, and answered in X-Correlation-Id."""
        given = next((request.headers[h] for h in HTTP_REQUEST_HEADERS if h in request.headers), None)
        correlation_id = valid_correlation_id(given) or new_correlation_id()
        token = bind(correlation_id=correlation_id)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[HTTP_HEADER] = correlation_id
            raise
        else:
            response.headers[HTTP_HEADER] = correlation_id
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d",
                    request.method,
                    request.path,
                    response.status,
                    extra={
                        "route": _route_of(request),
                        "status": response.status,
                        "seconds": round(time.perf_counter() - started, 4),
                    },
                )
            return response
        finally:
            unbind(token)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            reason = exc.reason
            if exc.status == 413:
                reason = f"body: larger than {config.api.max_body_bytes} bytes"
            return web.json_response(
                {"error": reason},
                status=exc.status,
                headers={k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")},
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.json_response({"error": "internal error"}, status=500)

    app = web.Application(middlewares=[correlate, measure, errors], client_max_size=config.api.max_body_bytes)
    app[DOORS_KEY] = doors

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def ready(request: web.Request) -> web.Response:
        ok, reason = await publisher.ready()
        # The paged index is reported, not required: incidents must get in even while it catches up.
        return web.json_response(
            {
                "ready": ok,
                "kafka": reason,
                "paged_index": answers.index_status(),
                "silence_index": silence_index.status(),
            },
            status=200 if ok else 503,
        )

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def prometheus(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/ready", ready),
            web.get("/openapi.json", openapi),
            web.get("/metrics", prometheus),
        ]
    )
    app.add_routes(native.routes(doors, limiter))
    app.add_routes(iris.routes(doors, limiter))
    app.add_routes(pagerduty.routes(doors, limiter))
    app.add_routes(alertmanager.routes(doors, limiter))
    silence_index = silences or SilenceIndex(publisher.bootstrap, engine, topic=publisher.topic)
    app.add_routes(maintenance.routes(doors, limiter, silence_index))
    app.add_routes(amsilences.routes(doors, limiter, silence_index))

    async def start_silences(app: web.Application) -> None:
        silence_index.start()

    async def stop_silences(app: web.Application) -> None:
        await asyncio.to_thread(silence_index.stop)

    app.on_startup.append(start_silences)
    app.on_cleanup.append(stop_silences)
    # /v1/incidents, /v0/incidents/{id}, /ui read the status topic (docs/decisions/status-topic.md)
    status_index = StatusIndex(publisher.bootstrap)
    app.add_routes(incidents.routes(config, limiter, status_index))
    app.add_routes(ui.routes(config, status_index, publisher.bootstrap))

    async def start_status(app: web.Application) -> None:
        status_index.start()

    async def stop_status(app: web.Application) -> None:
        await asyncio.to_thread(status_index.stop)

    app.on_startup.append(start_status)
    app.on_cleanup.append(stop_status)
    if paged is None:
        paged = PagedReader(publisher.bootstrap, PagedIndex(config.api.paged_window))
    answers = replies.Replies(doors, paged, publisher.bootstrap)
    app.add_routes(answers.routes())
    app.on_startup.append(answers.start)
    app.on_cleanup.append(answers.close)

    async def close_publisher(app: web.Application) -> None:
        await asyncio.to_thread(publisher.close)

    app.on_cleanup.append(close_publisher)
    return app


def run_api(args: argparse.Namespace) -> int:
    from streamproc.config import ConfigError, load_config
    from streamproc.kafka import security
    from streamproc.kafka.admin import TopicLayoutError, ensure_topics, processor_topics

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc)
        return 2
    setup_logging(getattr(args, "log_format", None), getattr(logging, str(args.loglevel).upper(), logging.WARNING))
    try:
        security.configure(config.kafka)
        ensure_topics(args.bootstrap, timeout=30.0, wanted=processor_topics(args.partitions, exact=False))
    except (security.KafkaSecurityError, TopicLayoutError) as exc:  # cannot work, or refused: say so now
        print(f"streamproc api: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception as exc:  # the broker may come later: writes answer 503 until it does
        log.warning("could not check topics on %s: %s", args.bootstrap, exc)
    tls = None
    if config.api.tls_cert_file and config.api.tls_key_file:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(config.api.tls_cert_file, config.api.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            print(f"{args.config}: api.tls_cert_file / api.tls_key_file: {exc}")
            return 2
    publisher = Publisher(args.bootstrap, config.api.produce_timeout)
    app = build_app(config, publisher)
    scheme = "https" if tls else "http"
    print(f"streamproc api: listening on {scheme}://{args.host}:{args.port} (Kafka {args.bootstrap})", flush=True)

    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port, ssl_context=tls)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stopping() -> None:
            arm_watchdog("api")  # a stop waiting on a broker that is gone ends in bounded time
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stopping)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())
    return 0
