"""POST /v1/twilio/voice: the <Gather> action of a page call (`senders.twilio.gather_url`).

Why a file of its own: a call is answered with a key press, not words, and speaks its answer.

The call sender's TwiML reads the page inside a <Gather> whose action is this route with
`message_id`, `incident_id` and `instance` in the query. Pressing `CLAIM_DIGIT` (2) claims that
incident for the user the index says the page went to (else the user of the called number, `To`):
"Claimed. Goodbye.", or every incident of a batch page the index knows by that message id
("Claimed 3 incidents. Goodbye."). Another key is asked again. Events carry
`event_id = twilio-call:<CallSid>`.
"""

from __future__ import annotations

from aiohttp import web
from twilio.twiml.voice_response import Gather, VoiceResponse

from streamproc.api.common import Doors, now
from streamproc.api.replies.directory import Directory, one
from streamproc.api.replies.lookup import Pages
from streamproc.api.replies.twilio import TwilioGate, twiml, voice
from streamproc.wire.events import Claim
from streamproc.wire.replies import CLAIM_DIGIT


class VoiceReplies:
    def __init__(self, doors: Doors, gate: TwilioGate, directory: Directory, pages: Pages) -> None:
        self.doors = doors
        self.gate = gate
        self.directory = directory
        self.pages = pages

    async def handle(self, request: web.Request) -> web.Response:
        form = await self.gate.form(request)
        query = request.query
        page = await self.pages.page(query.get("message_id"), form.get("CallSid"))
        incident_id = query.get("incident_id") or (page.incident_id if page else None)
        user = page.user if page else one(self.directory.by_phone(form.get("To") or form.get("Called")))
        if not incident_id or user is None:
            return voice(
                "Sorry, this call cannot tell which incident or person it is about. "
                "Please claim by text message or in Slack. Goodbye."
            )
        digits = form.get("Digits", "")
        if digits != CLAIM_DIGIT:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action=self.gate.signed_url(request), method="POST", timeout=10)
            gather.say(f"Sorry, that key does nothing. Press {CLAIM_DIGIT} to claim this incident.")
            response.append(gather)
            response.say("Goodbye.")
            return twiml(response)
        call = form.get("CallSid")
        # A batch page claims every incident in it (the query names its first).
        incidents = list(page.incidents) if page is not None and page.batch else [incident_id]
        await self.doors.write(
            [
                Claim(
                    type="claim", at=now(), incident_id=i, owner=user, event_id=f"twilio-call:{call}" if call else None
                )
                for i in incidents
            ]
        )
        return voice("Claimed. Goodbye." if len(incidents) == 1 else f"Claimed {len(incidents)} incidents. Goodbye.")
