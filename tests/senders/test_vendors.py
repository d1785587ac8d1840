"""Each vendor against its local fake: what the fake received, and how failures classify."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import ssl
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiosmtplib
import pytest
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.config.senders import (
    SendersSettings,
    SlackSettings,
    SmtpSettings,
    TwilioSettings,
    WebhookSettings,
)
from streamproc.senders.vendors import ConsoleVendor, build_vendor
from streamproc.senders.vendors import smtp as smtp_vendor_module
from streamproc.senders.vendors.base import parse_retry_after
from streamproc.senders.vendors.slack import CLAIM_ACTION_ID, SlackVendor
from streamproc.senders.vendors.smtp import SUBJECT_LIMIT, SmtpVendor, build_email, flat_mail, from_line
from streamproc.senders.vendors.twilio import TwilioVendor, call_twiml, voice_response_twiml
from streamproc.senders.vendors.webhook import SIGNATURE_HEADER, WebhookVendor
from streamproc.wire.outcomes import Message
from tests.fakes import FakeSlack, FakeSmtp, FakeTwilio, FakeWebhook
from tests.senders.helpers import message

# ------------------------------------------------------------------------------------------ twilio


def twilio_settings(fake: FakeTwilio, **kw: object) -> TwilioSettings:
    return TwilioSettings(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_number="+15559990000",
        base_url=fake.url,
        **kw,  # type: ignore[arg-type]
    )


async def test_twilio_sms_posts_form_with_basic_auth(twilio: FakeTwilio) -> None:
    vendor = TwilioVendor(twilio_settings(twilio, status_callback_url="http://relay/status"), voice=False)
    msg = message(body="inc-1: disk full (reply 'claim inc-1')", destination="+15550000001")
    result = await vendor.send(msg)
    await vendor.close()

    assert result.outcome == "ok"
    [got] = twilio.sms
    assert got.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    callback = urlsplit(got.form.pop("StatusCallback"))
    assert got.form == {
        "To": "+15550000001",
        "From": "+15559990000",
        "Body": "inc-1: disk full (reply 'claim inc-1')",
    }
    # The callback names the page, as the gather URL does, so the API can record the status against it.
    assert (callback.scheme, callback.netloc, callback.path) == ("http", "relay", "/status")
    assert parse_qs(callback.query) == {
        "message_id": [msg.message_id],
        "incident_id": [msg.incident_id],
        "instance": [str(msg.instance)],
    }
    user, _, password = base64.b64decode(got.headers["Authorization"][6:]).decode().partition(":")
    assert (user, password) == (twilio.account_sid, twilio.auth_token)
    assert result.vendor_id is not None and result.vendor_id.startswith("SM")
    # the twilio client's own headers, as `client.messages.create` sends them
    assert got.headers["Accept"] == "application/json"
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert got.headers["User-Agent"].startswith("twilio-python/")


async def test_twilio_call_reads_message_and_gathers_claim_key(twilio: FakeTwilio) -> None:
    vendor = TwilioVendor(
        twilio_settings(
            twilio,
            gather_url="https://relay.example/gather?src=x",
            status_callback_url="https://relay.example/status?src=y",
        ),
        voice=True,
    )
    msg = message(mode="call", subject="[crit] disk full", body="db01 is at 99%")
    result = await vendor.send(msg)
    await vendor.close()

    assert result.outcome == "ok" and result.vendor_id is not None and result.vendor_id.startswith("CA")
    [got] = twilio.calls
    assert got.form["To"] == msg.destination and got.form["From"] == "+15559990000"
    root = ET.fromstring(got.form["Twiml"])
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("numDigits") == "1" and gather.get("method") == "POST"
    action = urlsplit(gather.get("action", ""))
    assert action.netloc == "relay.example" and action.path == "/gather"
    query = parse_qs(action.query)
    assert query["message_id"] == [msg.message_id]
    assert query["incident_id"] == [msg.incident_id]
    assert query["src"] == ["x"]
    status = urlsplit(got.form["StatusCallback"])
    assert (status.netloc, status.path) == ("relay.example", "/status")
    assert parse_qs(status.query) == {
        "src": ["y"],
        "message_id": [msg.message_id],
        "incident_id": [msg.incident_id],
        "instance": [str(msg.instance)],
    }
    spoken = [say.text for say in gather.findall("Say")]
    assert spoken[0] == "[crit] disk full. db01 is at 99%"
    assert "Press 2 to claim" in (spoken[1] or "")


@pytest.mark.parametrize("gather_url", [None, 'https://relay.example/gather?src=x&b="q"\t'])
@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "[crit] disk full", "body": "db01 is at 99%"},
        {"subject": "", "body": "a <b> & 'c' \"d\"\r\n\te ✓"},
        {"subject": "", "body": ""},
    ],
)
def test_call_twiml_is_what_voice_response_makes(gather_url: str | None, fields: dict[str, str]) -> None:
    msg = message(mode="call", **fields)
    assert call_twiml(msg, gather_url) == voice_response_twiml(msg, gather_url)


@settings(max_examples=200, deadline=None)
@given(
    subject=st.text(max_size=40),
    body=st.text(max_size=80),
    gather_url=st.none() | st.text(max_size=40),
    incident=st.text(min_size=1, max_size=20),
)
def test_call_twiml_is_voice_response_for_any_page(
    subject: str, body: str, gather_url: str | None, incident: str
) -> None:
    msg = message(mode="call", subject=subject, body=body, incident_id=incident)
    try:
        expected = voice_response_twiml(msg, gather_url)
    except ValueError:  # text XML cannot hold (lone surrogates)
        return
    assert call_twiml(msg, gather_url) == expected


async def test_twilio_answer_that_is_not_a_resource_is_temporary(twilio: FakeTwilio) -> None:
    vendor = TwilioVendor(twilio_settings(twilio), voice=False)
    twilio.fail_next(200)  # 200 with an error body: no sid
    result = await vendor.send(message())
    await vendor.close()
    assert result.outcome == "temporary" and "sid" in result.detail


async def test_twilio_failures_classify(twilio: FakeTwilio) -> None:
    vendor = TwilioVendor(twilio_settings(twilio), voice=False)
    twilio.fail_next(429, retry_after="3")
    twilio.fail_next(503)
    twilio.invalid_numbers.add("+1555")
    limited = await vendor.send(message())
    unavailable = await vendor.send(message())
    invalid = await vendor.send(message(destination="+1555"))
    await vendor.close()

    assert (limited.outcome, limited.retry_after) == ("temporary", 3.0)
    assert unavailable.outcome == "temporary" and unavailable.retry_after is None
    assert invalid.outcome == "permanent" and "21211" in invalid.detail
    assert [r.status for r in twilio.requests] == [429, 503, 400]


async def test_twilio_bad_credentials_are_permanent(twilio: FakeTwilio) -> None:
    settings = twilio_settings(twilio).model_copy(update={"auth_token": "wrong"})
    vendor = TwilioVendor(settings, voice=False)
    result = await vendor.send(message())
    await vendor.close()
    assert result.outcome == "permanent" and "20003" in result.detail
    assert twilio.delivered == []


async def test_twilio_unreachable_is_temporary() -> None:
    fake = FakeTwilio()
    await fake.start()
    url = fake.url
    await fake.close()  # nothing listens there any more
    vendor = TwilioVendor(
        TwilioSettings(account_sid=fake.account_sid, auth_token="t", from_number="+1", base_url=url),
        voice=False,
    )
    result = await vendor.send(message())
    await vendor.close()
    assert result.outcome == "temporary"


async def test_twilio_slow_answer_times_out_as_temporary(twilio: FakeTwilio) -> None:
    twilio.delay = 1.0
    vendor = TwilioVendor(twilio_settings(twilio, timeout=0.3), voice=False)
    result = await vendor.send(message())
    await vendor.close()
    assert result.outcome == "temporary"


async def test_twilio_secrets_from_env(twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_TWILIO_TOKEN", twilio.auth_token)
    settings = TwilioSettings(
        account_sid=twilio.account_sid,
        auth_token_env="TEST_TWILIO_TOKEN",
        from_number="+1",
        base_url=twilio.url,
    )
    vendor = build_vendor("sms", SendersSettings(twilio=settings))
    assert isinstance(vendor, TwilioVendor)
    assert (await vendor.send(message())).outcome == "ok"
    await vendor.close()


# ------------------------------------------------------------------------------------------- slack


async def test_slack_posts_message_with_claim_button(slack: FakeSlack) -> None:
    vendor = SlackVendor(SlackSettings(token=slack.token, base_url=slack.api_url))
    msg = message(mode="slack", destination="U01ALICE", subject="[crit] disk full", body="db01 at 99%")
    result = await vendor.send(msg)

    await vendor.close()
    assert result.outcome == "ok" and result.vendor_id
    [got] = slack.delivered
    assert got.headers["Authorization"] == f"Bearer {slack.token}"
    assert got.json["channel"] == "U01ALICE"
    assert got.json["text"] == "[crit] disk full: db01 at 99%"
    section, actions = got.json["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": "*[crit] disk full*\ndb01 at 99%"}
    [button] = actions["elements"]
    assert button["type"] == "button" and button["action_id"] == CLAIM_ACTION_ID
    assert button["text"]["text"] == "Claim"
    assert json.loads(button["value"]) == {
        "incident_id": msg.incident_id,
        "instance": 1,
        "message_id": msg.message_id,
    }


async def test_slack_failures_classify(slack: FakeSlack) -> None:
    slack.channels = {"U01ALICE"}
    vendor = SlackVendor(SlackSettings(token=slack.token, base_url=slack.api_url))
    slack.fail_next(429, retry_after="7")
    limited = await vendor.send(message(mode="slack", destination="U01ALICE"))
    unknown = await vendor.send(message(mode="slack", destination="U0NOBODY"))
    slack.fail_next(500)
    broken = await vendor.send(message(mode="slack", destination="U01ALICE"))
    wrong = SlackVendor(SlackSettings(token="xoxb-wrong", base_url=slack.api_url))
    bad_token = await wrong.send(message(mode="slack", destination="U01ALICE"))
    await vendor.close()
    await wrong.close()

    assert (limited.outcome, limited.retry_after) == ("temporary", 7.0)
    assert unknown.outcome == "permanent" and "channel_not_found" in unknown.detail
    assert broken.outcome == "temporary"
    assert bad_token.outcome == "permanent" and "invalid_auth" in bad_token.detail
    assert slack.delivered == []


# ------------------------------------------------------------------------------------------- email


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


async def test_email_sends_text_and_html_alternative(smtp: FakeSmtp) -> None:
    vendor = SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port, **{"from": "pager@example.com"}))
    msg = message(
        mode="email",
        destination="alice@example.com",
        subject="[crit] disk full",
        body="db01 at 99%",
        email_html="<p><b>db01</b> at 99%</p>",
    )
    result = await vendor.send(msg)
    await vendor.close()

    assert result.outcome == "ok"
    [got] = smtp.messages
    assert got.mail_from == "pager@example.com" and got.rcpt_tos == ["alice@example.com"]
    assert got.authenticated_as is None and not got.tls
    mail = got.message
    assert mail["Subject"] == "[crit] disk full"
    assert mail["X-Streamproc-Message-Id"] == msg.message_id
    assert mail["Message-ID"] == result.vendor_id
    assert mail.get_content_type() == "multipart/alternative"
    plain, html = mail.iter_parts()
    assert plain.get_content_type() == "text/plain" and plain.get_content().strip() == "db01 at 99%"
    assert html.get_content_type() == "text/html" and "<b>db01</b>" in html.get_content()


async def test_email_without_html_is_plain_text(smtp: FakeSmtp) -> None:
    vendor = SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port))
    assert (await vendor.send(message(mode="email", destination="a@example.com", body="x"))).outcome == "ok"
    await vendor.close()
    assert smtp.messages[0].message.get_content_type() == "text/plain"


async def test_email_authenticates_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeSmtp(username="pager", password="s3cret").start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        good = SmtpVendor(
            SmtpSettings(host=fake.host, port=fake.port, username="pager", password_env="TEST_SMTP_PASSWORD")
        )
        bad = SmtpVendor(SmtpSettings(host=fake.host, port=fake.port, username="pager", password="nope"))
        ok = await good.send(message(mode="email", destination="a@example.com"))
        refused = await bad.send(message(mode="email", destination="a@example.com"))
        await good.close()
        await bad.close()
    finally:
        fake.stop()
    assert ok.outcome == "ok" and fake.messages[0].authenticated_as == "pager"
    assert refused.outcome == "permanent" and refused.detail.startswith("535")
    assert len(fake.messages) == 1


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


async def test_email_starttls(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    fake = FakeSmtp(tls_context=context).start()
    try:
        vendor = SmtpVendor(SmtpSettings(host=fake.host, port=fake.port, starttls=True, ca_file=str(cert)))
        plain = SmtpVendor(SmtpSettings(host=fake.host, port=fake.port))
        ok = await vendor.send(message(mode="email", destination="a@example.com"))
        refused = await plain.send(message(mode="email", destination="a@example.com"))
        await vendor.close()
        await plain.close()
    finally:
        fake.stop()
    assert ok.outcome == "ok"
    assert [m.tls for m in fake.messages] == [True]
    assert refused.outcome == "permanent"  # 530 Must issue a STARTTLS command first


async def test_email_failures_classify(smtp: FakeSmtp) -> None:
    vendor = SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port))
    smtp.reject.add("nobody@example.com")
    unknown = await vendor.send(message(mode="email", destination="nobody@example.com"))
    smtp.fail_next(451, "try again later")
    later = await vendor.send(message(mode="email", destination="a@example.com"))
    smtp.stop()
    down = await vendor.send(message(mode="email", destination="a@example.com"))
    await vendor.close()
    assert unknown.outcome == "permanent" and unknown.detail.startswith("550")
    assert later.outcome == "temporary" and later.detail.startswith("451")
    assert down.outcome == "temporary"
    assert smtp.messages == []


def _stdlib_email(msg: Message, sender: str) -> EmailMessage:
    """What `build_email` built before its header caches: the plain `EmailMessage()` way."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = msg.destination
    mail["Subject"] = " ".join((msg.subject or msg.body.split("\n", 1)[0]).split())[:SUBJECT_LIMIT]
    for name in ("Date", "Message-ID"):
        mail[name] = "x"
    mail["X-Streamproc-Message-Id"] = msg.message_id
    mail["X-Streamproc-Incident"] = f"{msg.incident_id}#{msg.instance}"
    mail.set_content(msg.body)
    if msg.email_html:
        mail.add_alternative(msg.email_html, subtype="html")
    return mail


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "[crit] disk full", "body": "db01 at 99%"},
        {"subject": "Störung: Festplatte voll ✓ " * 12, "body": "Zeile 1\nZeile 2 — ünïcödé\n" + "x" * 200},
        {"subject": "", "body": "first line\nsecond", "email_html": "<p>grüß <b>dich</b></p>"},
        {"subject": "s", "body": "b", "destination": "Dörte Example <doerte@example.com>"},
    ],
)
def test_email_bytes_are_the_stdlib_defaults(fields: dict[str, str]) -> None:
    msg = message(mode="email", **{"destination": "alice@example.com", **fields})
    for _ in range(2):  # the second time from the caches
        built = build_email(msg, "Pager <pager@example.com>")
        expected = _stdlib_email(msg, "Pager <pager@example.com>")
        for name in ("Date", "Message-ID"):
            assert built[name]
            del built[name], expected[name]
        if expected.is_multipart():  # otherwise random, made when flattened
            expected.set_boundary("==boundary==")
            built.set_boundary("==boundary==")
        assert built.as_bytes() == expected.as_bytes()


