"""POST /v1/twilio/sms: Twilio's inbound-SMS webhook (the number's "A message comes in").

Why a file of its own: an SMS reply is the richest answer (the command language, batches,
"claim last/all"), and the one a person types by hand.

The sender's number (`From`) is matched against every user's `contacts.sms` and `contacts.call`
(`directory.py`); an unknown or shared number is told so and nothing is written. The body is a
command (`commands.py`); anything else gets the help text. `<id>` is an incident id or the
message id of a page (its incident is meant; a batch message's id means every incident in the
batch: one event per incident, and the answer lists them). "Open incidents that paged this
user" come from the paged index, `api.paged_window` back; open means neither claimed nor
resolved. Answers are TwiML <Message>s saying what was done. Events carry
`event_id = twilio-sms:<MessageSid>`, so a webhook Twilio re-sends is a no-op.
"""

from __future__ import annotations

from aiohttp import web

from streamproc.api.common import Doors, now
from streamproc.api.replies.commands import HELP, listing, parse_command
from streamproc.api.replies.directory import Directory
from streamproc.api.replies.lookup import Pages
from streamproc.api.replies.twilio import TwilioGate, sms
from streamproc.wire.events import Claim, Event, Resolve, Unclaim


def duration(seconds: float) -> str:
    """`86400` -> `24 h`, `172800` -> `2 days`: the paged window as an answer names it."""
    whole = round(seconds)
    if whole >= 2 * 86400 and whole % 86400 == 0:
        return f"{whole // 86400} days"
    for unit, size in (("h", 3600), ("min", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size} {unit}"
    return f"{whole} s"


class SmsReplies:
    def __init__(self, doors: Doors, gate: TwilioGate, directory: Directory, pages: Pages) -> None:
        self.doors = doors
        self.gate = gate
        self.directory = directory
        self.pages = pages

    async def handle(self, request: web.Request) -> web.Response:
        form = await self.gate.form(request)
        sender = form.get("From", "")
        users = self.directory.by_phone(sender)
        if not users:
            return sms(f"{sender or 'This number'} is not the phone number of any streamproc user. Nothing done.")
        if len(users) > 1:
            return sms(
                f"{sender} is the number of several users ({', '.join(users)}); replies from it cannot "
                "be told apart. Nothing done."
            )
        user = users[0]
        command = parse_command(form.get("Body", ""))
        if command is None:
            return sms(HELP)
        sid = form.get("MessageSid") or form.get("SmsSid")
        event_id = f"twilio-sms:{sid}" if sid else None
        if command.target in ("all", "last"):
            return await self._claim_open(user, command.target, event_id)
        incidents, page = await self.pages.named(user, command.target)
        events: list[Event] = []
        for incident_id in incidents:
            if command.verb == "claim":
                events.append(Claim(type="claim", at=now(), incident_id=incident_id, owner=user, event_id=event_id))
            elif command.verb == "unclaim":
                events.append(Unclaim(type="unclaim", at=now(), incident_id=incident_id, event_id=event_id))
            else:
                events.append(Resolve(type="resolve", at=now(), incident_id=incident_id, event_id=event_id))
        await self.doors.write(events)
        done = {"claim": "Claimed", "unclaim": "Unclaimed", "resolve": "Resolved"}[command.verb]
        if page is not None and page.batch and len(incidents) > 1:
            return sms(f"{done} {len(incidents)} incidents of batch {page.message_id}: {listing(incidents)}.")
        return sms(f"{done} {incidents[0]}.")

    async def _claim_open(self, user: str, which: str, event_id: str | None) -> web.Response:
        window = duration(self.doors.config.api.paged_window)
        pages = await self.pages.open_for(user)
        if pages is None:
            return sms("Sorry, I cannot tell right now which incidents paged you. Reply 'claim <id>' instead.")
        if not pages:
            return sms(f"Nothing to claim: no open incident paged you in the last {window}.")
        if which == "last":
            pages = pages[:1]
        events: list[Event] = [
            Claim(type="claim", at=now(), incident_id=p.incident_id, owner=user, event_id=event_id) for p in pages
        ]
        await self.doors.write(events)
        ids = [p.incident_id for p in pages]
        if len(ids) == 1:
            return sms(f"Claimed {ids[0]}.")
        return sms(f"Claimed {len(ids)} incidents: {listing(ids)}.")
