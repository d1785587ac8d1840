"""The correlation id: one id that follows an incident through every record and log line.

It travels in the Kafka record header `CORRELATION_HEADER`:

- the API takes it from the request's `X-Correlation-Id` (or `X-Request-Id`) header, or makes one,
  answers with it (`X-Correlation-Id`) and puts it on every event record the request wrote;
- stage 1 of the worker keeps the header of an incidents record (any client may set it) or makes
  one, and writes it on the re-keyed event;
- stage 2 keeps the id of the trigger that opened an instance with the instance's state, and puts
  it on every record derived from that instance (messages, outcomes, audits), ticks included;
- the senders put a message's id on the log line of its delivery (and of a failed vendor call)
  and on its delivery record.

Readers that do not know the header ignore it; a record without it gets a new id at stage 1.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

CORRELATION_HEADER = "streamproc-correlation-id"
"""The Kafka record header (value: the id in ASCII)."""

HTTP_HEADER = "X-Correlation-Id"
"""Answered by the API on every response; taken from the request when given."""

HTTP_REQUEST_HEADERS = (HTTP_HEADER, "X-Request-Id")
"""Request headers a caller's id is taken from, first one present wins."""

_VALID = re.compile(r"[A-Za-z0-9._:/@+=-]{1,128}")

Headers = list[tuple[str, bytes]]


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def valid_correlation_id(value: str | None) -> str | None:
    """`value` when it is usable as an id (1-128 printable, header-safe characters), else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _VALID.fullmatch(value) else None


def correlation_of(headers: Iterable[tuple[str, bytes | str | None]] | None) -> str | None:
    """The correlation id in a record's headers (as confluent-kafka, aiokafka and Faust give them)."""
    if not headers:
        return None
    for name, value in headers:
        if name == CORRELATION_HEADER and value is not None:
            raw = value.decode("ascii", "replace") if isinstance(value, bytes | bytearray) else str(value)
            return valid_correlation_id(raw)
    return None


def correlation_headers(correlation_id: str | None) -> Headers | None:
    """Record headers carrying `correlation_id` (None when there is none)."""
    if not correlation_id:
        return None
    return [(CORRELATION_HEADER, correlation_id.encode("ascii"))]


__all__ = [
    "CORRELATION_HEADER",
    "HTTP_HEADER",
    "HTTP_REQUEST_HEADERS",
    "correlation_headers",
    "correlation_of",
    "new_correlation_id",
    "valid_correlation_id",
]


BARRIER_HEADER = "streamproc-barrier"
"""Marks the worker's catch-up barriers after a rebalance (`processor/catchup.py`): records with no
key and no value that readers of the topics (`inspect`) skip."""
