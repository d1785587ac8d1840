"""A fake of Twilio's REST API: Messages.json and Calls.json under /2010-04-01/Accounts/{sid}/.

Speaks what the real `twilio` client expects: form-encoded POSTs with HTTP basic auth
(account SID and auth token), JSON resources back (201), and JSON errors with Twilio's
`code`/`message`/`more_info`/`status` (401 code 20003 for bad credentials, 400 code 21211
for numbers listed in `invalid_numbers`, and whatever `fail_next` scripts).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.http import HttpFake, Received


class FakeTwilio(HttpFake):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "twilio-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.invalid_numbers: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._messages)
        app.router.add_post("/2010-04-01/Accounts/{sid}/Calls.json", self._calls)

    @property
    def sms(self) -> list[Received]:
        return [r for r in self.delivered if r.path.endswith("/Messages.json")]

    @property
    def calls(self) -> list[Received]:
        return [r for r in self.delivered if r.path.endswith("/Calls.json")]

    def _error(self, received: Received, status: int, code: int, message: str, **headers: str) -> web.Response:
        received.status = status
        body = {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
        return web.json_response(body, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid and password == self.auth_token and request.match_info["sid"] == user

    async def _handle(self, request: web.Request, prefix: str) -> web.Response:
        received = await self.record(request)
        if not self._authorized(request):
            return self._error(received, 401, 20003, "Authenticate")
        failure = self.next_failure()
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            code = failure.code or (20429 if failure.status == 429 else 20500)
            return self._error(received, failure.status, code, failure.message, **headers)
        to = received.form.get("To", "")
        if to in self.invalid_numbers:
            return self._error(received, 400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sid = prefix + uuid.uuid4().hex
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": received.form.get("From"),
            "status": "queued",
            "date_created": "Thu, 01 Jan 2026 00:00:00 +0000",
            "api_version": "2010-04-01",
            "uri": f"{request.path[:-5]}/{sid}.json",
        }
        if prefix == "SM":
            resource.update({"body": received.form.get("Body"), "num_segments": "1", "direction": "outbound-api"})
        else:
            resource.update({"direction": "outbound-api"})
        received.status, received.ok = 201, True
        return web.json_response(resource, status=201)

    async def _messages(self, request: web.Request) -> web.Response:
        return await self._handle(request, "SM")

    async def _calls(self, request: web.Request) -> web.Response:
        return await self._handle(request, "CA")
