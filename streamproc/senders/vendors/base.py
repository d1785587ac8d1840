"""The one small interface every vendor implements, and the result it returns.

The pipeline only needs to know three things about a send: it worked, it may work later
(timeouts, 5xx, 429 with Retry-After), or it never will (bad number, unknown channel,
bad credentials). Vendors translate their own errors into those; retry policy lives
elsewhere (`retry.py`), so every vendor gets the same backoff and fallback.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from streamproc.wire.outcomes import Message

Outcome = Literal["ok", "temporary", "permanent"]


@dataclass(frozen=True)
class VendorResult:
    outcome: Outcome
    detail: str = ""
    vendor_id: str | None = None
    retry_after: float | None = None
    """Seconds the vendor asked us to wait (429 Retry-After); only on temporary failures."""

    @classmethod
    def ok(cls, vendor_id: str | None = None, detail: str = "") -> VendorResult:
        return cls("ok", detail, vendor_id)

    @classmethod
    def temporary(cls, detail: str, retry_after: float | None = None) -> VendorResult:
        return cls("temporary", detail, None, retry_after)

    @classmethod
    def permanent(cls, detail: str) -> VendorResult:
        return cls("permanent", detail)


class Vendor(Protocol):
    name: str
    """Written into delivery records: twilio, slack, smtp, webhook, console."""
    account: str | None
    """Rate-limit account shared across modes (sms and call share one Twilio account), if limited."""

    async def send(self, message: Message) -> VendorResult: ...

    async def close(self) -> None: ...


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 §10.2.3); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retryable_http_status(status: int) -> bool:
    """408, 425, 429 and 5xx may succeed later; other 4xx will not."""
    return status in (408, 425, 429) or status >= 500


def one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
