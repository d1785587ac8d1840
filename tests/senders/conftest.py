"""Vendor fakes as fixtures: each test gets a fresh local server, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes import FakeSlack, FakeTwilio, FakeWebhook


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def hook() -> AsyncIterator[FakeWebhook]:
    fake = FakeWebhook()
    await fake.start()
    yield fake
    await fake.close()
