"""Generic webhook: the message as JSON, POSTed to the user's webhook contact.

The body is signed so the receiver can trust it:
`X-Streamproc-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import aiohttp

from streamproc.config.senders import WebhookSettings
from streamproc.senders.vendors.base import VendorResult, one_line, parse_retry_after, retryable_http_status
from streamproc.wire.outcomes import Message, outcome_dict

SIGNATURE_HEADER = "X-Streamproc-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookVendor:
    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        secret = settings.resolved_secret()
        if not secret:
            raise ValueError("webhook needs a signing secret")
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._session: aiohttp.ClientSession | None = None
        self.account: str | None = "webhook" if settings.rate else None

    async def send(self, message: Message) -> VendorResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = json.dumps(outcome_dict(message), separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        try:
            async with self._session.post(message.destination, data=body, headers=headers) as response:
                text = await response.text()
                if 200 <= response.status < 300:
                    return VendorResult.ok(detail=f"HTTP {response.status}")
                detail = f"HTTP {response.status}: {one_line(text)}"
                if response.status == 429:
                    return VendorResult.temporary(detail, parse_retry_after(response.headers.get("Retry-After")))
                if retryable_http_status(response.status):
                    return VendorResult.temporary(detail)
                return VendorResult.permanent(detail)
        except aiohttp.InvalidURL as exc:
            return VendorResult.permanent(f"invalid webhook URL: {exc}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return VendorResult.temporary(f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