_DATE = "Mon, 07 Dec 2026 00:17:01 -0000"
_MSGID = "<179660262107.1755.2397917050841173163@example.com>"


def _sent_by_stdlib(msg: Message, sender: str, cte_type: str) -> bytes:
    """The bytes aiosmtplib's `send_message` sends for the `EmailMessage` of `build_email`."""
    return flatten_message(build_email(msg, sender, _DATE, _MSGID), cte_type=cte_type)


@pytest.mark.parametrize("sender", ["streamproc@localhost", "Pager <pager@example.com>", "Störung <s@example.com>"])
@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "[crit] disk full", "body": "db01 at 99%"},
        {"subject": "", "body": "first line\nsecond\r\nthird\rfourth\n\n"},
        {"subject": "tabs\tand  spaces ", "body": "\tindented\n.\n..\nFrom here"},
        {"subject": "s", "body": ""},
        {"subject": "x" * (78 - len("Subject: ")), "body": "y" * 78},
    ],
)
def test_flat_mail_is_what_the_email_package_sends(sender: str, fields: dict[str, str]) -> None:
    msg = message(mode="email", destination="alice@example.com", **fields)
    head, envelope = from_line(sender)
    flat = flat_mail(msg, head, _DATE, _MSGID)
    assert flat is not None  # every one of these is a plain page
    for cte_type in ("7bit", "8bit"):
        assert flat == _sent_by_stdlib(msg, sender, cte_type)
    email = build_email(msg, sender, _DATE, _MSGID)
    assert (envelope, extract_recipients(email)) == (extract_sender(email), [msg.destination])


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Störung", "body": "b"},  # encoded header
        {"subject": "s", "body": "grüß"},  # 8bit or encoded body
        {"subject": "s", "body": "y" * 79},  # a body line too long for 7bit
        {"subject": "x" * (79 - len("Subject: ")), "body": "b"},  # a folded header
        {"subject": "=?utf-8?q?hi?=", "body": "b"},  # reads as an encoded word
        {"subject": "s", "body": "b", "email_html": "<p>b</p>"},
        {"subject": "s", "body": "b", "destination": "Alice <alice@example.com>"},
    ],
)
def test_flat_mail_leaves_the_rest_to_the_email_package(fields: dict[str, str]) -> None:
    msg = message(mode="email", **{"destination": "alice@example.com", **fields})
    assert flat_mail(msg, from_line("pager@example.com")[0], _DATE, _MSGID) is None


