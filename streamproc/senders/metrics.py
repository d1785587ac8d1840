"""Prometheus metrics of `streamproc sender`, served by `--metrics-port` (prometheus_client's own
HTTP server, in a thread of its own). The pipeline only calls the functions below.

The metrics live in prometheus_client's default registry (one sender per process; the process
and Python collectors come with it). Label values are bounded: modes, vendor names, delivery
statuses, priorities and vendor outcomes.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from streamproc.config import environment
from streamproc.senders.vendors.base import VendorResult
from streamproc.wire.outcomes import Message

log = logging.getLogger(__name__)

SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

MESSAGES = Counter(
    "streamproc_sender_messages",
    "Messages settled, by mode, vendor and delivery status (sent, failed, fallback, "
    "dropped-claimed, dropped-resolved, duplicate)",
    ["mode", "vendor", "status"],
)
RETRIES = Counter(
    "streamproc_sender_retries", "Vendor calls that failed temporarily and will be retried", ["mode", "vendor"]
)
RATELIMIT_WAIT = Histogram(
    "streamproc_sender_ratelimit_wait_seconds",
    "Time a message waited for rate-limit tokens (mode and vendor-account buckets)",
    ["mode"],
    buckets=CALL_BUCKETS,
)
QUEUED = Gauge(
    "streamproc_sender_queued", "Messages waiting in the priority lanes, by mode and priority", ["mode", "priority"]
)
VENDOR_CALL = Histogram(
    "streamproc_sender_vendor_call_seconds",
    "Duration of vendor calls, by mode, vendor and outcome (ok, temporary, permanent)",
    ["mode", "vendor", "outcome"],
    buckets=CALL_BUCKETS,
)
SCHEDULED_TO_ACCEPTED = Histogram(
    "streamproc_sender_scheduled_to_accepted_seconds",
    "Scheduled send -> vendor accepted: wall time when the vendor accepted a "
    "message minus the message's scheduled `at`",
    ["mode", "vendor"],
    buckets=SECONDS_BUCKETS,
)


_children: dict[tuple[object, ...], Any] = {}
"""Label children by (metric, labels...): `labels()` validates and locks on every call, and the
label values are few (bounded, see above), so each child is looked up once."""


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def settled(mode: str, vendor: str, status: str) -> None:
    _child(MESSAGES, mode, vendor, status).inc()


def retried(mode: str, vendor: str) -> None:
    _child(RETRIES, mode, vendor).inc()


def waited(mode: str, seconds: float) -> None:
    _child(RATELIMIT_WAIT, mode).observe(seconds)


def vendor_called(
    mode: str, vendor: str, result: VendorResult, seconds: float, message: Message, now: float | None = None
) -> None:
    """A vendor call returned after `seconds`; an accepted message also gets its end-to-end time."""
    _child(VENDOR_CALL, mode, vendor, result.outcome).observe(seconds)
    if result.outcome == "ok":
        accepted = time.time() if now is None else now
        _child(SCHEDULED_TO_ACCEPTED, mode, vendor).observe(max(0.0, accepted - message.at.timestamp()))


def serve(port: int, host: str) -> tuple[int, Callable[[], None]]:
    """Serve `/metrics` on host:port (port 0 picks a free one); returns the port and a stop function."""
    server, thread = start_http_server(port, addr=host)
    bound: int = server.server_address[1]

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return bound, stop


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=environment.metrics_port(),
        help="serve Prometheus /metrics on this port (default 0: no metrics endpoint)",
    )
    parser.add_argument(
        "--metrics-host",
        default=environment.web_bind(),
        help="address the metrics endpoint listens on (default 127.0.0.1, or $STREAMPROC_WEB_BIND)",
    )


def start(args: argparse.Namespace) -> Callable[[], None]:
    """Start the endpoint `add_arguments` asked for (if any); returns its stop function."""
    if not args.metrics_port:
        return lambda: None
    port, stop = serve(args.metrics_port, args.metrics_host)
    log.info("metrics on http://%s:%d/metrics", args.metrics_host, port)
    return stop
