"""People answering pages: Twilio SMS replies and key presses, Twilio status callbacks, Slack buttons.

    POST /v1/twilio/sms                Twilio's inbound-SMS webhook (the number's "A message comes in")
    POST /v1/twilio/voice              the <Gather> action of a page call (`senders.twilio.gather_url`)
    POST /v1/twilio/status             Twilio status callbacks (`senders.twilio.status_callback_url`)
    POST /v1/slack/interactivity       Slack's interactivity request URL (the Claim button)

Who is calling is proven by the vendor's signature, checked with the vendor's own library:

- Twilio: `X-Twilio-Signature`, checked by `twilio.request_validator.RequestValidator` with the
  account's auth token (`senders.twilio.auth_token` / `auth_token_env`) over the URL Twilio
  requested and the form parameters. That URL is `api.public_url` + the path and query as
  received when `api.public_url` is set (it must be behind a TLS-terminating proxy: Twilio signs
  the https URL it called), else the URL of the request as received. Missing or wrong: 403, and
  nothing is written. No auth token configured: the Twilio routes answer 404. (Only auth-token
  signatures are checked: webhooks signed with a Twilio SharedKey are refused.)
- Slack: `X-Slack-Signature` (v0, HMAC-SHA256 over `v0:<timestamp>:<body>`) and
  `X-Slack-Request-Timestamp` within 5 minutes, checked by `slack_sdk.signature.SignatureVerifier`
  with `senders.slack.signing_secret` / `signing_secret_env`. Missing, wrong or old: 403, nothing
  written. No signing secret configured: 404.

Who is answering is a configured user: the SMS sender's number (`From`) matched against every
user's `contacts.sms` and `contacts.call` (spaces, dashes, dots and brackets ignored); on a call,
the user the index says the message was sent to, else the called number (`To`); on Slack, the
button presser's id matched against `contacts.slack`. An unknown (or shared) number or Slack id
is told so and nothing is written.

SMS commands (case-insensitive; quotes around the words are ignored):

    claim <id>      <id> claim       claims the incident, owner = the replying user
    unclaim <id>    <id> unclaim     unclaims it
    resolve <id>    <id> resolve     resolves it
    claim last                       the open incident that paged this user most recently
    claim all                        every open incident that paged this user

`<id>` is an incident id, or the message id of a page (its incident is meant). The message id of
a batch message (spec §7) means every incident in the batch: `claim <batch id>` writes one claim
per incident (`unclaim` and `resolve` likewise), and the answer lists them. A message id the index
does not know yet (32 hex digits, as the processor makes them) makes the reply wait (bounded) for
the index to be current before the id is taken for an incident id. An id typed in another case
than the incident's own is corrected when it matches exactly one incident that paged the user
(phones capitalise the first word). "Open incidents that paged this user" come from the index of
who was paged for what (`paged.py`, `api.paged_window` back; a batch's incidents each paged the
user): open means neither claimed nor resolved. Anything else gets a help text. Answers are TwiML
<Message>s saying what was done.

A call's key press: the call sender's TwiML reads the page inside a <Gather> whose action is this
route with `message_id`, `incident_id` and `instance` in the query; pressing `CLAIM_DIGIT` (2)
claims that incident ("Claimed. Goodbye."), or every incident of a batch page the index knows by
that message id ("Claimed 3 incidents. Goodbye."); another key is asked again.

Status callbacks (`MessageSid`/`MessageStatus` or `CallSid`/`CallStatus`, with `message_id`,
`incident_id` and `instance` in the query as the Twilio sender adds them; without them the index
finds the page by its SID) become `vendor-status` records on `streamproc.deliveries` through the
senders' `record_vendor_status`; answered 204.

The Slack button (`action_id` `streamproc_claim`, value `{incident_id, instance, message_id}`, and
on a batch message `incident_ids`) claims the incident for the presser, or every incident of the
batch: the value's `incident_ids`, else those the index knows for `message_id` (waiting for it at
most `SLACK_SYNC_TIMEOUT`: Slack wants its answer within 3 s). The answer is 200 once Kafka has the
claims, and then the page is replaced (`response_url`, `replace_original`) by its text and who
claimed it.

Every write goes through `Doors.write`: answered only after Kafka has the events, 503 when it
cannot take them. Events carry an `event_id` made from the vendor's request id (MessageSid,
CallSid, Slack's action_ts), so a webhook the vendor re-sends is a no-op.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from confluent_kafka import KafkaException, Producer
from multidict import MultiDict
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from streamproc.api.common import Doors, now
from streamproc.api.errors import ApiError, Unavailable
from streamproc.api.paged import Page, PagedIndex
from streamproc.config.models import Config
from streamproc.kafka.clients import producer_config
from streamproc.kafka.deliveries import record_vendor_status
from streamproc.wire.events import Claim, Event, Resolve, Unclaim
from streamproc.wire.replies import CLAIM_ACTION_ID, CLAIM_DIGIT

log = logging.getLogger(__name__)

Verb = Literal["claim", "unclaim", "resolve"]
VERBS: tuple[Verb, ...] = ("claim", "unclaim", "resolve")
_VERB: dict[str, Verb] = {verb: verb for verb in VERBS}
SMS_LIMIT = 1600
SYNC_TIMEOUT = 8.0
"""How long a reply that needs the index ("claim last", a call's user) waits for it to be current:
well inside the 15 s Twilio waits for a webhook's answer, so a busy broker delays the answer
rather than making it "cannot tell right now"."""
SLACK_SYNC_TIMEOUT = 1.5
"""How long a Slack press waits for the index to know its message (Slack waits 3 s in all)."""
MESSAGE_ID = re.compile(r"[0-9a-f]{32}(~email)?")
"""A message id as the processor (and flood control) make them; `~email` on a fallback copy."""
HELP = "Reply 'claim <id>' (or '<id> claim'), 'claim last', 'claim all', 'unclaim <id>' or 'resolve <id>'."
_QUOTES = "'\"`\u2018\u2019\u201c\u201d.,;:!?()[]<>"


# ------------------------------------------------------------------------------------- who is who
def normalize_phone(number: str) -> str:
    """`+1 (555) 000-0001` -> `+15550000001`: digits and a leading plus (also drops `whatsapp:`)."""
    bare = number.rsplit(":", 1)[-1].strip()
    digits = re.sub(r"\D", "", bare)
    return f"+{digits}" if bare.startswith("+") else digits


class Directory:
    """Users by phone number (sms and call contacts) and by Slack id."""

    def __init__(self, config: Config) -> None:
        self.phones: dict[str, list[str]] = {}
        self.slack: dict[str, list[str]] = {}
        for name, user in config.users.items():
            for mode in ("sms", "call"):
                number = user.contacts.get(mode)
                if number:
                    users = self.phones.setdefault(normalize_phone(number), [])
                    if name not in users:
                        users.append(name)
            slack_id = user.contacts.get("slack")
            if slack_id:
                self.slack.setdefault(slack_id, []).append(name)

    def by_phone(self, number: str | None) -> list[str]:
        return list(self.phones.get(normalize_phone(number), [])) if number else []

    def by_slack(self, slack_id: str | None) -> list[str]:
        return list(self.slack.get(slack_id, [])) if slack_id else []


# --------------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class Command:
    verb: Verb
    target: str
    """An incident id (or a page's message id), or `all` / `last` (claim only)."""


def parse_command(text: str) -> Command | None:
    """`claim inc-1`, `inc-1 claim`, `CLAIM ALL`, `claim last`, `unclaim inc-1`, `resolve inc-1`, ..."""
    words = [w.strip(_QUOTES) for w in text.split()]
    words = [w for w in words if w]
    if len(words) != 2:
        return None
    first, second = words
    verb = _VERB.get(first.lower())
    target = second
    if verb is None:
        verb, target = _VERB.get(second.lower()), first
    if verb is None:
        return None
    if target.lower() in ("all", "last"):
        if verb != "claim":
            return None  # 'resolve all' is too easy to send by mistake
        target = target.lower()
    return Command(verb, target)


# ---------------------------------------------------------------------------------------- helpers
def _twiml(document: MessagingResponse | VoiceResponse) -> web.Response:
    return web.Response(text=str(document), content_type="text/xml")


def _sms(text: str) -> web.Response:
    if len(text) > SMS_LIMIT:
        text = text[: SMS_LIMIT - 1] + "…"
    response = MessagingResponse()
    response.message(text)
    return _twiml(response)


def _voice(text: str) -> web.Response:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return _twiml(response)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole >= 2 * 86400 and whole % 86400 == 0:
        return f"{whole // 86400} days"
    for unit, size in (("h", 3600), ("min", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size} {unit}"
    return f"{whole} s"


def _listing(ids: list[str], limit: int = 40) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _one(users: list[str]) -> str | None:
    return users[0] if len(users) == 1 else None


class Replies:
    """The four routes, and what they hold: the index, the status producer, pending Slack updates."""

    def __init__(self, doors: Doors, paged: PagedIndex | None, bootstrap: str) -> None:
        self.doors = doors
        self.config = doors.config
        self.paged = paged
        self.bootstrap = bootstrap
        self.directory = Directory(doors.config)
        token = doors.config.senders.twilio.resolved_auth_token()
        self.twilio = RequestValidator(token) if token else None
        secret = doors.config.senders.slack.resolved_signing_secret()
        self.slack = SignatureVerifier(secret) if secret else None
        self._status_producer: Producer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/twilio/sms", self.twilio_sms),
            web.post("/v1/twilio/voice", self.twilio_voice),
            web.post("/v1/twilio/status", self.twilio_status),
            web.post("/v1/slack/interactivity", self.slack_interactivity),
        ]

    def index_status(self) -> str:
        return self.paged.status() if self.paged is not None else "off"

    async def start(self, app: web.Application) -> None:
        if self.paged is not None:
            self.paged.start()

    async def close(self, app: web.Application) -> None:
        """On cleanup: let Slack updates finish (briefly), stop the index, flush the status producer."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.paged is not None:
            await asyncio.to_thread(self.paged.stop)
        if self._status_producer is not None:
            await asyncio.to_thread(self._status_producer.flush, self.config.api.produce_timeout)
            self._status_producer = None

    # ------------------------------------------------------------------------------ signatures
    def signed_url(self, request: web.Request) -> str:
        """The URL Twilio requested (and signed): `api.public_url` + path and query, or as received."""
        base = self.config.api.public_url
        if base:
            return base.rstrip("/") + request.raw_path
        return str(request.url)

    async def twilio_form(self, request: web.Request) -> dict[str, str]:
        """The form of a request Twilio signed; 404 without an auth token, 403 when the signature fails."""
        if self.twilio is None:
            raise ApiError(404, "twilio webhooks are off: senders.twilio.auth_token is not configured")
        posted = await request.post()
        # Every value of a repeated key is signed: the validator reads them with getall().
        params = MultiDict((key, value) for key, value in posted.items() if isinstance(value, str))
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            raise ApiError(403, "X-Twilio-Signature: missing")
        if not self.twilio.validate(self.signed_url(request), params, signature):
            raise ApiError(403, "X-Twilio-Signature: does not match (auth token, or api.public_url behind a proxy)")
        return dict(params)

    async def slack_body(self, request: web.Request) -> bytes:
        if self.slack is None:
            raise ApiError(404, "slack interactivity is off: senders.slack.signing_secret is not configured")
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        try:
            valid = bool(self.slack.is_valid(body, timestamp, signature))
        except ValueError:  # a timestamp that is not a number
            valid = False
        if not valid:
            raise ApiError(403, "X-Slack-Signature: missing, wrong, or older than 5 minutes")
        return body

    # ------------------------------------------------------------------------------------- SMS
    async def twilio_sms(self, request: web.Request) -> web.Response:
        form = await self.twilio_form(request)
        sender = form.get("From", "")
        users = self.directory.by_phone(sender)
        if not users:
            return _sms(f"{sender or 'This number'} is not the phone number of any streamproc user. Nothing done.")
        if len(users) > 1:
            return _sms(
                f"{sender} is the number of several users ({', '.join(users)}); replies from it cannot "
                "be told apart. Nothing done."
            )
        user = users[0]
        command = parse_command(form.get("Body", ""))
        if command is None:
            return _sms(HELP)
        sid = form.get("MessageSid") or form.get("SmsSid")
        event_id = f"twilio-sms:{sid}" if sid else None
        if command.target in ("all", "last"):
            return await self._claim_open(user, command.target, event_id)
        incidents, page = await self._incidents_named(user, command.target)
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
            return _sms(f"{done} {len(incidents)} incidents of batch {page.message_id}: {_listing(incidents)}.")
        return _sms(f"{done} {incidents[0]}.")

    async def _incidents_named(self, user: str, target: str) -> tuple[list[str], Page | None]:
        """The incidents `target` names, and the page when it is a message id: a page's message id
        (every incident of a batch page), an incident id, or one in another case."""
        if self.paged is None:
            return [target], None
        shaped = MESSAGE_ID.fullmatch(target.lower()) is not None
        page = self.paged.incident_of(target) or (self.paged.incident_of(target.lower()) if shaped else None)
        if page is None and shaped and target not in self.paged.incidents_paging(user):
            # Perhaps a page the index has not read yet (just sent, or the API just started).
            await self.paged.sync(SYNC_TIMEOUT)
            page = self.paged.incident_of(target) or self.paged.incident_of(target.lower())
        if page is not None:
            return list(page.incidents), page
        matches = {i for i in self.paged.incidents_paging(user) if i.lower() == target.lower()}
        if target not in matches and len(matches) == 1:
            return [matches.pop()], None
        return [target], None

    async def _claim_open(self, user: str, which: str, event_id: str | None) -> web.Response:
        window = _duration(self.config.api.paged_window)
        if self.paged is None or not await self.paged.sync(SYNC_TIMEOUT):
            return _sms("Sorry, I cannot tell right now which incidents paged you. Reply 'claim <id>' instead.")
        pages = self.paged.open_for(user)
        if not pages:
            return _sms(f"Nothing to claim: no open incident paged you in the last {window}.")
        if which == "last":
            pages = pages[:1]
        events: list[Event] = [
            Claim(type="claim", at=now(), incident_id=p.incident_id, owner=user, event_id=event_id) for p in pages
        ]
        await self.doors.write(events)
        ids = [p.incident_id for p in pages]
        if len(ids) == 1:
            return _sms(f"Claimed {ids[0]}.")
        return _sms(f"Claimed {len(ids)} incidents: {_listing(ids)}.")

    # ------------------------------------------------------------------------------------ voice
    async def _page(self, message_id: str | None, sid: str | None = None) -> Page | None:
        """The page a callback is about (by message id, else by the vendor's SID); the index is
        brought up to date when it does not know it yet."""
        if self.paged is None or not (message_id or sid):
            return None
        for attempt in range(2):
            page = self.paged.incident_of(message_id) if message_id else None
            if page is None and sid:
                page = self.paged.page_of_vendor_id(sid)
            if page is not None or attempt:
                return page
            await self.paged.sync(SYNC_TIMEOUT)
        return None

    async def twilio_voice(self, request: web.Request) -> web.Response:
        form = await self.twilio_form(request)
        query = request.query
        page = await self._page(query.get("message_id"), form.get("CallSid"))
        incident_id = query.get("incident_id") or (page.incident_id if page else None)
        user = page.user if page else _one(self.directory.by_phone(form.get("To") or form.get("Called")))
        if not incident_id or user is None:
            return _voice(
                "Sorry, this call cannot tell which incident or person it is about. "
                "Please claim by text message or in Slack. Goodbye."
            )
        digits = form.get("Digits", "")
        if digits != CLAIM_DIGIT:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action=self.signed_url(request), method="POST", timeout=10)
            gather.say(f"Sorry, that key does nothing. Press {CLAIM_DIGIT} to claim this incident.")
            response.append(gather)
            response.say("Goodbye.")
            return _twiml(response)
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
        return _voice("Claimed. Goodbye." if len(incidents) == 1 else f"Claimed {len(incidents)} incidents. Goodbye.")

    # ----------------------------------------------------------------------------------- status
    def _producer(self) -> Producer:
        if self._status_producer is None:
            timeout_ms = int(self.config.api.produce_timeout * 1000)
            self._status_producer = Producer(
                producer_config(
                    self.bootstrap, **{"message.timeout.ms": timeout_ms, "client.id": "streamproc-api-status"}
                )
            )
        return self._status_producer

    async def twilio_status(self, request: web.Request) -> web.Response:
        form = await self.twilio_form(request)
        sid = form.get("MessageSid") or form.get("SmsSid") or form.get("CallSid")
        status = form.get("MessageStatus") or form.get("SmsStatus") or form.get("CallStatus")
        if not sid or not status:
            raise ApiError(400, "a status callback names MessageSid and MessageStatus, or CallSid and CallStatus")
        query = request.query
        message_id = query.get("message_id")
        if message_id and query.get("incident_id"):  # as the Twilio sender sends it: no need to wait
            page = self.paged.incident_of(message_id) if self.paged is not None else None
        else:
            page = await self._page(message_id, sid)
        instance_text = query.get("instance", "")
        instance = int(instance_text) if instance_text.isdigit() else (page.instance if page else None)
        user = page.user if page else _one(self.directory.by_phone(form.get("To")))
        detail = "; ".join(
            f"{key} {form[key]}" for key in ("ErrorCode", "ErrorMessage", "CallDuration") if form.get(key)
        )
        try:
            await asyncio.to_thread(
                record_vendor_status,
                self._producer(),
                message_id or (page.message_id if page else sid),
                "twilio",
                status,
                detail,
                vendor_id=sid,
                user=user,
                incident_id=query.get("incident_id") or (page.incident_id if page else None),
                instance=instance,
                timeout=self.config.api.produce_timeout,
            )
        except (KafkaException, BufferError) as exc:
            raise Unavailable(f"vendor-status record not written ({exc})") from exc
        return web.Response(status=204)

    # ------------------------------------------------------------------------------------ Slack
    async def slack_interactivity(self, request: web.Request) -> web.Response:
        await self.slack_body(request)
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
        user = _one(self.directory.by_slack(slack_id))
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
        self._later(response_url, self._claimed_message(payload, ids, user, slack_id))
        return web.Response(status=200)

    async def _button_incidents(self, value: Any, incident_id: str) -> list[str]:
        """The incidents a Claim button is about: a batch's (from the value, else from the index by
        message id), or its own."""
        listed = value.get("incident_ids") if isinstance(value, dict) else None
        if isinstance(listed, list) and listed and all(isinstance(i, str) and i for i in listed):
            return list(dict.fromkeys(listed))
        message_id = value.get("message_id") if isinstance(value, dict) else None
        if self.paged is None or not isinstance(message_id, str) or not message_id:
            return [incident_id]
        page = self.paged.incident_of(message_id)
        if page is None and MESSAGE_ID.fullmatch(message_id):
            await self.paged.sync(SLACK_SYNC_TIMEOUT)
            page = self.paged.incident_of(message_id)
        return list(page.incidents) if page is not None and page.batch else [incident_id]

    @staticmethod
    def _claimed_message(payload: Mapping[str, Any], ids: list[str], user: str, slack_id: str) -> dict[str, Any]:
        """The page as it was (its text section), with the button replaced by who claimed it."""
        message = payload.get("message") if isinstance(payload.get("message"), dict) else {}
        blocks = [b for b in (message or {}).get("blocks") or [] if isinstance(b, dict) and b.get("type") == "section"]
        claimed = f"Claimed by <@{slack_id}> ({user})"
        return {
            "replace_original": True,
            "text": f"{_listing(ids)}: claimed by {user}",
            "blocks": [*blocks[:1], {"type": "context", "elements": [{"type": "mrkdwn", "text": claimed}]}],
        }

    def _later(self, response_url: str | None, body: dict[str, Any]) -> None:
        """POST `body` to Slack's response_url in the background (the answer does not wait for it)."""
        if response_url is None:
            return
        task = asyncio.create_task(self._respond(response_url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respond(self, response_url: str, body: dict[str, Any]) -> None:
        client = AsyncWebhookClient(response_url, timeout=10)
        try:
            answer = await client.send(**body)
        except Exception as exc:
            log.warning("slack response_url failed: %s", exc)
            return
        if answer.status_code != 200:
            log.warning("slack response_url answered %s: %s", answer.status_code, answer.body)
