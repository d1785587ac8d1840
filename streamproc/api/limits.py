"""A token bucket per application: `rate` requests per second, up to `burst` at once (per replica).

Not the senders' `TokenBucket`, which splits a cluster-wide rate by owned partitions and starts
a share with one token: an API replica owns no partitions, and a fresh one should allow a burst.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from streamproc.api.errors import ApiError
from streamproc.config.models import Config
from streamproc.config.senders import RateSettings


class RateLimiter:
    def __init__(self, config: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # app -> (tokens, stamp)

    def _rate(self, application: str) -> RateSettings:
        app = self._config.applications.get(application)
        return (app.rate if app is not None and app.rate is not None else None) or self._config.api.rate

    def take(self, application: str) -> None:
        """Spend a token of `application`, or raise 429 with Retry-After."""
        rate = self._rate(application)
        now = self._clock()
        tokens, stamp = self._buckets.get(application, (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - stamp) * rate.rate)
        if tokens < 1.0:
            self._buckets[application] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / rate.rate)
            raise ApiError(
                429,
                f"application {application!r}: more than {rate.rate:g} requests per second",
                headers={"Retry-After": str(max(1, wait))},
            )
        self._buckets[application] = (tokens - 1.0, now)
