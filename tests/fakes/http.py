"""Shared plumbing of the HTTP fakes: an aiohttp server on 127.0.0.1:<random>, a log of
requests, and a script of failures to answer next."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web


@dataclass
class Received:
    """One request as the fake saw it, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    status: int = 0
    ok: bool = False
    """True when the fake accepted it: a delivery."""
    at: float = field(default_factory=time.time)
    """Wall-clock time the request arrived (seconds since the epoch)."""


@dataclass
class Failure:
    status: int
    retry_after: str | None = None
    code: int | None = None
    message: str = "scripted failure"
    error: str | None = None


class HttpFake:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.delay = 0.0
        self._script: deque[Failure] = deque()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.arrived = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        code: int | None = None,
        message: str = "scripted failure",
        error: str | None = None,
    ) -> None:
        for _ in range(times):
            self._script.append(Failure(status, retry_after, code, message, error))

    def next_failure(self) -> Failure | None:
        return self._script.popleft() if self._script else None

    @property
    def delivered(self) -> list[Received]:
        """Requests the fake accepted."""
        return [r for r in self.requests if r.ok]

    async def record(self, request: web.Request) -> Received:
        body = await request.read()
        received = Received(path=request.path, headers=dict(request.headers), body=body)
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            received.form = {k: str(v) for k, v in (await request.post()).items()}
        elif ctype.startswith("application/json"):
            received.json = await request.json()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.requests.append(received)
        self.arrived.set()
        return received

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least `count` successful deliveries arrived (bounded)."""
        deadline = time.monotonic() + timeout
        while len(self.delivered) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{type(self).__name__}: {len(self.delivered)} of {count} deliveries")
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), min(remaining, 0.2))
        return self.delivered

    async def start(self) -> str:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HttpFake:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


F = TypeVar("F", bound=HttpFake)


@contextlib.contextmanager
def serving(fake: F) -> Iterator[F]:
    """Runs `fake` on an event loop thread of its own, for synchronous tests (live stacks)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
