"""Rate limits: token buckets whose cluster-wide rate is split between workers.

A limit is configured for the whole cluster (a vendor account's allowance does not grow
with the number of workers). Each worker takes the share of the partitions it owns:
`rate * owned / total` and `burst * owned / total` (at least one token, so a worker that
owns anything can send). Shares are recomputed on every assign and revoke, so the sum
over workers stays at the configured rate however many workers run. This assumes the
load spreads evenly over partitions (messages are keyed by user).

A vendor's 429 pauses only the bucket of the mode that got it; other modes keep going.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


def share(rate: float, burst: int, owned: int, total: int) -> tuple[float, float]:
    """This worker's (rate, capacity) given the partitions it owns of `total`."""
    if owned <= 0 or total <= 0:
        return 0.0, 0.0
    fraction = min(1.0, owned / total)
    return rate * fraction, max(1.0, burst * fraction)


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster_rate = rate
        self.cluster_burst = burst
        self._clock = clock
        self.rate = 0.0
        self.capacity = 0.0
        self._tokens = 0.0
        self._stamp = clock()
        self.paused_until = 0.0

    def set_share(self, owned: int, total: int) -> None:
        self._refill()
        had_share = self.capacity > 0
        self.rate, self.capacity = share(self.cluster_rate, self.cluster_burst, owned, total)
        # Never carry more than the new capacity. A fresh share starts with one token (the
        # first page goes at once) rather than a full burst, so a rebalance cannot let every
        # worker burst at the same moment.
        self._tokens = min(self._tokens if had_share else 1.0, self.capacity)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def _refill(self) -> None:
        now = self._clock()
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until a token can be taken (inf when this worker has no share)."""
        self._refill()
        now = self._clock()
        wait = max(0.0, self.paused_until - now)
        if self._tokens >= 1.0:
            return wait
        if self.rate <= 0:
            return math.inf
        return max(wait, (1.0 - self._tokens) / self.rate)

    def take(self) -> None:
        self._refill()
        self._tokens -= 1.0

    def snapshot(self) -> dict[str, float]:
        """The bucket as `streamproc inspect senders` shows it."""
        self._refill()
        return {
            "cluster_rate": self.cluster_rate,
            "cluster_burst": self.cluster_burst,
            "rate": round(self.rate, 3),
            "capacity": round(self.capacity, 3),
            "tokens": round(self._tokens, 3),
            "paused_for": round(max(0.0, self.paused_until - self._clock()), 3),
        }


@dataclass
class _Usage:
    """Which modes draw on an account bucket, and the partitions owned/total per mode."""

    bucket: TokenBucket
    modes: set[str] = field(default_factory=set)


class RateLimits:
    """All the buckets of one worker: one per mode, plus one per limited vendor account
    (sms and call share the Twilio account's). A send takes a token from each that applies."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._modes: dict[str, TokenBucket] = {}
        self._accounts: dict[str, _Usage] = {}
        self._account_of: dict[str, str] = {}
        self._ownership: dict[str, tuple[int, int]] = {}

    def add_mode(self, mode: str, rate: float, burst: int) -> None:
        self._modes[mode] = TokenBucket(rate, burst, self._clock)

    def add_account(self, account: str, rate: float, burst: int, modes: Iterable[str]) -> None:
        usage = self._accounts.setdefault(account, _Usage(TokenBucket(rate, burst, self._clock)))
        usage.modes.update(modes)
        for mode in usage.modes:
            self._account_of[mode] = account

    def mode_bucket(self, mode: str) -> TokenBucket:
        return self._modes[mode]

    def buckets(self, mode: str) -> list[TokenBucket]:
        found = [self._modes[mode]]
        account = self._account_of.get(mode)
        if account is not None:
            found.append(self._accounts[account].bucket)
        return found

    def set_ownership(self, mode: str, owned: int, total: int) -> None:
        """Called on assign/revoke with this worker's partitions of the mode's topic."""
        self._ownership[mode] = (owned, total)
        self._modes[mode].set_share(owned, total)
        account = self._account_of.get(mode)
        if account is not None:
            usage = self._accounts[account]
            pairs = [self._ownership.get(m, (0, 0)) for m in usage.modes]
            usage.bucket.set_share(sum(o for o, _ in pairs), sum(t for _, t in pairs))

    def pause(self, mode: str, seconds: float) -> None:
        self._modes[mode].pause(seconds)

    def snapshot(self, mode: str) -> dict[str, object]:
        """The mode's bucket, and its vendor account's when it has one."""
        account = self._account_of.get(mode)
        return {
            "mode": self._modes[mode].snapshot(),
            "account": account,
            "account_bucket": self._accounts[account].bucket.snapshot() if account is not None else None,
        }

    def delay(self, mode: str) -> float:
        return max(b.delay() for b in self.buckets(mode))

    async def acquire(self, mode: str, poll: float = 0.25) -> None:
        """Wait for a token in every bucket of the mode, then take them together.
        Sleeps at most `poll` at a time, so share changes and pauses are noticed."""
        while True:
            wait = self.delay(mode)
            if wait <= 0:
                for bucket in self.buckets(mode):
                    bucket.take()
                return
            await asyncio.sleep(min(wait, poll))
