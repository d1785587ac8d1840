"""`GET /ready` and `GET /status` of the sender's status server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streamproc.config.senders import RetrySettings
from streamproc.senders import status
from streamproc.senders.claims import Claims
from streamproc.senders.dedupe import DeliveredSet
from streamproc.senders.pipeline import ModePipeline
from streamproc.senders.ratelimit import RateLimits
from streamproc.senders.vendors import ConsoleVendor
from tests.senders.helpers import ListSink


def pipelines(*modes: str) -> tuple[dict[str, ModePipeline], RateLimits]:
    limits = RateLimits()
    found = {}
    for mode in modes:
        limits.add_mode(mode, 10, 10)
        found[mode] = ModePipeline(
            mode, ConsoleVendor(), limits, DeliveredSet(60), Claims(), ListSink(), lambda user: None, RetrySettings()
        )
    return found, limits


@pytest.fixture
async def served() -> AsyncIterator[
    tuple[TestClient[web.Request, web.Application], dict[str, bool], dict[str, ModePipeline]]
]:
    found, limits = pipelines("sms", "email")
    assigned = {"sms": False, "email": False}

    def readiness() -> Mapping[str, bool]:
        return assigned

    app = web.Application()
    app.add_routes(status.routes(found, limits, readiness))
    async with TestClient(TestServer(app)) as client:
        yield client, assigned, found


async def test_ready_once_every_mode_is_assigned(
    served: tuple[TestClient[web.Request, web.Application], dict[str, bool], dict[str, ModePipeline]],
) -> None:
    client, assigned, found = served
    assert (await client.get("/ready")).status == 503
    assigned["sms"] = True
    found["sms"].adopt([0, 3])
    answer = await client.get("/ready")
    assert answer.status == 503
    assert (await answer.json())["modes"]["sms"] == {"assigned": True, "partitions": [0, 3]}
    assigned["email"] = True  # with no partitions at all (more senders than partitions)
    answer = await client.get("/ready")
    assert answer.status == 200 and (await answer.json())["ready"] is True
    found["email"].failed = RuntimeError("delivery record not written")
    assert (await client.get("/ready")).status == 503
    assert (await client.get("/status")).status == 200


async def test_not_ready_without_a_readiness_source() -> None:
    found, limits = pipelines("sms")
    app = web.Application()
    app.add_routes(status.routes(found, limits))
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/ready")).status == 503
