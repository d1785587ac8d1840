"""Rate limiter: share math, token timing on a fake clock, pauses, account buckets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamproc.senders.ratelimit import RateLimits, TokenBucket, share


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_share_is_proportional_to_owned_partitions() -> None:
    assert share(20, 10, owned=3, total=12) == (5.0, 2.5)
    assert share(20, 10, owned=12, total=12) == (20.0, 10.0)
    assert share(20, 10, owned=0, total=12) == (0.0, 0.0)
    assert share(1, 1, owned=1, total=12) == (1 / 12, 1.0)  # at least one token


@given(
    rate=st.floats(0.1, 1000),
    burst=st.integers(1, 1000),
    split=st.lists(st.integers(1, 20), min_size=1, max_size=8),
)
def test_shares_never_add_up_to_more_than_the_cluster_rate(rate: float, burst: int, split: list[int]) -> None:
    """However the partitions are split between workers, the rates sum to the configured rate."""
    total = sum(split)
    rates = [share(rate, burst, owned, total)[0] for owned in split]
    assert math.isclose(sum(rates), rate, rel_tol=1e-9)
    capacities = [share(rate, burst, owned, total)[1] for owned in split]
    assert sum(capacities) <= burst + len(split)  # each worker rounds up to one token at most


def test_bucket_releases_tokens_at_its_share_of_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=4, clock=clock)
    assert bucket.delay() == math.inf  # no partitions, no sending
    bucket.set_share(owned=6, total=12)  # 5/s, capacity 2
    assert bucket.delay() == 0  # a fresh share starts with one token
    bucket.take()
    assert bucket.delay() == pytest.approx(0.2)
    clock.now += 10  # refills up to the capacity, no further
    bucket.take()
    bucket.take()
    assert bucket.delay() == pytest.approx(0.2)


def test_bucket_sends_at_most_rate_times_window_plus_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=20, burst=5, clock=clock)
    bucket.set_share(12, 12)
    clock.now += 5  # a full bucket
    sent = 0
    end = clock.now + 3.0
    while clock.now < end:
        if bucket.delay() <= 0:
            bucket.take()
            sent += 1
        else:
            clock.now += 0.001
    assert sent <= 20 * 3 + 5


def test_shrinking_share_drops_extra_tokens() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=10, clock=clock)
    bucket.set_share(12, 12)
    clock.now += 10
    bucket.set_share(3, 12)  # capacity 2.5
    for _ in range(2):
        assert bucket.delay() == 0
        bucket.take()
    assert bucket.delay() > 0


def test_pause_holds_only_that_mode() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    limits.add_mode("sms", 10, 10)
    limits.add_mode("slack", 10, 10)
    limits.set_ownership("sms", 12, 12)
    limits.set_ownership("slack", 12, 12)
    limits.pause("sms", 5.0)
    assert limits.delay("sms") == pytest.approx(5.0)
    assert limits.delay("slack") == 0
    clock.now += 5.0
    assert limits.delay("sms") == 0


def test_account_bucket_is_shared_by_its_modes() -> None:
    """sms and call draw on one Twilio account limit; its share counts both topics' partitions."""
    clock = Clock()
    limits = RateLimits(clock)
    limits.add_mode("sms", 100, 100)
    limits.add_mode("call", 100, 100)
    limits.add_account("twilio:AC1", 4, 1, ["sms", "call"])
    limits.set_ownership("sms", 6, 12)
    limits.set_ownership("call", 0, 12)
    account = limits.buckets("sms")[1]
    assert account.rate == pytest.approx(4 * 6 / 24)
    assert limits.buckets("call")[1] is account
    limits.set_ownership("call", 12, 12)
    assert account.rate == pytest.approx(4 * 18 / 24)
    assert limits.delay("sms") == 0
    limits.buckets("sms")[1].take()
    assert limits.delay("call") > 0  # the sms send used the account's token


async def test_acquire_waits_for_a_token() -> None:
    limits = RateLimits()
    limits.add_mode("sms", 20, 1)
    limits.set_ownership("sms", 1, 1)
    import time

    start = time.monotonic()
    for _ in range(3):
        await limits.acquire("sms")
    elapsed = time.monotonic() - start
    assert 0.08 <= elapsed < 1.0  # first token at once, then 2 more at 20/s
