"""Event-time helpers: the engine counts time in integer microseconds since the epoch (UTC).

Integers keep schedule arithmetic exact and comparisons cheap; RFC 3339 strings with a `Z`
suffix are the only textual form that goes on the wire.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_S = 1_000_000


def ensure_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00; a ValueError is a validation error in pydantic
        raise ValueError("out of range once converted to UTC") from exc


def to_us(value: datetime) -> int:
    # Times in models are already UTC (UtcDatetime): skip the conversion for them.
    delta = (value if value.tzinfo is UTC else ensure_utc(value)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds


@lru_cache(maxsize=65536)
def from_us(us: int) -> datetime:
    """Cached (datetimes are immutable): sends of one step share their times.
    Positional: timedelta(microseconds=us) parses keywords and takes twice as long."""
    return _EPOCH + timedelta(0, 0, us)


@lru_cache(maxsize=65536)
def format_us(us: int) -> str:
    """RFC 3339 in UTC with `Z`; fractional seconds only when there are any."""
    dt = from_us(us)
    # Not strftime("%Y"): glibc does not pad years before 1000 to four digits.
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
    if dt.microsecond == 0:
        return text + "Z"
    if dt.microsecond % 1000 == 0:
        return f"{text}.{dt.microsecond // 1000:03d}Z"
    return f"{text}.{dt.microsecond:06d}Z"


@lru_cache(maxsize=65536)
def format_time(value: datetime) -> str:
    """Cached: equal datetimes are the same instant, so they format alike whatever their zone."""
    return format_us(to_us(value))


def parse_time(text: str) -> datetime:
    """Parse RFC 3339 (a trailing `Z` included)."""
    return ensure_utc(datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00")))


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$")


def _rfc3339_only(value: object) -> object:
    """Times are RFC 3339 text (or datetimes, from YAML); pydantic would also take numbers and
    strings like "0" as Unix timestamps, which nobody writing an event means."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.match(value.strip()):
        return value.strip()
    raise ValueError("an RFC 3339 time is expected, such as 2026-03-01T10:00:00Z")


UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_rfc3339_only),
    AfterValidator(ensure_utc),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A timezone-aware UTC datetime that serialises as RFC 3339 with `Z`."""
