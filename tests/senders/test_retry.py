"""Retry classification and backoff."""

from __future__ import annotations

import random

import pytest

from streamproc.config.senders import RetrySettings
from streamproc.senders.retry import backoff, decide
from streamproc.senders.vendors.base import VendorResult

NO_JITTER = RetrySettings(max_attempts=5, base_delay=1.0, max_delay=5.0, jitter=0.0)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, NO_JITTER) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_full_jitter_stays_between_zero_and_the_cap() -> None:
    retry = RetrySettings(base_delay=1.0, max_delay=60.0, jitter=1.0)
    rng = random.Random(7)
    draws = [backoff(4, retry, rng) for _ in range(500)]
    assert all(0.0 < d <= 8.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 7.0  # spread over the whole range


def test_ok_is_done() -> None:
    assert decide(VendorResult.ok(), 1, NO_JITTER).action == "done"


def test_permanent_failures_are_not_retried() -> None:
    assert decide(VendorResult.permanent("21211"), 1, NO_JITTER).action == "give-up"


def test_temporary_failures_retry_until_max_attempts() -> None:
    result = VendorResult.temporary("503")
    assert [decide(result, n, NO_JITTER).action for n in range(1, 6)] == ["retry"] * 4 + ["give-up"]
    assert decide(result, 2, NO_JITTER).delay == 2.0


@pytest.mark.parametrize(("retry_after", "expected"), [(30.0, 30.0), (0.5, 1.0), (None, 1.0)])
def test_retry_after_is_a_floor(retry_after: float | None, expected: float) -> None:
    result = VendorResult.temporary("429", retry_after=retry_after)
    assert decide(result, 1, NO_JITTER).delay == expected
