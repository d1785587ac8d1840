"""Slack direct messages through `slack_sdk`'s AsyncWebClient (`chat.postMessage`).

The destination is the user's Slack id (posting to a user id opens the DM). The message
carries a Claim button whose value names the incident, instance and message (and a batch
message's incidents); the interaction endpoint that handles it is outside the senders. The
SDK's own retries are turned off: the pipeline retries with backoff and honours Retry-After
itself.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from streamproc.config.senders import SlackSettings
from streamproc.senders.vendors.base import VendorResult, parse_retry_after, retryable_http_status
from streamproc.wire.outcomes import Message
from streamproc.wire.replies import CLAIM_ACTION_ID

_TEMPORARY_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_SECTION_LIMIT = 3000
_VALUE_LIMIT = 2000
"""Characters in a button's value (Block Kit)."""


def claim_blocks(message: Message) -> list[dict[str, Any]]:
    """Block Kit for a page: the text, then a Claim button."""
    text = f"*{message.subject}*\n{message.body}" if message.subject else message.body
    fields: dict[str, Any] = {
        "incident_id": message.incident_id,
        "instance": message.instance,
        "message_id": message.message_id,
    }
    value = json.dumps(fields, separators=(",", ":"))
    if message.batch is not None:
        # A batch (spec §7): the press claims every incident in it. When they do not fit in a
        # button's value, the API finds them by message id in its index of delivery records.
        batched = json.dumps({**fields, "incident_ids": message.batch.incident_ids}, separators=(",", ":"))
        value = batched if len(batched) <= _VALUE_LIMIT else value
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:_SECTION_LIMIT]}},
        {
            "type": "actions",
            "block_id": f"streamproc-{message.message_id}"[:255],
            "elements": [
                {
                    "type": "button",
                    "action_id": CLAIM_ACTION_ID,
                    "text": {"type": "plain_text", "text": "Claim"},
                    "style": "primary",
                    "value": value,
                }
            ],
        },
    ]


class SlackVendor:
    """One client and one aiohttp session for every send: without a session of its own the SDK
    opens (and closes) a session, and so a connection, per call."""

    name = "slack"

    def __init__(self, settings: SlackSettings) -> None:
        token = settings.resolved_token()
        if not token:
            raise ValueError("slack needs a token")
        self._token = token
        self._settings = settings
        self._client: AsyncWebClient | None = None
        self.account: str | None = "slack" if settings.rate else None

    def _get_client(self) -> AsyncWebClient:
        # Built lazily: an aiohttp session belongs to the loop it is created in.
        client = self._client
        if client is None or client.session is None or client.session.closed:
            timeout = int(max(1, self._settings.timeout))
            # The SDK builds a debug line per request whenever its logger's own level is unset
            # (it tests `logger.level`, not the effective level): give it one with a level.
            sdk_log = logging.getLogger(f"{__name__}.sdk")
            sdk_log.setLevel(sdk_log.getEffectiveLevel())
            client = self._client = AsyncWebClient(
                token=self._token,
                base_url=self._settings.base_url or AsyncWebClient.BASE_URL,
                timeout=timeout,
                session=aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)),
                logger=sdk_log,
                retry_handlers=[],
            )
        return client

    async def send(self, message: Message) -> VendorResult:
        client = self._get_client()
        fallback_text = f"{message.subject}: {message.body}" if message.subject else message.body
        try:
            response = await client.chat_postMessage(
                channel=message.destination, text=fallback_text[:_SECTION_LIMIT], blocks=claim_blocks(message)
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
            detail = f"HTTP {status}: {error or exc.response.data!r}"
            if status == 429 or error == "ratelimited":
                return VendorResult.temporary(detail, parse_retry_after(exc.response.headers.get("Retry-After")))
            if retryable_http_status(status) or error in _TEMPORARY_ERRORS:
                return VendorResult.temporary(detail)
            return VendorResult.permanent(detail)
        except (TimeoutError, aiohttp.ClientError, OSError, SlackClientError) as exc:
            return VendorResult.temporary(f"{type(exc).__name__}: {exc}")
        return VendorResult.ok(vendor_id=str(response.get("ts") or "") or None)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.session is not None:
            await client.session.close()
