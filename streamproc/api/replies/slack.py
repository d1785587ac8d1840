"""POST /v1/slack/interactivity: Slack's interactivity request URL (the Claim button).

Why a file of its own: Slack proves itself differently from Twilio, answers within 3 s, and the
page is updated afterwards through `response_url`; nothing here is shared with the Twilio routes.

`X-Slack-Signature` (v0, HMAC-SHA256 over `v0:<timestamp>:<body>`) and `X-Slack-Request-Timestamp`
within 5 minutes are checked by `slack_sdk.signature.SignatureVerifier` with
`senders.slack.signing_secret` / `signing_secret_env`. Missing, wrong or old: 403, nothing
written. No signing secret configured: 404.

The button (`action_id` `streamproc_claim`, value `{incident_id, instance, message_id}`, and on a
batch message `incident_ids`) claims the incident for the presser (the user whose
`contacts.slack` is the presser's id), or every incident of the batch: the value's
`incident_ids`, else those the index knows for `message_id` (waiting for it at most
`SLACK_SYNC_TIMEOUT`). The answer is 200 once Kafka has the claims; then the page is replaced
(`response_url`, `replace_original`) by its text and who claimed it. Events carry
`event_id = slack:<action_ts>`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from streamproc.api.common import Doors, now
from streamproc.api.errors import ApiError
from streamproc.api.replies.commands import listing
from streamproc.api.replies.directory import Directory, one
from streamproc.api.replies.lookup import SLACK_SYNC_TIMEOUT, Pages
from streamproc.wire.events import Claim, Event
from streamproc.wire.replies import CLAIM_ACTION_ID

log = logging.getLogger(__name__)


class SlackButtons:
    """The route, and the page updates still on their way to Slack."""

    def __init__(self, doors: Doors, directory: Directory, pages: Pages) -> None:
        self.doors = doors
        self.directory = directory
        self.pages = pages
        secret = doors.config.senders.slack.resolved_signing_secret()
        self.verifier = SignatureVerifier(secret) if secret else None
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        """Let page updates finish (briefly), at the application's cleanup."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def body(self, request: web.Request) -> bytes:
        """The body of a request Slack signed; 404 without a signing secret, 403 when the signature fails."""
        if self.verifier is None:
            raise ApiError(404, "slack interactivity is off: senders.slack.signing_secret is not configured")
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        try:
            valid = bool(self.verifier.is_valid(body, timestamp, signature))
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            raise ApiError(403, "X-Slack-Signature: missing, wrong, or older than 5 minutes")
        return body

    async def handle(self, request: web.Request) -> web.Response:
        await self.body(request)
        posted = await request.post()
        raw = posted.get("payload")
        try:
            payload = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise ApiError(400, "payload: a JSON object is required")
        if payload.get("type") != "block_actions":
            return web.Response(status=200)  # other interactions are not ours
        actions = [
            a for a in payload.get("actions") or [] if isinstance(a, dict) and a.get("action_id") == CLAIM_ACTION_ID
        ]
        if not actions:
            return web.Response(status=200)
        slack_user = payload.get("user")
        slack_id = str(slack_user.get("id", "")) if isinstance(slack_user, dict) else ""
        response_url = payload.get("response_url")
        response_url = response_url if isinstance(response_url, str) and response_url else None
        user = one(self.directory.by_slack(slack_id))
        if user is None:
            self._later(
                response_url,
                {
                    "response_type": "ephemeral",
                    "replace_original": False,
                    "text": f"Your Slack user ({slack_id}) is not the Slack contact of exactly one streamproc user "
                    "(contacts.slack), so nothing was claimed.",
                },
            )
            return web.Response(status=200)
        events: list[Event] = []
        for action in actions:
            try:
                value = json.loads(str(action.get("value", "")))
                incident_id = str(value["incident_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, "actions[].value: a JSON object naming incident_id is required") from exc
            action_ts = action.get("action_ts")
            for member in await self._button_incidents(value, incident_id):
                events.append(
                    Claim(
                        type="claim",
                        at=now(),
                        incident_id=member,
                        owner=user,
                        event_id=f"slack:{action_ts}" if action_ts else None,
                    )
                )
        await self.doors.write(events)
        ids = list(dict.fromkeys(e.key for e in events))
        self._later(response_url, claimed_message(payload, ids, user, slack_id))
        return web.Response(status=200)

    async def _button_incidents(self, value: Any, incident_id: str) -> list[str]:
        """The incidents a Claim button is about: a batch's (from the value, else from the index by
        message id), or its own."""
        listed = value.get("incident_ids") if isinstance(value, dict) else None
        if isinstance(listed, list) and listed and all(isinstance(i, str) and i for i in listed):
            return list(dict.fromkeys(listed))
        message_id = value.get("message_id") if isinstance(value, dict) else None
        if not isinstance(message_id, str) or not message_id:
            return [incident_id]
        page = await self.pages.page_soon(message_id, SLACK_SYNC_TIMEOUT)
        return list(page.incidents) if page is not None and page.batch else [incident_id]

    def _later(self, response_url: str | None, body: dict[str, Any]) -> None:
        """POST `body` to Slack's response_url in the background (the answer does not wait for it)."""
        if response_url is None:
            return
        task = asyncio.create_task(respond(response_url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def claimed_message(payload: Mapping[str, Any], ids: list[str], user: str, slack_id: str) -> dict[str, Any]:
    """The page as it was (its text section), with the button replaced by who claimed it."""
    message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
    blocks = [b for b in (message or {}).get("blocks") or [] if isinstance(b, dict) and b.get("type") == "section"]
    claimed = f"Claimed by <@{slack_id}> ({user})"
    return {
        "replace_original": True,
        "text": f"{listing(ids)}: claimed by {user}",
        "blocks": [*blocks[:1], {"type": "context", "elements": [{"type": "mrkdwn", "text": claimed}]}],
    }


async def respond(response_url: str, body: dict[str, Any]) -> None:
    client = AsyncWebhookClient(response_url, timeout=10)
    try:
        answer = await client.send(**body)
    except Exception as exc:
        log.warning("slack response_url failed: %s", exc)
        return
    if answer.status_code != 200:
        log.warning("slack response_url answered %s: %s", answer.status_code, answer.body)
