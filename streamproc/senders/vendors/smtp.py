"""Email with aiosmtplib: plain text, plus an HTML alternative when the template has one.

STARTTLS and AUTH are used only when the settings ask for them. SMTP's own reply codes
classify failures: 4xx is temporary, 5xx (bad recipient, auth refused) is permanent.

Connections are kept and reused (one per concurrent send): connect, EHLO, STARTTLS, AUTH and
QUIT cost more than the mail itself. A connection idle for `IDLE_REUSE` seconds is closed
rather than reused (servers drop idle clients, RFC 5321 says after 5 minutes), so is one that
carried `MAX_PER_CONNECTION` mails, and one that fails in any way. A reused connection the
server has dropped meanwhile or is closing (disconnected, or 421) is replaced by a fresh one
for that send, once: the mail was not accepted on it.
"""

from __future__ import annotations

import email.policy
import time
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from streamproc.config.senders import SmtpSettings
from streamproc.senders.vendors.base import VendorResult
from streamproc.wire.outcomes import Message

SUBJECT_LIMIT = 254


_SHARED = frozenset({"from", "to", "content-type", "content-transfer-encoding", "mime-version"})
"""Headers whose values repeat from mail to mail (addresses, MIME headers)."""


class _Registry(HeaderRegistry):
    """The stdlib's header registry makes a new class with `type()` on every lookup, once per
    header set; the class depends on the header's name only, so each is made once. Headers of
    the names above are parsed once per value: header objects are immutable, and parsing one
    (an address, a content type) costs more than the rest of the mail."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        if name.lower() not in _SHARED:
            return super().__call__(name, value)
        header = self._parsed.get((name, value))
        if header is None:
            if len(self._parsed) >= 4096:
                self._parsed.clear()
            header = self._parsed[(name, value)] = super().__call__(name, value)
        return header


POLICY = email.policy.default.clone(header_factory=_Registry())
"""`email.policy.default` (what `EmailMessage()` uses), with the registry above: same bytes."""


def build_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage(policy=POLICY)
    email["From"] = sender
    email["To"] = message.destination
    subject = message.subject or message.body.split("\n", 1)[0]
    email["Subject"] = " ".join(subject.split())[:SUBJECT_LIMIT]
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "streamproc")
    email["X-Streamproc-Message-Id"] = message.message_id
    email["X-Streamproc-Incident"] = f"{message.incident_id}#{message.instance}"
    email.set_content(message.body)
    if message.email_html:
        email.add_alternative(message.email_html, subtype="html")
    return email


IDLE_REUSE = 30.0
"""Seconds a kept connection may sit idle and still be reused."""
MAX_PER_CONNECTION = 100
"""Mails sent on one connection before it is closed (servers limit it too, answering 421)."""


class SmtpVendor:
    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.host:
            raise ValueError("smtp needs a host")
        self._host = settings.host
        self._settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float, int]] = []
        """Connected clients not in use, since when (monotonic) and mails sent on each; the newest last."""
        self.account: str | None = f"smtp:{settings.host}" if settings.rate else None

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=settings.port,
            start_tls=settings.starttls,
            cert_bundle=settings.ca_file,
            username=settings.username,
            password=settings.resolved_password() if settings.username else None,
            timeout=settings.timeout,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return client

    def _take_idle(self) -> tuple[aiosmtplib.SMTP, int] | None:
        cutoff = time.monotonic() - IDLE_REUSE
        while self._idle:
            client, since, sent = self._idle.pop()
            if since >= cutoff and client.is_connected:
                return client, sent
            client.close()
        return None

    def _keep(self, client: aiosmtplib.SMTP, sent: int) -> None:
        if sent < MAX_PER_CONNECTION:
            self._idle.append((client, time.monotonic(), sent))
        else:
            client.close()

    async def _deliver(self, email: EmailMessage) -> None:
        kept = self._take_idle()
        if kept is not None:
            client, sent = kept
            try:
                await client.send_message(email)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as exc:
                client.close()
                if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code != 421:
                    raise
                # Dropped while idle, or closing (421: too many messages, idle too long, ...):
                # the mail was not taken; it goes on a fresh connection.
            except BaseException:
                client.close()
                raise
            else:
                self._keep(client, sent + 1)
                return
        client = await self._connect()
        try:
            await client.send_message(email)
        except BaseException:
            client.close()
            raise
        self._keep(client, 1)

    async def send(self, message: Message) -> VendorResult:
        email = build_email(message, self._settings.from_)
        try:
            await self._deliver(email)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            if codes and all(400 <= c < 500 for c in codes):
                return VendorResult.temporary(detail)
            return VendorResult.permanent(detail)
        except aiosmtplib.SMTPResponseException as exc:
            detail = f"{exc.code} {exc.message}"
            if 400 <= exc.code < 500:
                return VendorResult.temporary(detail)
            return VendorResult.permanent(detail)
        except (aiosmtplib.SMTPException, TimeoutError, OSError) as exc:
            return VendorResult.temporary(f"{type(exc).__name__}: {exc}")
        return VendorResult.ok(vendor_id=str(email["Message-ID"]))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _since, _sent in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, TimeoutError, OSError):
                pass
            finally:
                client.close()
