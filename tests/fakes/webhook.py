"""A webhook receiver: records POSTed bodies and headers; scripted failures as for the others."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.http import HttpFake


class FakeWebhook(HttpFake):
    @property
    def hook_url(self) -> str:
        return self.url + "/hook"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        received = await self.record(request)
        failure = self.next_failure()
        if failure is not None:
            received.status = failure.status
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return web.Response(status=failure.status, text=failure.message, headers=headers)
        received.status, received.ok = 204, True
        return web.Response(status=204)
