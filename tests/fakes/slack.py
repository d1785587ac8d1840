"""A fake of Slack's Web API `chat.postMessage`, enough for `slack_sdk`'s AsyncWebClient.

Checks the bearer token (`invalid_auth` otherwise), answers `channel_not_found` for
channels not in `channels` (when that set is given), and HTTP 429 with Retry-After and
`error: ratelimited` when scripted. Like Slack, errors other than 429 are HTTP 200 with
`ok: false`.
"""

from __future__ import annotations

import time

from aiohttp import web

from tests.fakes.http import HttpFake, Received


class FakeSlack(HttpFake):
    def __init__(self, token: str = "xoxb-test-token") -> None:
        super().__init__()
        self.token = token
        self.channels: set[str] | None = None

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat.postMessage", self._post_message)

    @staticmethod
    def _fail(received: Received, error: str, status: int = 200, **headers: str) -> web.Response:
        received.status = status
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)

    async def _post_message(self, request: web.Request) -> web.Response:
        received = await self.record(request)
        payload = received.json if isinstance(received.json, dict) else received.form
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or payload.get("token")
        if token != self.token:
            return self._fail(received, "invalid_auth")
        failure = self.next_failure()
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            error = failure.error or ("ratelimited" if failure.status == 429 else "internal_error")
            return self._fail(received, error, failure.status, **headers)
        channel = str(payload.get("channel", ""))
        if self.channels is not None and channel not in self.channels:
            return self._fail(received, "channel_not_found")
        ts = f"{time.time():.6f}"
        received.status, received.ok = 200, True
        return web.json_response(
            {
                "ok": True,
                "channel": "D" + channel[1:] if channel.startswith("U") else channel,
                "ts": ts,
                "message": {"type": "message", "text": payload.get("text"), "ts": ts},
            }
        )
