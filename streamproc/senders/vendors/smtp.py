"""Email with aiosmtplib: plain text, plus an HTML alternative when the template has one.

STARTTLS and AUTH are used only when the settings ask for them. SMTP's own reply codes
classify failures: 4xx is temporary, 5xx (bad recipient, auth refused) is permanent.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from streamproc.config.senders import SmtpSettings
from streamproc.senders.vendors.base import VendorResult
from streamproc.wire.outcomes import Message

SUBJECT_LIMIT = 254


def build_email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
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


class SmtpVendor:
    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        if not settings.host:
            raise ValueError("smtp needs a host")
        self._host = settings.host
        self._settings = settings
        self.account: str | None = f"smtp:{settings.host}" if settings.rate else None

    async def send(self, message: Message) -> VendorResult:
        settings = self._settings
        email = build_email(message, settings.from_)
        try:
            await aiosmtplib.send(
                email,
                hostname=self._host,
                port=settings.port,
                start_tls=settings.starttls,
                cert_bundle=settings.ca_file,
                username=settings.username,
                password=settings.resolved_password() if settings.username else None,
                timeout=settings.timeout,
            )
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
        return None
