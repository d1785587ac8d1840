"""What the three Twilio routes share: the signature check, and answers written as TwiML.

Why a file of its own: SMS replies, key presses and status callbacks are proven the same way
and answer in the same XML; each route's own file then holds only what it does.

`X-Twilio-Signature` is checked by `twilio.request_validator.RequestValidator` with the
account's auth token (`senders.twilio.auth_token` / `auth_token_env`) over the URL Twilio
requested and the form parameters. That URL is `api.public_url` + the path and query as received
when `api.public_url` is set (it must be behind a TLS-terminating proxy: Twilio signs the https
URL it called), else the URL of the request as received. Missing or wrong: 403, and nothing is
written. No auth token configured: the Twilio routes answer 404. (Only auth-token signatures are
checked: webhooks signed with a Twilio SharedKey are refused.)
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from streamproc.api.errors import ApiError
from streamproc.config.models import Config

SMS_LIMIT = 1600


class TwilioGate:
    """Checks that a request comes from Twilio, and reads its form."""

    def __init__(self, config: Config) -> None:
        self.config = config
        token = config.senders.twilio.resolved_auth_token()
        self.validator = RequestValidator(token) if token else None

    def signed_url(self, request: web.Request) -> str:
        """The URL Twilio requested (and signed): `api.public_url` + path and query, or as received."""
        base = self.config.api.public_url
        if base:
            return base.rstrip("/") + request.raw_path
        return str(request.url)

    async def form(self, request: web.Request) -> dict[str, str]:
        """The form of a request Twilio signed; 404 without an auth token, 403 when the signature fails."""
        if self.validator is None:
            raise ApiError(404, "twilio webhooks are off: senders.twilio.auth_token is not configured")
        posted = await request.post()
        # Every value of a repeated key is signed: the validator reads them with getall().
        params = MultiDict((key, value) for key, value in posted.items() if isinstance(value, str))
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            raise ApiError(403, "X-Twilio-Signature: missing")
        if not self.validator.validate(self.signed_url(request), params, signature):
            raise ApiError(403, "X-Twilio-Signature: does not match (auth token, or api.public_url behind a proxy)")
        return dict(params)


def twiml(document: MessagingResponse | VoiceResponse) -> web.Response:
    return web.Response(text=str(document), content_type="text/xml")


def sms(text: str) -> web.Response:
    """An SMS answer (cut to `SMS_LIMIT` characters)."""
    if len(text) > SMS_LIMIT:
        text = text[: SMS_LIMIT - 1] + "…"
    response = MessagingResponse()
    response.message(text)
    return twiml(response)


def voice(text: str) -> web.Response:
    """A spoken answer, then the call ends."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return twiml(response)
