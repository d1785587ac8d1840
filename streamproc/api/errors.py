"""Errors the API answers with: a status, a reason naming the field, and optional headers."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, reason: str, *, headers: dict[str, str] | None = None, body: Any = None) -> None:
        """`body`: the answer's JSON (default `{"error": reason}`)."""
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}
        self.body = body

    def response(self) -> web.Response:
        body = self.body if self.body is not None else {"error": self.reason}
        return web.json_response(body, status=self.status, headers=self.headers)


class Unavailable(ApiError):
    """Kafka did not take the write in time: nothing may be answered 2xx."""

    def __init__(self, reason: str, retry_after: int = 5) -> None:
        super().__init__(503, f"kafka unavailable: {reason}", headers={"Retry-After": str(retry_after)})
