"""People answering pages: Twilio SMS replies and key presses, Twilio status callbacks, Slack buttons.

    POST /v1/twilio/sms                twilio_sms.py     Twilio's inbound-SMS webhook
    POST /v1/twilio/voice              twilio_voice.py   the <Gather> action of a page call
    POST /v1/twilio/status             twilio_status.py  Twilio status callbacks
    POST /v1/slack/interactivity       slack.py          Slack's interactivity request URL (Claim)

One file per vendor route, and one per thing they share: who the user is (`directory.py`), what
an SMS may say (`commands.py`), which incidents an id means (`lookup.py`, over the paged index of
`api.paged` and `api.paged_reader`), Twilio's signature and TwiML (`twilio.py`). This module puts
them together for the server (`Replies`).

Who is calling is proven by the vendor's signature, checked with the vendor's own library
(`twilio.py`, `slack.py`); who is answering is a configured user (`directory.py`). Every write
goes through `Doors.write`: answered only after Kafka has the events, 503 when it cannot take
them. Events carry an `event_id` made from the vendor's request id (MessageSid, CallSid, Slack's
action_ts), so a webhook the vendor re-sends is a no-op.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from streamproc.api.common import Doors
from streamproc.api.paged_reader import PagedReader
from streamproc.api.replies.directory import Directory
from streamproc.api.replies.lookup import Pages
from streamproc.api.replies.slack import SlackButtons
from streamproc.api.replies.twilio import TwilioGate
from streamproc.api.replies.twilio_sms import SmsReplies
from streamproc.api.replies.twilio_status import StatusCallbacks
from streamproc.api.replies.twilio_voice import VoiceReplies

__all__ = ["Replies"]


class Replies:
    """The four routes, and what they hold: the paged index's reader, the status producer, pending
    Slack updates. `start` and `close` go on the application's startup and cleanup."""

    def __init__(self, doors: Doors, paged: PagedReader | None, bootstrap: str) -> None:
        self.pages = Pages(paged)
        directory = Directory(doors.config)
        gate = TwilioGate(doors.config)
        self.sms = SmsReplies(doors, gate, directory, self.pages)
        self.voice = VoiceReplies(doors, gate, directory, self.pages)
        self.status = StatusCallbacks(doors.config, gate, directory, self.pages, bootstrap)
        self.slack = SlackButtons(doors, directory, self.pages)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/twilio/sms", self.sms.handle),
            web.post("/v1/twilio/voice", self.voice.handle),
            web.post("/v1/twilio/status", self.status.handle),
            web.post("/v1/slack/interactivity", self.slack.handle),
        ]

    def index_status(self) -> str:
        return self.pages.status()

    async def start(self, app: web.Application) -> None:
        if self.pages.reader is not None:
            self.pages.reader.start()

    async def close(self, app: web.Application) -> None:
        """On cleanup: let Slack updates finish (briefly), stop the index, flush the status producer."""
        await self.slack.close()
        if self.pages.reader is not None:
            await asyncio.to_thread(self.pages.reader.stop)
        await self.status.close()
