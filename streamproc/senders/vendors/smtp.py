"""Email with aiosmtplib: plain text, plus an HTML alternative when the template has one.

STARTTLS and AUTH are used only when the settings ask for them. SMTP's own reply codes
classify failures: 4xx is temporary, 5xx (bad recipient, auth refused) is permanent.

A page of plain ASCII text whose header lines need no folding or encoding (most pages) skips the
`email` package: `flat_mail` writes the very bytes the package would (`test_vendors` holds them
equal), as building and flattening an `EmailMessage` cost more than the rest of a send. Others go
the `EmailMessage` way (`build_email`).

Connections are kept and reused (one per concurrent send): connect, EHLO, STARTTLS, AUTH and
QUIT cost more than the mail itself. A connection idle for `IDLE_REUSE` seconds is closed
rather than reused (servers drop idle clients, RFC 5321 says after 5 minutes), so is one that
carried `MAX_PER_CONNECTION` mails, and one that fails in any way. A reused connection the
server has dropped meanwhile or is closing (disconnected, or 421) is replaced by a fresh one
for that send, once: the mail was not accepted on it.
"""

from __future__ import annotations

import email.policy
import re
import time
from dataclasses import dataclass
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib
from aiosmtplib.email import extract_sender, flatten_message

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


def msgid_domain(sender: str) -> str:
    """The domain of the Message-IDs of mails from `sender` (its address's domain)."""
    return parseaddr(sender)[1].rpartition("@")[2] or "streamproc"


def subject_of(message: Message) -> str:
    subject = message.subject or message.body.split("\n", 1)[0]
    return " ".join(subject.split())[:SUBJECT_LIMIT]


def build_email(message: Message, sender: str, date: str | None = None, msgid: str | None = None) -> EmailMessage:
    email = EmailMessage(policy=POLICY)
    email["From"] = sender
    email["To"] = message.destination
    email["Subject"] = subject_of(message)
    email["Date"] = date or formatdate(localtime=False)
    email["Message-ID"] = msgid or make_msgid(domain=msgid_domain(sender))
    email["X-Streamproc-Message-Id"] = message.message_id
    email["X-Streamproc-Incident"] = f"{message.incident_id}#{message.instance}"
    email.set_content(message.body)
    if message.email_html:
        email.add_alternative(message.email_html, subtype="html")
    return email


_LINE = 78
"""`max_line_length` of the policies: longer header lines are folded, longer body lines encoded."""
_WORDS = re.compile(r"[!-~]+(?: [!-~]+)*\Z")
"""A header value that stays as it is: printable ASCII words, one space apart."""
_ATOMS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_ADDR_SPEC = re.compile(rf"{_ATOMS}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
_MSGID = re.compile(r"<[0-9.]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>\Z")
_TEXT = re.compile(r"[\t\n\r -~]*\Z")
_PLAIN_TEXT_TAIL = (
    b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\n'
)


def from_line(sender: str) -> tuple[bytes, str | None]:
    """The From header line of mails from `sender` as sent (folded, encoded), and the envelope
    sender aiosmtplib takes from it (None: the mails go the `EmailMessage` way)."""
    email = EmailMessage(policy=POLICY)
    email["From"] = sender
    head = flatten_message(email, cte_type="7bit").partition(b"\r\n\r\n")[0] + b"\r\n"
    envelope = extract_sender(email)
    return head, envelope if envelope and envelope.isascii() else None


def flat_mail(message: Message, sender_line: bytes, date: str, msgid: str) -> bytes | None:
    """The bytes aiosmtplib sends for `build_email(message, sender, date, msgid)` (after the From
    line `sender_line`, see `from_line`), without the `email` package, when the page needs nothing
    it does: no HTML part; To a bare address; every header line printable ASCII, short enough not
    to be folded and with nothing that reads as an encoded word; a body of ASCII text with no line
    over 78 characters (so 7bit, under either transfer type). None otherwise."""
    if message.email_html or not _ADDR_SPEC.match(message.destination) or not _MSGID.match(msgid):
        return None
    body = message.body
    if not body.isascii() or not _TEXT.match(body):
        return None
    lines = body.encode().splitlines()
    if any(len(line) > _LINE for line in lines):
        return None
    head = [sender_line]
    for name, value in (
        ("To", message.destination),
        ("Subject", subject_of(message)),
        ("Date", date),
        ("Message-ID", msgid),
        ("X-Streamproc-Message-Id", message.message_id),
        ("X-Streamproc-Incident", f"{message.incident_id}#{message.instance}"),
    ):
        if len(name) + 2 + len(value) > _LINE or "=?" in value or not _WORDS.match(value):
            return None
        head.append(f"{name}: {value}\r\n".encode())
    head.append(_PLAIN_TEXT_TAIL)
    head.append(b"\r\n".join(lines) + b"\r\n")
    return b"".join(head)


@dataclass
class _Mail:
    """A page on its way: the sent bytes when `flat_mail` could make them, else the message."""

    message: Message
    msgid: str
    date: str
    flat: bytes | None
    envelope: str | None

    def email(self, sender: str) -> EmailMessage:
        return build_email(self.message, sender, self.date, self.msgid)


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
        try:
            self._from_line, self._envelope = from_line(settings.from_)
        except Exception:  # an address the email package refuses: every mail goes its way, and fails there
            self._from_line, self._envelope = b"", None
        self._domain = msgid_domain(settings.from_)
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

    async def _transmit(self, client: aiosmtplib.SMTP, mail: _Mail) -> None:
        if mail.flat is not None and mail.envelope is not None and not client.is_ehlo_or_helo_needed:
            # What `send_message` does with the EmailMessage, on the bytes it would have made.
            options = ["BODY=8BITMIME"] if client.supports_extension("8BITMIME") else []
            await client.sendmail(mail.envelope, [mail.message.destination], mail.flat, mail_options=options)
        else:
            await client.send_message(mail.email(self._settings.from_))

    async def _deliver(self, mail: _Mail) -> None:
        kept = self._take_idle()
        if kept is not None:
            client, sent = kept
            try:
                await self._transmit(client, mail)
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
            await self._transmit(client, mail)
        except BaseException:
            client.close()
            raise
        self._keep(client, 1)

    def _mail(self, message: Message) -> _Mail:
        msgid = make_msgid(domain=self._domain)
        date = formatdate(localtime=False)
        return _Mail(message, msgid, date, flat_mail(message, self._from_line, date, msgid), self._envelope)

    async def send(self, message: Message) -> VendorResult:
        mail = self._mail(message)
        try:
            await self._deliver(mail)
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
        return VendorResult.ok(vendor_id=mail.msgid)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _since, _sent in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, TimeoutError, OSError):
                pass
            finally:
                client.close()
