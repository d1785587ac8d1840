"""Twilio SMS and voice through the official `twilio` client (its async API).

Voice calls carry inline TwiML: the message is read out inside a <Gather>, so pressing
the claim key posts to the gather URL (settings `twilio.gather_url`, the API's
`/v1/twilio/voice`) with the message id, incident id and instance in the query string.
Status callbacks (`twilio.status_callback_url`, the API's `/v1/twilio/status`) get the same
query parameters, so a callback names the page it is about.

`base_url` points the real client at another host (a local fake in tests, or a proxy):
the client's HTTP layer is swapped for one that rewrites `https://*.twilio.com` URLs.
Twilio's exceptions do not carry response headers, so the same HTTP layer stashes a
429's Retry-After in a context variable that the send reads back (one asyncio task per
send, so concurrent sends never see each other's value).

A send is one request through the client's HTTP layer (`AsyncTwilioHttpClient`, kept-alive
aiohttp connections) with the client's own headers and error parsing (`Version.exception`), to
the URL `client.messages.create` / `client.calls.create` post to, with the form they would send.
Their resource layer is left out: it builds the request through four layers and parses every
answer into an instance of some forty fields (three dates among them), where a page needs the
`sid`; together that cost more than the request itself. The TwiML of a call is written directly
(`call_twiml`, the bytes `VoiceResponse` makes; `test_vendors` holds them equal).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.base.version import Version
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from streamproc.config.senders import TwilioSettings
from streamproc.senders.vendors.base import VendorResult, parse_retry_after, retryable_http_status
from streamproc.wire.outcomes import Message
from streamproc.wire.replies import CLAIM_DIGIT

"""Iris asks callees to press 2 to claim; kept for people used to it."""
SMS_LIMIT = 1600

_retry_after: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


class _HttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's own aiohttp client, with an optional host rewrite and Retry-After capture."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout  # the parent stores a timeout but never applies it
        self._base = urlsplit(base_url.rstrip("/")) if base_url else None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._base is not None:
            parts = urlsplit(url)
            url = urlunsplit((self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, ""))
        if auth is not None:
            # As a header: aiohttp deprecates its `auth=BasicAuth(...)` argument.
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        _retry_after.set(None)
        async with asyncio.timeout(self._timeout):
            response: Response = await super().request(
                method, url, params, data, headers, None, timeout, allow_redirects
            )
        if response.status_code == 429:
            _retry_after.set(response.headers.get("Retry-After"))
        return response

    # The client logs every request and response at INFO, some ten lines each (URL, every
    # header): at DEBUG only, so a sender at its default level logs its own two lines a page.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            super().log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            super().log_response(status_code, response)


def with_page(url: str, message: Message) -> str:
    """`url` with the page's `message_id`, `incident_id` and `instance` added to its query, so a
    callback to it (a key press, a status callback) says which page it is about."""
    query = urlencode(
        {
            "message_id": message.message_id,
            "incident_id": message.incident_id,
            "instance": message.instance,
        }
    )
    return url + ("&" if "?" in url else "?") + query


def _text(value: str) -> str:
    """XML character data, escaped as ElementTree (under `VoiceResponse`) escapes it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    """An XML attribute value, escaped as ElementTree escapes it."""
    return _text(value).replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;").replace("\t", "&#09;")


_TWIML_HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
_CLAIM_PROMPT = (
    f"<Say>Press {CLAIM_DIGIT} to claim this incident.</Say></Gather><Say>No key was pressed. Goodbye.</Say>"
)


