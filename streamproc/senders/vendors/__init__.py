"""Vendors: one per contact mode, behind the `Vendor` interface of `base.py`.

`build_vendors` picks the real vendor when its credentials are configured and `console`
otherwise, so "no credentials" means "print", never "fail".
"""

from __future__ import annotations

from collections.abc import Iterable

from streamproc.config.senders import SendersSettings
from streamproc.senders.vendors.base import Vendor, VendorResult
from streamproc.senders.vendors.console import ConsoleVendor

__all__ = ["ConsoleVendor", "Vendor", "VendorResult", "build_vendor", "build_vendors"]


def build_vendor(mode: str, settings: SendersSettings) -> Vendor:
    if mode in ("sms", "call") and settings.twilio.credentials() is not None:
        from streamproc.senders.vendors.twilio import TwilioVendor

        return TwilioVendor(settings.twilio, voice=mode == "call")
    if mode == "slack" and settings.slack.resolved_token():
        from streamproc.senders.vendors.slack import SlackVendor

        return SlackVendor(settings.slack)
    if mode == "email" and settings.smtp.host:
        from streamproc.senders.vendors.smtp import SmtpVendor

        return SmtpVendor(settings.smtp)
    if mode == "webhook" and settings.webhook.resolved_secret():
        from streamproc.senders.vendors.webhook import WebhookVendor

        return WebhookVendor(settings.webhook)
    return ConsoleVendor()


def build_vendors(modes: Iterable[str], settings: SendersSettings) -> dict[str, Vendor]:
    return {mode: build_vendor(mode, settings) for mode in modes}
