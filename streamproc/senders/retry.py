"""Retry policy: temporary failures come back later, permanent ones do not.

Exponential backoff with jitter (AWS "full jitter" at jitter=1.0): the delay before
attempt n+1 is `cap * (1 - jitter * U[0,1))` with `cap = min(max_delay, base * 2**(n-1))`,
and never less than a vendor's Retry-After. Spreading retries keeps a vendor outage from
turning into a synchronized stampede when it ends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from streamproc.config.senders import RetrySettings
from streamproc.senders.vendors.base import VendorResult


def backoff(attempt: int, retry: RetrySettings, rng: random.Random | None = None) -> float:
    """Delay after failed attempt number `attempt` (1-based)."""
    cap = min(retry.max_delay, retry.base_delay * 2.0 ** max(0, attempt - 1))
    draw = rng.random() if rng is not None else random.random()
    return cap * (1.0 - retry.jitter * draw)


@dataclass(frozen=True)
class Decision:
    action: Literal["done", "retry", "give-up"]
    delay: float = 0.0


def decide(result: VendorResult, attempts: int, retry: RetrySettings, rng: random.Random | None = None) -> Decision:
    if result.outcome == "ok":
        return Decision("done")
    if result.outcome == "permanent" or attempts >= retry.max_attempts:
        return Decision("give-up")
    return Decision("retry", max(backoff(attempts, retry, rng), result.retry_after or 0.0))