def call_twiml(message: Message, gather_url: str | None) -> str:
    """What the callee hears: subject and body, then how to claim (when a gather URL is set).
    Written directly; the same TwiML as `voice_response_twiml`, which it stands for."""
    spoken = f"{message.subject}. {message.body}" if message.subject else message.body
    if not spoken:
        return voice_response_twiml(message, gather_url)  # an empty <Say />: rare, left to the library
    say = f'<Say loop="2">{_text(spoken)}</Say>'
    if gather_url:
        action = _attribute(with_page(gather_url, message))
        gather = f'<Gather action="{action}" method="POST" numDigits="1" timeout="10">'
        return f"{_TWIML_HEAD}{gather}{say}{_CLAIM_PROMPT}</Response>"
    return f"{_TWIML_HEAD}{say}</Response>"


def voice_response_twiml(message: Message, gather_url: str | None) -> str:
    """`call_twiml` built with twilio's `VoiceResponse`."""
    spoken = f"{message.subject}. {message.body}" if message.subject else message.body
    response = VoiceResponse()
    if gather_url:
        action = with_page(gather_url, message)
        gather = Gather(num_digits=1, action=action, method="POST", timeout=10)
        gather.say(spoken, loop=2)
        gather.say(f"Press {CLAIM_DIGIT} to claim this incident.")
        response.append(gather)
        response.say("No key was pressed. Goodbye.")
    else:
        response.say(spoken, loop=2)
    return str(response)


class TwilioVendor:
    """One instance per mode (sms or call); both name the same rate-limit account."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings, voice: bool) -> None:
        creds = settings.credentials()
        if creds is None:
            raise ValueError("twilio needs account_sid, auth_token and from_number")
        self._sid, self._token, self._from = creds
        self._settings = settings
        self._voice = voice
        self._client: Client | None = None
        self._http: _HttpClient | None = None
        self._uri = self._url = ""
        self._headers: dict[str, str] = {}
        self.account: str | None = f"twilio:{self._sid}" if settings.rate else None

    def _get_http(self) -> _HttpClient:
        # Built lazily: Twilio's aiohttp session must be created inside the running loop.
        if self._http is None:
            self._http = _HttpClient(self._settings.base_url, self._settings.timeout)
            self._client = Client(self._sid, self._token, http_client=self._http)
            # What `client.calls.create` / `client.messages.create` post to, and with which headers.
            api = self._client.api.v2010
            self._uri = f"/Accounts/{self._sid}/{'Calls' if self._voice else 'Messages'}.json"
            self._url = self._client.get_hostname(api.absolute_url(self._uri))  # with TWILIO_EDGE, _REGION
            self._headers = self._client.get_headers(
                "POST", {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
            )
        return self._http

    async def send(self, message: Message) -> VendorResult:
        http = self._get_http()
        form = {"To": message.destination, "From": self._from}
        if self._voice:
            form["Twiml"] = call_twiml(message, self._settings.gather_url)
        else:
            form["Body"] = (message.body or message.subject)[:SMS_LIMIT]
        if self._settings.status_callback_url:
            form["StatusCallback"] = with_page(self._settings.status_callback_url, message)
        try:
            response = await http.request(
                "POST", self._url, data=urlencode(form).encode(), headers=self._headers, auth=(self._sid, self._token)
            )
            if response.status_code < 200 or response.status_code >= 400:
                raise Version.exception("POST", self._uri, response, "Unable to create record")
            sid = json.loads(response.text)["sid"]
        except TwilioRestException as exc:
            detail = f"HTTP {exc.status} code {exc.code}: {exc.msg}"
            if exc.status == 429:
                return VendorResult.temporary(detail, parse_retry_after(_retry_after.get()))
            if retryable_http_status(exc.status):
                return VendorResult.temporary(detail)
            return VendorResult.permanent(detail)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return VendorResult.temporary(f"{type(exc).__name__}: {exc}")
        except TwilioException as exc:
            return VendorResult.temporary(f"twilio: {exc}")
        except (ValueError, KeyError, TypeError) as exc:  # a 2xx answer that is not a resource
            return VendorResult.temporary(f"twilio: unreadable answer ({type(exc).__name__}: {exc})")
        return VendorResult.ok(vendor_id=str(sid))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            await asyncio.sleep(0)