_printable = st.text(st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=90) | st.text(
    st.characters(min_codepoint=1, max_codepoint=0x17F), max_size=90
)


@settings(max_examples=300, deadline=None)
@given(
    subject=_printable,
    body=_printable,
    incident=st.text(st.characters(min_codepoint=33, max_codepoint=0x7F), min_size=1, max_size=60),
    local=st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[a-z0-9]{1,5})?", fullmatch=True),
)
def test_flat_mail_is_the_email_package_for_any_page(subject: str, body: str, incident: str, local: str) -> None:
    msg = message(mode="email", destination=f"{local}@example.com", subject=subject, body=body, incident_id=incident)
    flat = flat_mail(msg, from_line("Pager <pager@example.com>")[0], _DATE, _MSGID)
    if flat is not None:
        for cte_type in ("7bit", "8bit"):
            assert flat == _sent_by_stdlib(msg, "Pager <pager@example.com>", cte_type)
        assert extract_recipients(build_email(msg, "p@example.com", _DATE, _MSGID)) == [msg.destination]


async def test_email_plain_pages_skip_the_email_package(smtp: FakeSmtp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain page goes out as `flat_mail` bytes (no `EmailMessage` is built), and arrives whole."""
    built: list[Message] = []
    real_build = smtp_vendor_module.build_email

    def counting(msg: Message, *args: Any) -> EmailMessage:
        built.append(msg)
        return real_build(msg, *args)

    monkeypatch.setattr(smtp_vendor_module, "build_email", counting)
    vendor = SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port, **{"from": "Pager <pager@example.com>"}))
    plain = [message(mode="email", destination="a@example.com", subject=f"[crit] disk {n}") for n in range(3)]
    fancy = message(mode="email", destination="a@example.com", subject="Störung", body="grüß")
    results = [await vendor.send(msg) for msg in [*plain, fancy]]
    await vendor.close()
    assert [r.outcome for r in results] == ["ok"] * 4
    # the first mail of a connection goes the EmailMessage way (EHLO not yet known), as does the fancy one
    assert built == [plain[0], fancy]
    for msg, result, got in zip([*plain, fancy], results, smtp.messages, strict=True):
        assert got.mail_from == "pager@example.com" and got.rcpt_tos == ["a@example.com"]
        mail = got.message
        assert mail["Message-ID"] == result.vendor_id and mail["X-Streamproc-Message-Id"] == msg.message_id
        assert mail["Subject"] == (msg.subject or msg.body) and mail.get_content().strip() == msg.body
        assert mail["From"] == "Pager <pager@example.com>" and mail["Date"]


async def test_email_connections_are_kept_and_a_dropped_one_replaced(
    smtp: FakeSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects = 0
    real_connect = aiosmtplib.SMTP.connect

    async def counting(self: aiosmtplib.SMTP, **kw: Any) -> Any:
        nonlocal connects
        connects += 1
        return await real_connect(self, **kw)

    monkeypatch.setattr(aiosmtplib.SMTP, "connect", counting)
    vendor = SmtpVendor(SmtpSettings(host=smtp.host, port=smtp.port))
    results = [await vendor.send(message(mode="email", destination="a@example.com")) for _ in range(3)]
    assert connects == 1
    # the server drops the kept connection: the next send goes on a new one, once, and succeeds
    [(kept, _since, sent)] = vendor._idle
    assert sent == 3

    async def dropped(*args: Any, **kw: Any) -> Any:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")

    monkeypatch.setattr(kept, "sendmail", dropped)
    results.append(await vendor.send(message(mode="email", destination="a@example.com")))
    [(kept, _since, _sent)] = vendor._idle

    async def closing(*args: Any, **kw: Any) -> Any:
        raise aiosmtplib.SMTPResponseException(421, "too many messages on this connection")

    monkeypatch.setattr(kept, "sendmail", closing)
    results.append(await vendor.send(message(mode="email", destination="a@example.com")))
    # idle for too long: not reused
    monkeypatch.setattr(smtp_vendor_module, "IDLE_REUSE", 0.0)
    results.append(await vendor.send(message(mode="email", destination="a@example.com")))
    monkeypatch.setattr(smtp_vendor_module, "IDLE_REUSE", 30.0)
    monkeypatch.setattr(smtp_vendor_module, "MAX_PER_CONNECTION", 2)
    results += [await vendor.send(message(mode="email", destination="a@example.com")) for _ in range(2)]
    assert [n for _client, _since, n in vendor._idle] == [1]  # the other was closed after its second mail
    await vendor.close()
    assert [r.outcome for r in results] == ["ok"] * 8
    assert connects == 5
    assert len(smtp.messages) == 8


async def test_slack_sends_share_one_session(slack: FakeSlack) -> None:
    vendor = SlackVendor(SlackSettings(token=slack.token, base_url=slack.api_url))
    await vendor.send(message(mode="slack", destination="U01ALICE"))
    client = vendor._client
    assert client is not None and client.session is not None
    session = client.session
    await vendor.send(message(mode="slack", destination="U01ALICE"))
    assert vendor._client is client and client.session is session and not session.closed
    await vendor.close()
    assert session.closed and len(slack.delivered) == 2


# ----------------------------------------------------------------------------------------- webhook


async def test_webhook_posts_signed_json(hook: FakeWebhook) -> None:
    vendor = WebhookVendor(WebhookSettings(secret="hook-secret"))
    msg = message(mode="webhook", destination=hook.hook_url, body="disk full ✓")
    result = await vendor.send(msg)
    await vendor.close()

    assert result.outcome == "ok"
    [got] = hook.delivered
    expected = "sha256=" + hmac.new(b"hook-secret", got.body, hashlib.sha256).hexdigest()
    assert got.headers[SIGNATURE_HEADER] == expected
    assert got.headers["Content-Type"] == "application/json"
    body = json.loads(got.body)
    assert body["message_id"] == msg.message_id and body["body"] == "disk full ✓"
    assert body["at"] == "2026-03-01T10:00:00Z" and "email_html" not in body


async def test_webhook_failures_classify(hook: FakeWebhook) -> None:
    vendor = WebhookVendor(WebhookSettings(secret="s"))
    hook.fail_next(429, retry_after="2")
    hook.fail_next(503)
    hook.fail_next(404)
    results = [await vendor.send(message(mode="webhook", destination=hook.hook_url)) for _ in range(3)]
    bad_url = await vendor.send(message(mode="webhook", destination="not a url"))
    await vendor.close()
    assert [(r.outcome, r.retry_after) for r in results] == [
        ("temporary", 2.0),
        ("temporary", None),
        ("permanent", None),
    ]
    assert bad_url.outcome == "permanent"


# ----------------------------------------------------------------------------------- console, misc


async def test_console_prints_one_line() -> None:
    out = io.StringIO()
    msg = message(subject="[crit]\ndisk full", body="line one\nline two")
    result = await ConsoleVendor(out).send(msg)
    assert result.outcome == "ok"
    [line] = out.getvalue().splitlines()
    assert msg.message_id in line and "alice" in line and "+15550000001" in line
    assert "[crit] disk full | line one line two" in line


def test_no_credentials_means_console_everywhere() -> None:
    settings = SendersSettings()
    for mode in ("call", "sms", "email", "slack", "webhook"):
        assert isinstance(build_vendor(mode, settings), ConsoleVendor), mode


def test_credentials_pick_real_vendors() -> None:
    settings = SendersSettings(
        twilio=TwilioSettings(account_sid="AC1", auth_token="t", from_number="+1"),
        slack=SlackSettings(token="xoxb"),
        smtp=SmtpSettings(host="mail"),
        webhook=WebhookSettings(secret="s"),
    )
    kinds = {mode: type(build_vendor(mode, settings)) for mode in ("call", "sms", "email", "slack", "webhook")}
    assert kinds == {
        "call": TwilioVendor,
        "sms": TwilioVendor,
        "email": SmtpVendor,
        "slack": SlackVendor,
        "webhook": WebhookVendor,
    }


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_vendor_calls_do_not_leak_between_concurrent_sends() -> None:
    """Retry-After travels in a context variable: two concurrent sends keep their own."""

    async def scenario() -> None:
        fake = FakeTwilio()
        await fake.start()
        fake.delay = 0.05
        fake.fail_next(429, retry_after="9")
        vendor = TwilioVendor(twilio_settings(fake), voice=False)
        first, second = await asyncio.gather(vendor.send(message()), vendor.send(message()))
        await vendor.close()
        await fake.close()
        assert sorted([first.retry_after or 0.0, second.retry_after or 0.0]) == [0.0, 9.0]

    asyncio.run(scenario())
