"""People answering pages: Twilio SMS replies, key presses and status callbacks, Slack buttons.

Requests are signed here the way the vendors sign them, written out independently of the vendor
libraries the API verifies with (Twilio: base64 HMAC-SHA1 with the auth token over the URL and the
sorted form parameters; Slack: v0 HMAC-SHA256 over `v0:<timestamp>:<body>`). "Nothing written" is
proven by reading the topic after a later, valid request's event arrived.

The last tests run the stack as in production (processor worker, sender, API as child processes,
the real twilio and slack_sdk clients against local fakes) and stop an escalation end to end by
an SMS reply, and by a Slack button press.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from confluent_kafka import Producer

from streamproc.api.paged import PagedIndex
from streamproc.api.replies.commands import parse_command
from streamproc.api.replies.directory import Directory, normalize_phone
from streamproc.config.models import Config
from streamproc.kafka.topics import Topics, message_key
from streamproc.localnet import free_port
from streamproc.timeutil import parse_time
from streamproc.wire.deliveries import Delivery
from streamproc.wire.outcomes import Audit, BatchInfo, Message, outcome_dict
from tests.fakes import FakeSlack, FakeTwilio
from tests.fakes.http import HttpFake
from tests.harness import ApiProcess, Stack, live_stack, read, wait_until
from tests.harness.topics import json_values

SID = "AC" + "0" * 32
TOKEN = "twilio-token"
SLACK_SECRET = "slack-signing-secret"
PUBLIC = "https://pager.example.com/base"

CONFIG = f"""
applications:
  mon: {{key: "mon-key"}}
users:
  alice: {{contacts: {{sms: "+15550000001", call: "+1 (555) 000-0001", slack: "U01ALICE"}}}}
  bob: {{contacts: {{sms: "+15550000002", slack: "U02BOB"}}}}
  dave: {{contacts: {{sms: "+15550000004"}}}}
  erin: {{contacts: {{sms: "+15550000005"}}}}
  twin1: {{contacts: {{sms: "+15550000009"}}}}
  twin2: {{contacts: {{call: "+15550000009"}}}}
plans:
  p:
    steps:
      - - {{role: user, target: alice, priority: high, template: t}}
templates:
  t:
    default:
      default: {{body: "x"}}
senders:
  twilio: {{account_sid: "{SID}", auth_token: "{TOKEN}", from_number: "+15559990000"}}
  slack: {{signing_secret: "{SLACK_SECRET}"}}
api:
  public_url: "{PUBLIC}/"
"""


# ======================================================================================== helpers
def twilio_signature(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """As Twilio signs a webhook: base64(HMAC-SHA1(auth token, url + each key and value, sorted by key))."""
    data = url + "".join(key + params[key] for key in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def slack_headers(body: bytes, secret: str = SLACK_SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Answer:
    status: int
    body: str
    content_type: str

    def twiml(self) -> ET.Element:
        assert self.content_type.startswith("text/xml"), (self.status, self.content_type, self.body)
        return ET.fromstring(self.body)

    def message(self) -> str:
        """The text of a TwiML <Message> answer."""
        node = self.twiml().find("Message")
        assert node is not None, self.body
        return node.text or ""

    def said(self) -> list[str]:
        return [node.text or "" for node in self.twiml().iter("Say")]


def post(url: str, body: bytes, headers: dict[str, str], content_type: str) -> Answer:
    request = urllib.request.Request(url, data=body, method="POST", headers={**headers, "Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return Answer(resp.status, resp.read().decode(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode(), exc.headers.get("Content-Type", ""))


def twilio_post(
    api: ApiProcess,
    path: str,
    params: dict[str, str],
    *,
    public: str | None = PUBLIC,
    signature: str | None = "sign",
    token: str = TOKEN,
) -> Answer:
    """POST `params` to `path` (with its query) as Twilio would, signed over `public` + path (or the
    request URL when `public` is None); `signature=None` sends none, another string sends that."""
    signed_url = (public + path) if public is not None else api.url + path
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = twilio_signature(signed_url, params, token)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return post(api.url + path, urlencode(params).encode(), headers, "application/x-www-form-urlencoded")


def sms(api: ApiProcess, sender: str, body: str, **kw: Any) -> tuple[str, Answer]:
    sid = "SM" + uuid.uuid4().hex
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": SID,
        "From": sender,
        "To": "+15559990000",
        "Body": body,
        "NumMedia": "0",
    }
    return sid, twilio_post(api, "/v1/twilio/sms", params, **kw)


def slack_post(api: ApiProcess, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return post(
        api.url + "/v1/slack/interactivity",
        body,
        slack_headers(body) if headers is None else headers,
        "application/x-www-form-urlencoded",
    )


def collect(
    bootstrap: str,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool] = lambda r: False,
    timeout: float = 20.0,
    settle: float = 1.0,
) -> list[dict[str, Any]]:
    """Every record of `topic` (JSON values), from the beginning: until `until(records)` holds and
    `settle` more seconds passed (to see records that should not be there), or `timeout`."""
    return read(bootstrap, topic, until, convert=json_values, settle=settle, timeout=timeout, must=False)


def read_now(bootstrap: str, topic: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Every record of `topic` up to its end as of this call."""
    return read(bootstrap, topic, convert=json_values, timeout=timeout)


def events_with(bootstrap: str, api: ApiProcess, marker: str, settle: float = 1.0) -> list[dict[str, Any]]:
    """Events on the API's incidents topic whose incident id or event id contains `marker`, read
    until the event of `marker`'s closing request (incident `<marker>-end`) arrived."""
    records = collect(
        bootstrap,
        api.topics.incidents,
        lambda rs: any(r.get("incident_id") == f"{marker}-end" for r in rs),
        settle=settle,
    )
    assert any(r.get("incident_id") == f"{marker}-end" for r in records), "the closing event never arrived"
    return [
        r
        for r in records
        if marker in r.get("incident_id", "") + (r.get("event_id") or "") and r.get("incident_id") != f"{marker}-end"
    ]


def close_with_claim(api: ApiProcess, marker: str) -> None:
    """A valid request after the ones under test: its event proves the earlier ones were read past."""
    _, answer = sms(api, "+15550000001", f"claim {marker}-end")
    assert answer.status == 200, answer


class Producing:
    """Writes delivery and audit records the way the senders and the processor do."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self.topics = topics
        self.producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})

    def sent(
        self,
        user: str,
        incident_id: str,
        seconds_ago: float,
        *,
        instance: int = 1,
        mode: str = "sms",
        vendor_id: str | None = None,
        message_id: str | None = None,
        batch: list[str] | None = None,
    ) -> str:
        """A `sent` record; with `batch`, of a batch message whose incidents are `incident_id` and `batch`."""
        at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        message_id = message_id or uuid.uuid4().hex
        info = BatchInfo(count=len(batch) + 1, incident_ids=[incident_id, *batch]) if batch else None
        record = Delivery(
            message_id=message_id,
            incident_id=incident_id,
            instance=instance,
            mode=mode,  # type: ignore[arg-type]
            vendor="twilio",
            status="sent",
            at=at,
            attempts=1,
            vendor_id=vendor_id,
            user=user,
            batch=info,
        )
        self.producer.produce(
            self.topics.deliveries,
            key=user.encode(),
            value=record.model_dump_json().encode(),
            timestamp=int(at.timestamp() * 1000),
        )
        return message_id

    def audit(self, kind: str, incident_id: str, instance: int = 1, owner: str | None = None) -> None:
        record = Audit(
            kind=kind,
            at=datetime.now(UTC),
            incident_id=incident_id,
            instance=instance,  # type: ignore[arg-type]
            owner=owner,
        )
        self.producer.produce(self.topics.outcomes, key=incident_id.encode(), value=record.model_dump_json().encode())

    def flush(self) -> None:
        assert self.producer.flush(10) == 0


class BackgroundLoop:
    """An event loop on a thread, for the aiohttp fakes of synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(15)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class FakeResponseUrl(HttpFake):
    """Slack's `response_url`: takes the JSON it is sent (as Slack does, answering `ok`)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/actions/{n}", self._respond)

    async def _respond(self, request: web.Request) -> web.Response:
        received = await self.record(request)
        received.status, received.ok = 200, True
        return web.Response(text="ok")


# ================================================================================ without Kafka
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("claim inc-1", ("claim", "inc-1")),
        ("inc-1 claim", ("claim", "inc-1")),
        ("CLAIM Inc-1", ("claim", "Inc-1")),
        ("  Claim   'inc-1'  ", ("claim", "inc-1")),
        ("'claim inc-1'", ("claim", "inc-1")),
        ("claim all", ("claim", "all")),
        ("All Claim", ("claim", "all")),
        ("claim LAST", ("claim", "last")),
        ("unclaim inc-1", ("unclaim", "inc-1")),
        ("inc-1 Unclaim", ("unclaim", "inc-1")),
        ("resolve inc-1", ("resolve", "inc-1")),
        ("inc-1 RESOLVE", ("resolve", "inc-1")),
        ("resolve all", None),
        ("unclaim last", None),
        ("claim", None),
        ("claim inc-1 now", None),
        ("hello there", None),
        ("", None),
    ],
)
def test_sms_commands_parse(text: str, expected: tuple[str, str] | None) -> None:
    command = parse_command(text)
    assert (None if command is None else (command.verb, command.target)) == expected


def test_users_are_found_by_any_spelling_of_their_number_and_by_slack_id() -> None:
    import yaml

    config = Config.model_validate(yaml.safe_load(CONFIG))
    directory = Directory(config)
    assert normalize_phone("+1 (555) 000-0001") == "+15550000001"
    assert normalize_phone("whatsapp:+15550000001") == "+15550000001"
    assert directory.by_phone("+15550000001") == ["alice"]  # sms and call contacts: one user
    assert directory.by_phone("+1.555.000.0002") == ["bob"]
    assert directory.by_phone("+15550000009") == ["twin1", "twin2"]
    assert directory.by_phone("+15550000099") == [] and directory.by_phone(None) == []
    assert directory.by_slack("U02BOB") == ["bob"] and directory.by_slack("U0NOBODY") == []


def _delivery(
    user: str,
    incident_id: str,
    at: datetime,
    instance: int = 1,
    status: str = "sent",
    message_id: str | None = None,
    vendor_id: str | None = None,
    batch: list[str] | None = None,
) -> Delivery:
    info = BatchInfo(count=len(batch), incident_ids=batch) if batch else None
    return Delivery(
        message_id=message_id or uuid.uuid4().hex,
        incident_id=incident_id,
        instance=instance,
        mode="sms",
        vendor="twilio",
        status=status,
        at=at,
        user=user,
        vendor_id=vendor_id,  # type: ignore[arg-type]
        batch=info,
    )


def test_paged_index_open_incidents_newest_first() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock = [now.timestamp()]
    index = PagedIndex(window=3600, clock=lambda: clock[0])

    def ago(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    index.apply_delivery(_delivery("alice", "a", ago(50), message_id="m-a", vendor_id="SMa"))
    index.apply_delivery(_delivery("alice", "b", ago(40)))
    index.apply_delivery(_delivery("alice", "c", ago(30)))
    index.apply_delivery(_delivery("alice", "d", ago(20)))
    index.apply_delivery(_delivery("alice", "a", ago(10)))  # a newer page of a: a is now the newest
    index.apply_delivery(_delivery("alice", "old", ago(7200)))  # older than the window
    index.apply_delivery(_delivery("alice", "failed", ago(5), status="failed"))  # not a page that went out
    index.apply_delivery(_delivery("bob", "e", ago(5)))
    index.apply_delivery(_delivery("alice", "r", ago(25), instance=1))
    index.apply_delivery(_delivery("alice", "r", ago(15), instance=2))
    index.apply_audit(Audit(kind="claimed", at=ago(35), incident_id="b", instance=1, owner="bob"))
    index.apply_audit(Audit(kind="claimed", at=ago(25), incident_id="c", instance=1, owner="carol"))
    index.apply_audit(Audit(kind="unclaimed", at=ago(24), incident_id="c", instance=1))
    index.apply_audit(Audit(kind="resolved", at=ago(19), incident_id="d", instance=1))
    index.apply_audit(Audit(kind="resolved", at=ago(20), incident_id="r", instance=1))
    index.apply_audit(Audit(kind="claimed", at=ago(1), incident_id="zzz", instance=1, owner="x"))  # never paged

    assert [p.incident_id for p in index.open_for("alice")] == ["a", "r", "c"]
    assert [p.instance for p in index.open_for("alice")] == [1, 2, 1]
    assert [p.incident_id for p in index.open_for("bob")] == ["e"]
    assert index.open_for("nobody") == []
    page = index.incident_of("m-a")
    assert page is not None and (page.user, page.incident_id, page.instance) == ("alice", "a", 1)
    assert index.page_of_vendor_id("SMa") == page
    assert index.owner_of("b", 1) == "bob" and index.owner_of("c", 1) is None
    assert index.incidents_paging("alice") == {"a", "b", "c", "d", "r"}

    clock[0] += 3600 - 25  # pages b, c, and the first of a, leave the window (and the audit of b)
    index.prune()
    assert [p.incident_id for p in index.open_for("alice")] == ["a", "r"]
    assert index.incident_of("m-a") is None and index.page_of_vendor_id("SMa") is None


def test_paged_index_batch_members_paged_the_user() -> None:
    """A batch message's record (spec §7): its id names every incident in it, and each of them paged
    the user; members other than the first are judged by the instance open when the batch went out."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock = [now.timestamp()]
    index = PagedIndex(window=3600, clock=lambda: clock[0])

    def ago(seconds: float) -> datetime:
        return now - timedelta(seconds=seconds)

    index.apply_audit(Audit(kind="resolved", at=ago(600), incident_id="m", instance=1))  # before the batch
    index.apply_delivery(_delivery("alice", "f", ago(400), instance=1))  # f's own page, older
    index.apply_delivery(
        _delivery(
            "alice", "f", ago(100), instance=7, message_id="batch-1", vendor_id="SMb", batch=["f", "m", "c", "u", "r"]
        )
    )
    index.apply_delivery(_delivery("bob", "f", ago(50), instance=7, message_id="batch-2", batch=["f", "x"]))
    index.apply_audit(Audit(kind="claimed", at=ago(90), incident_id="c", instance=2, owner="bob"))
    index.apply_audit(Audit(kind="claimed", at=ago(80), incident_id="u", instance=4, owner="bob"))
    index.apply_audit(Audit(kind="unclaimed", at=ago(70), incident_id="u", instance=4))
    index.apply_audit(Audit(kind="resolved", at=ago(60), incident_id="r", instance=3))
    index.apply_audit(Audit(kind="claimed", at=ago(30), incident_id="r", instance=4, owner="x"))  # a newer one

    page = index.incident_of("batch-1")
    assert page is not None and page.incidents == ("f", "m", "c", "u", "r") and page.instance == 7
    assert index.page_of_vendor_id("SMb") == page
    assert index.incidents_paging("alice") == {"f", "m", "c", "u", "r"}
    # c claimed and r's member instance (3) resolved: not open. m#2 is unknown (open); u was unclaimed.
    assert [(p.incident_id, p.instance) for p in index.open_for("alice")] == [("f", 7), ("m", None), ("u", 4)]
    assert [p.page.message_id for p in index.open_for("alice")] == ["batch-1"] * 3
    index.apply_audit(Audit(kind="claimed", at=ago(10), incident_id="m", instance=2, owner="alice"))
    assert [p.incident_id for p in index.open_for("alice")] == ["f", "u"]
    assert [p.incident_id for p in index.open_for("bob")] == ["f", "x"]

    clock[0] += 3600 - 75  # batch-1 leaves the window; batch-2 (50 s ago) stays
    index.prune()
    assert index.incident_of("batch-1") is None and index.page_of_vendor_id("SMb") is None
    assert index.open_for("alice") == [] and index.incidents_paging("alice") == set()
    assert [p.incident_id for p in index.open_for("bob")] == ["f", "x"]


# ==================================================================================== with Kafka
@pytest.fixture(scope="module")
def replies_api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    proc = ApiProcess(kafka_bootstrap, Path(tmp_path_factory.mktemp("replies")), config=CONFIG)
    try:
        yield proc.start()  # inside the try: a start that times out still stops the process
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def response_url() -> Iterator[FakeResponseUrl]:
    loop = BackgroundLoop()
    fake = FakeResponseUrl()
    loop.run(fake.start())
    try:
        yield fake
    finally:
        loop.run(fake.close())
        loop.close()


@pytest.mark.kafka
def test_sms_signature_is_checked_over_the_public_url(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    api, m = replies_api, f"sig-{uuid.uuid4().hex[:6]}"
    _, ok = sms(api, "+15550000001", f"claim {m}-ok")
    assert ok.status == 200 and ok.message() == f"Claimed {m}-ok.", ok

    refused = [
        sms(api, "+15550000001", f"claim {m}-missing", signature=None)[1],
        sms(api, "+15550000001", f"claim {m}-garbage", signature="bm90IGEgc2lnbmF0dXJl")[1],
        sms(api, "+15550000001", f"claim {m}-token", token="another-token")[1],
        # Signed over the URL as the API received it: behind a proxy Twilio signs the public one.
        sms(api, "+15550000001", f"claim {m}-local", public=None)[1],
    ]
    sid = "SM" + uuid.uuid4().hex
    params = {"MessageSid": sid, "From": "+15550000001", "Body": f"claim {m}-tampered"}
    signature = twilio_signature(PUBLIC + "/v1/twilio/sms", {**params, "Body": f"claim {m}-signed"})
    refused.append(twilio_post(api, "/v1/twilio/sms", params, signature=signature))
    assert [a.status for a in refused] == [403] * 5, [a.body for a in refused]

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    assert [(e["type"], e["incident_id"], e["owner"]) for e in written] == [("claim", f"{m}-ok", "alice")]


@pytest.mark.kafka
def test_each_sms_command_form_writes_its_event(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    api, m = replies_api, f"cmd-{uuid.uuid4().hex[:6]}"
    cases = [
        ("+15550000001", f"claim {m}-1", "claim", f"Claimed {m}-1."),
        ("+1 555 000 0001", f"{m}-2 claim", "claim", f"Claimed {m}-2."),
        ("+15550000002", f"CLAIM '{m}-3'", "claim", f"Claimed {m}-3."),
        ("+15550000002", f"unclaim {m}-4", "unclaim", f"Unclaimed {m}-4."),
        ("+15550000002", f"{m}-5 Unclaim", "unclaim", f"Unclaimed {m}-5."),
        ("+15550000001", f"Resolve {m}-6", "resolve", f"Resolved {m}-6."),
        ("+15550000001", f"{m}-7 resolve", "resolve", f"Resolved {m}-7."),
    ]
    sids = {}
    for sender, body, kind, reply in cases:
        sid, answer = sms(api, sender, body)
        assert answer.status == 200 and answer.message() == reply, (body, answer)
        sids[sid] = (kind, sender)

    # Nothing is written for these, and each says why.
    _, unknown = sms(api, "+15550009999", f"claim {m}-unknown")
    assert unknown.status == 200 and "not the phone number of any streamproc user" in unknown.message()
    _, shared = sms(api, "+15550000009", f"claim {m}-shared")
    assert "several users (twin1, twin2)" in shared.message()
    _, gibberish = sms(api, "+15550000001", f"please take {m}-help")
    assert gibberish.message().startswith("Reply 'claim <id>'"), gibberish

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    by_sid = {e["event_id"].removeprefix("twilio-sms:"): e for e in written}
    assert set(by_sid) == set(sids), written
    for sid, (kind, sender) in sids.items():
        event = by_sid[sid]
        assert event["type"] == kind
        owner = {"+15550000001": "alice", "+1 555 000 0001": "alice", "+15550000002": "bob"}[sender]
        assert event.get("owner") == (owner if kind == "claim" else None)
    assert sorted(e["incident_id"] for e in written) == [f"{m}-{i}" for i in range(1, 8)]


@pytest.mark.kafka
def test_claim_all_and_claim_last_use_the_index_of_who_was_paged(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    api, m = replies_api, f"Idx{uuid.uuid4().hex[:6]}"
    out = Producing(kafka_bootstrap, api.topics)
    out.sent("dave", f"{m}-old", 3 * 86400)  # before api.paged_window (24 h)
    b_message = out.sent("dave", f"{m}-b", 40)
    out.sent("dave", f"{m}-claimed", 35)
    out.sent("dave", f"{m}-d", 20)
    out.sent("dave", f"{m}-reclaimed", 15)
    out.sent("dave", f"{m}-resolved", 10)
    out.sent("dave", f"{m}-again", 30, instance=1)
    out.sent("dave", f"{m}-again", 5, instance=2)
    out.sent("bob", f"{m}-bobs", 1)
    out.audit("claimed", f"{m}-claimed", owner="bob")
    out.audit("claimed", f"{m}-reclaimed", owner="bob")
    out.audit("unclaimed", f"{m}-reclaimed")
    out.audit("resolved", f"{m}-resolved")
    out.audit("resolved", f"{m}-again", instance=1)
    out.flush()  # then at once: the replies must see these (the index syncs before answering)

    last_sid, last = sms(api, "+15550000004", "claim last")
    assert last.message() == f"Claimed {m}-again.", last
    all_sid, every = sms(api, "+15550000004", "Claim ALL")
    expected = [f"{m}-again", f"{m}-reclaimed", f"{m}-d", f"{m}-b"]
    assert every.message() == f"Claimed 4 incidents: {', '.join(expected)}.", every
    # A page's message id names its incident; an id in the wrong case is corrected when it is unambiguous.
    by_message_sid, by_message = sms(api, "+15550000004", f"claim {b_message}")
    assert by_message.message() == f"Claimed {m}-b.", by_message
    case_sid, case = sms(api, "+15550000004", f"{m.lower()}-d claim")
    assert case.message() == f"Claimed {m}-d.", case
    _, nothing = sms(api, "+15550000005", "claim last")
    assert nothing.message() == "Nothing to claim: no open incident paged you in the last 24 h.", nothing

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    assert all(e["type"] == "claim" and e["owner"] == "dave" for e in written), written

    def ids(sid: str) -> list[str]:
        return [e["incident_id"] for e in written if e["event_id"] == f"twilio-sms:{sid}"]

    assert ids(last_sid) == [f"{m}-again"]
    assert sorted(ids(all_sid)) == sorted(expected)  # (partitions: the topic does not keep their order)
    assert ids(by_message_sid) == [f"{m}-b"] and ids(case_sid) == [f"{m}-d"]
    assert len(written) == 7


@pytest.mark.kafka
def test_a_key_press_on_a_page_call_claims_for_the_called_user(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    api, m = replies_api, f"call-{uuid.uuid4().hex[:6]}"
    out = Producing(kafka_bootstrap, api.topics)
    bobs_message = out.sent("bob", f"{m}-bob", 3, mode="call", vendor_id="CA" + uuid.uuid4().hex)
    out.flush()

    def press(digits: str, incident: str, message_id: str, to: str, **kw: Any) -> Answer:
        query = urlencode({"message_id": message_id, "incident_id": incident, "instance": 1})
        call = "CA" + uuid.uuid4().hex
        return twilio_post(
            api,
            f"/v1/twilio/voice?{query}",
            {
                "CallSid": call,
                "AccountSid": SID,
                "From": "+15559990000",
                "To": to,
                "Direction": "outbound-api",
                "Digits": digits,
                "CallStatus": "in-progress",
            },
            **kw,
        )

    # Alice's call contact is written "+1 (555) 000-0001" in the config; the index does not know the message.
    claimed = press("2", f"{m}-alice", "m-unknown", "+15550000001")
    assert claimed.status == 200 and claimed.said() == ["Claimed. Goodbye."], claimed
    assert claimed.twiml().find("Hangup") is not None
    # The index knows who the message went to: that wins over the number.
    by_index = press("2", f"{m}-bob", bobs_message, "+15550009999")
    assert by_index.said() == ["Claimed. Goodbye."], by_index
    other_key = press("7", f"{m}-seven", "m-7", "+15550000001")
    gather = other_key.twiml().find("Gather")
    assert gather is not None and "Press 2 to claim" in "".join(other_key.said()), other_key
    assert gather.get("action", "").startswith(PUBLIC + "/v1/twilio/voice?message_id=m-7")
    assert press("2", f"{m}-unsigned", "m-8", "+15550000001", signature=None).status == 403
    assert press("2", f"{m}-wrong", "m-9", "+15550000001", token="nope").status == 403
    nobody = press("2", f"{m}-nobody", "m-10", "+15550009999")
    assert "cannot tell" in "".join(nobody.said()), nobody

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    assert sorted((e["incident_id"], e["owner"]) for e in written) == [(f"{m}-alice", "alice"), (f"{m}-bob", "bob")]
    assert all(e["type"] == "claim" and e["event_id"].startswith("twilio-call:CA") for e in written)


@pytest.mark.kafka
def test_claiming_a_batch_message_claims_every_incident_in_it(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    """Spec §7: `claim <batch message id>` by SMS, the Slack button of a batch and a key press on a batch
    call each write one claim per incident of the batch, read back from the incidents topic."""
    api, m = replies_api, f"bat-{uuid.uuid4().hex[:6]}"
    out = Producing(kafka_bootstrap, api.topics)
    sms_batch = out.sent("dave", f"{m}-a", 20, instance=2, batch=[f"{m}-b", f"{m}-c"])
    slack_batch = out.sent("alice", f"{m}-s1", 15, mode="slack", batch=[f"{m}-s2"])
    index_batch = out.sent("alice", f"{m}-i1", 14, mode="slack", batch=[f"{m}-i2", f"{m}-i3"])
    call_batch = out.sent("alice", f"{m}-v1", 10, mode="call", vendor_id="CA" + uuid.uuid4().hex, batch=[f"{m}-v2"])
    out.sent("erin", f"{m}-own", 30)
    out.sent("erin", f"{m}-e1", 5, batch=[f"{m}-e2", f"{m}-e3"])
    out.audit("claimed", f"{m}-e2", owner="bob")
    out.flush()  # then at once: the index learns the batch ids while the replies wait for it

    by_id_sid, by_id = sms(api, "+15550000004", f"claim {sms_batch}")
    assert by_id.status == 200, by_id
    assert by_id.message() == f"Claimed 3 incidents of batch {sms_batch}: {m}-a, {m}-b, {m}-c.", by_id
    all_sid, every = sms(api, "+15550000005", "claim all")
    assert every.message() == f"Claimed 3 incidents: {m}-e1, {m}-e3, {m}-own.", every

    def press(value: dict[str, Any], n: str) -> Answer:
        return slack_post(
            api,
            {
                "type": "block_actions",
                "user": {"id": "U01ALICE"},
                "response_url": None,
                "actions": [{"action_id": "streamproc_claim", "value": json.dumps(value), "action_ts": n}],
            },
        )

    # The button of a batch lists its incidents (as the Slack sender writes it) ...
    listed = press(
        {"incident_id": f"{m}-s1", "instance": 1, "message_id": slack_batch, "incident_ids": [f"{m}-s1", f"{m}-s2"]},
        f"{m}-listed",
    )
    # ... or, when they did not fit in the button, the index knows them by message id.
    indexed = press({"incident_id": f"{m}-i1", "instance": 1, "message_id": index_batch}, f"{m}-indexed")
    assert (listed.status, indexed.status) == (200, 200), (listed, indexed)

    query = urlencode({"message_id": call_batch, "incident_id": f"{m}-v1", "instance": 1})
    call_sid = "CA" + uuid.uuid4().hex
    called = twilio_post(
        api,
        f"/v1/twilio/voice?{query}",
        {
            "CallSid": call_sid,
            "AccountSid": SID,
            "From": "+15559990000",
            "To": "+15550000001",
            "Direction": "outbound-api",
            "Digits": "2",
            "CallStatus": "in-progress",
        },
    )
    assert called.said() == ["Claimed 2 incidents. Goodbye."], called

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    assert all(e["type"] == "claim" for e in written), written

    def claims(event_id: str) -> list[tuple[str, str]]:
        return sorted((e["incident_id"], e["owner"]) for e in written if e.get("event_id") == event_id)

    assert claims(f"twilio-sms:{by_id_sid}") == [(f"{m}-{x}", "dave") for x in "abc"]
    assert claims(f"twilio-sms:{all_sid}") == [(f"{m}-{x}", "erin") for x in ("e1", "e3", "own")]
    assert claims(f"slack:{m}-listed") == [(f"{m}-s1", "alice"), (f"{m}-s2", "alice")]
    assert claims(f"slack:{m}-indexed") == [(f"{m}-i{x}", "alice") for x in "123"]
    assert claims(f"twilio-call:{call_sid}") == [(f"{m}-v1", "alice"), (f"{m}-v2", "alice")]
    assert len(written) == 3 + 3 + 2 + 3 + 2


@pytest.mark.kafka
def test_status_callbacks_become_vendor_status_records(kafka_bootstrap: str, replies_api: ApiProcess) -> None:
    api, m = replies_api, f"st-{uuid.uuid4().hex[:6]}"
    out = Producing(kafka_bootstrap, api.topics)
    call_sid = "CA" + uuid.uuid4().hex
    call_message = out.sent("bob", f"{m}-call", 3, mode="call", vendor_id=call_sid)
    out.flush()

    sms_sid = "SM" + uuid.uuid4().hex
    query = urlencode({"message_id": f"{m}-msg", "incident_id": f"{m}-sms", "instance": 2})
    delivered = twilio_post(
        api,
        f"/v1/twilio/status?{query}",
        {
            "MessageSid": sms_sid,
            "SmsSid": sms_sid,
            "MessageStatus": "undelivered",
            "SmsStatus": "undelivered",
            "ErrorCode": "30003",
            "To": "+15550000001",
            "From": "+15559990000",
            "AccountSid": SID,
        },
    )
    assert delivered.status == 204, delivered
    # No query (a status_callback_url from before the sender added it): the index knows the SID.
    completed = twilio_post(
        api,
        "/v1/twilio/status",
        {"CallSid": call_sid, "CallStatus": "completed", "CallDuration": "31", "To": "+15550009999", "AccountSid": SID},
    )
    assert completed.status == 204, completed
    forged = twilio_post(
        api,
        f"/v1/twilio/status?{query}",
        {"MessageSid": "SMforged", "MessageStatus": "delivered", "To": "+15550000001"},
        token="forged",
    )
    assert forged.status == 403

    records = collect(
        kafka_bootstrap,
        api.topics.deliveries,
        lambda rs: sum(r["status"] == "vendor-status" and r.get("vendor_id") in (sms_sid, call_sid) for r in rs) >= 2,
    )
    statuses = {r["vendor_id"]: r for r in records if r["status"] == "vendor-status"}
    assert "SMforged" not in statuses
    sms_record = Delivery.model_validate(statuses[sms_sid])
    assert (
        sms_record.message_id,
        sms_record.incident_id,
        sms_record.instance,
        sms_record.user,
        sms_record.vendor,
        sms_record.detail,
    ) == (f"{m}-msg", f"{m}-sms", 2, "alice", "twilio", "undelivered: ErrorCode 30003")
    call_record = Delivery.model_validate(statuses[call_sid])
    assert (
        call_record.message_id,
        call_record.incident_id,
        call_record.instance,
        call_record.user,
        call_record.detail,
    ) == (call_message, f"{m}-call", 1, "bob", "completed: CallDuration 31")


@pytest.mark.kafka
def test_slack_claim_button(kafka_bootstrap: str, replies_api: ApiProcess, response_url: FakeResponseUrl) -> None:
    api, m = replies_api, f"sl-{uuid.uuid4().hex[:6]}"

    def press(incident: str, slack_id: str = "U01ALICE", n: int = 0) -> dict[str, Any]:
        value = json.dumps({"incident_id": incident, "instance": 1, "message_id": f"{incident}-msg"})
        return {
            "type": "block_actions",
            "user": {"id": slack_id, "username": "someone"},
            "response_url": f"{response_url.url}/actions/{n}",
            "message": {
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": f"*{incident}* disk full"}},
                    {"type": "actions", "elements": []},
                ]
            },
            "actions": [
                {"action_id": "streamproc_claim", "value": value, "type": "button", "action_ts": f"{time.time():.6f}"}
            ],
        }

    ok = slack_post(api, press(f"{m}-ok", n=1))
    assert ok.status == 200, ok
    old_body = urlencode({"payload": json.dumps(press(f"{m}-old", n=2))}).encode()
    refused = [
        slack_post(api, press(f"{m}-missing", n=3), headers={}),
        slack_post(api, press(f"{m}-wrong", n=4), headers=slack_headers(b"another body")),
        slack_post(
            api,
            press(f"{m}-secret", n=5),
            headers=slack_headers(
                urlencode({"payload": json.dumps(press(f"{m}-secret", n=5))}).encode(), secret="not-the-secret"
            ),
        ),
        post(
            api.url + "/v1/slack/interactivity",
            old_body,
            slack_headers(old_body, at=time.time() - 6 * 60),
            "application/x-www-form-urlencoded",
        ),
    ]
    assert [a.status for a in refused] == [403] * 4, [a.body for a in refused]
    stranger = slack_post(api, press(f"{m}-stranger", slack_id="U0STRANGER", n=6))
    assert stranger.status == 200

    def updates() -> dict[str, Any]:
        found = {r.path: r.json for r in response_url.delivered if r.path in ("/actions/1", "/actions/6")}
        return found if len(found) == 2 else {}

    replies = wait_until(updates, 10, "both response_url posts")
    assert replies["/actions/1"]["replace_original"] is True
    assert replies["/actions/1"]["text"] == f"{m}-ok: claimed by alice"
    assert replies["/actions/1"]["blocks"][0]["text"]["text"] == f"*{m}-ok* disk full"
    assert "Claimed by <@U01ALICE> (alice)" in json.dumps(replies["/actions/1"]["blocks"][1])
    stranger_reply = replies["/actions/6"]
    assert stranger_reply["response_type"] == "ephemeral" and "nothing was claimed" in stranger_reply["text"]

    close_with_claim(api, m)
    written = events_with(kafka_bootstrap, api, m)
    assert [(e["type"], e["incident_id"], e["owner"]) for e in written] == [("claim", f"{m}-ok", "alice")]
    assert not [r for r in response_url.requests if r.path in ("/actions/2", "/actions/3", "/actions/4", "/actions/5")]


@pytest.mark.kafka
def test_without_vendor_secrets_the_routes_are_off(api: ApiProcess) -> None:
    """The harness's config has no Twilio auth token and no Slack signing secret."""
    for path in ("/v1/twilio/sms", "/v1/twilio/voice", "/v1/twilio/status"):
        answer = twilio_post(api, path, {"From": "+15550000001", "Body": "claim x"})
        assert answer.status == 404 and "auth_token" in answer.body, (path, answer)
    answer = slack_post(api, {"type": "block_actions"})
    assert answer.status == 404 and "signing_secret" in answer.body, answer


@pytest.mark.kafka
@pytest.mark.slow
def test_replies_get_503_when_kafka_cannot_take_them(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    api = ApiProcess(nowhere, tmp_path, config=CONFIG + "  produce_timeout: 1\n")
    try:
        api.start(wait_ready=False)
        _, answer = sms(api, "+15550000001", "claim x")
        assert answer.status == 503, answer
        status = twilio_post(
            api,
            "/v1/twilio/status?message_id=m&incident_id=i&instance=1",
            {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15550000001"},
        )
        assert status.status == 503, status
        assert (
            slack_post(
                api,
                {
                    "type": "block_actions",
                    "user": {"id": "U01ALICE"},
                    "actions": [{"action_id": "streamproc_claim", "value": json.dumps({"incident_id": "x"})}],
                },
            ).status
            == 503
        )
    finally:
        api.stop()


# ========================================================================== end to end, as deployed
E2E_CONFIG = """
applications:
  mon: {key: "mon-key"}
users:
  alice:
    contacts: {sms: "+15550000001", slack: "U01ALICE", email: "alice@example.com"}
    modes: {high: sms, medium: slack}
plans:
  by-sms:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 5, wait: 2}
  by-slack:
    steps:
      - - {role: user, target: alice, priority: medium, template: t, repeat: 5, wait: 2}
templates:
  t:
    default:
      default: {body: "{{ incident.id }}: {{ summary }} (reply 'claim {{ incident.id }}')"}
senders:
  twilio: {account_sid: "%(sid)s", auth_token: "%(token)s", from_number: "+15559990000", base_url: "%(twilio)s"}
  slack: {token: "%(slack_token)s", base_url: "%(slack)s", signing_secret: "%(secret)s"}
  rates: {sms: {rate: 50, burst: 50}, slack: {rate: 50, burst: 50}}
"""
REPEATS, WAIT = 5, 2.0


@dataclass
class Production:
    bootstrap: str
    stack: Stack
    api: ApiProcess
    twilio: FakeTwilio
    slack: FakeSlack
    response_url: FakeResponseUrl

    def trigger(self, incident_id: str, plan: str) -> None:
        body = json.dumps(
            {
                "type": "trigger",
                "incident_id": incident_id,
                "application": "mon",
                "plan": plan,
                "context": {"summary": "disk full"},
            }
        ).encode()
        answer = post(self.api.url + "/v1/events", body, {"Authorization": "Bearer mon-key"}, "application/json")
        assert answer.status == 202, answer

    def claim_applied(self, incident_id: str) -> dict[str, Any]:
        """The processor's `claimed` audit record of the incident (waits for it)."""
        records = collect(
            self.bootstrap,
            self.stack.topics.outcomes,
            lambda rs: any(r.get("kind") == "claimed" and r.get("incident_id") == incident_id for r in rs),
            timeout=30,
            settle=0,
        )
        audits = [r for r in records if r.get("kind") == "claimed" and r.get("incident_id") == incident_id]
        assert audits, f"the claim of {incident_id} was never applied"
        return audits[0]

    def emitted(self, mode: str, incident_id: str) -> list[dict[str, Any]]:
        """Messages the processor emitted for the incident, as they are on the topic now."""
        return [r for r in self.stack.read_now(self.stack.topics.messages(mode)) if r.get("incident_id") == incident_id]

    def settled(self, incident_id: str, message_ids: set[str]) -> bool:
        """Whether the sender wrote a record (sent, dropped, ...) of each of these messages."""
        records = self.stack.read_now(self.stack.topics.deliveries)
        return message_ids <= {r["message_id"] for r in records if r.get("incident_id") == incident_id}

    def assert_stopped(self, mode: str, incident_id: str, received: Callable[[], int], claim: dict[str, Any]) -> int:
        """After the claim is applied: every page emitted for the incident was scheduled before the claim;
        once the sender has settled them, the vendor gets nothing more for three waits of the plan."""

        def settled_pages() -> list[dict[str, Any]] | None:
            """The pages emitted so far, once two reads agree and the sender has a record of each."""
            first = self.emitted(mode, incident_id)
            ids = {m["message_id"] for m in first}
            if not first or not self.settled(incident_id, ids):
                return None
            return first if {m["message_id"] for m in self.emitted(mode, incident_id)} == ids else None

        emitted: list[dict[str, Any]] = wait_until(settled_pages, 20, "the sender settled every page emitted")
        claimed_at = parse_time(claim["at"])
        assert all(parse_time(m["at"]) < claimed_at for m in emitted), (claim, emitted)
        count = received()
        deadline = time.monotonic() + 3 * WAIT
        while time.monotonic() < deadline:  # the scenario: three waits of the plan with no page
            assert received() == count, f"{received()} pages after the claim was applied, {count} before"
            time.sleep(0.1)
        assert len(self.emitted(mode, incident_id)) == len(emitted)
        assert 1 <= count < REPEATS + 1, f"{count} pages: the repeats did not stop"
        return count


@pytest.fixture(scope="module")
def production(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, response_url: FakeResponseUrl
) -> Iterator[Production]:
    loop = BackgroundLoop()
    twilio, slack = FakeTwilio(SID, "e2e-twilio-token"), FakeSlack()
    loop.run(twilio.start())
    loop.run(slack.start())
    workdir = Path(tmp_path_factory.mktemp("production"))
    text = E2E_CONFIG % {
        "sid": twilio.account_sid,
        "token": twilio.auth_token,
        "twilio": twilio.url,
        "slack_token": slack.token,
        "slack": slack.api_url,
        "secret": SLACK_SECRET,
    }
    try:
        with live_stack(kafka_bootstrap, workdir, text, partitions=3) as stack:
            sender = stack.start_sender(["sms", "slack"], wait=False)
            stack.start_worker("w1")
            api = stack.start_api(wait=False)
            stack.wait_ready()
            api.wait_ready()
            sender.wait_ready()  # its consumers have their partitions
            yield Production(kafka_bootstrap, stack, api, twilio, slack, response_url)
    finally:
        loop.run(twilio.close())
        loop.run(slack.close())
        loop.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_a_signed_sms_reply_stops_an_escalation_end_to_end(production: Production) -> None:
    incident = f"e2e-sms-{uuid.uuid4().hex[:6]}"
    production.trigger(incident, "by-sms")

    def pages() -> list[Any]:
        return [r for r in production.twilio.sms if r.form["Body"].startswith(f"{incident}:")]

    [first, *_] = wait_until(pages, 30, "the first page reached Twilio")
    assert first.form["To"] == "+15550000001"
    reply = re.search(r"reply '([^']+)'", first.form["Body"])
    assert reply is not None, first.form
    # Twilio posts the reply to the number's webhook (the API, reached directly: no public_url), signed
    # with the account's auth token.
    _, answer = sms(production.api, first.form["To"], reply.group(1), public=None, token=production.twilio.auth_token)
    assert answer.status == 200 and answer.message() == f"Claimed {incident}.", answer

    claim = production.claim_applied(incident)
    assert claim["owner"] == "alice"
    count = production.assert_stopped("sms", incident, lambda: len(pages()), claim)
    print(f"\n{incident}: {count} SMS before the reply's claim stopped the repeats")


@pytest.mark.kafka
@pytest.mark.slow
def test_a_slack_button_press_stops_an_escalation_end_to_end(production: Production) -> None:
    incident = f"e2e-slack-{uuid.uuid4().hex[:6]}"
    production.trigger(incident, "by-slack")

    def pages() -> list[Any]:
        return [
            r
            for r in production.slack.delivered
            if isinstance(r.json, dict) and str(r.json.get("text", "")).startswith(f"{incident}:")
        ]

    [first, *_] = wait_until(pages, 30, "the first page reached Slack")
    assert first.json["channel"] == "U01ALICE"
    [section, actions] = first.json["blocks"]
    [button] = actions["elements"]
    # Slack posts the press to the app's interactivity URL, signed with the app's signing secret.
    n = uuid.uuid4().hex
    answer = slack_post(
        production.api,
        {
            "type": "block_actions",
            "user": {"id": first.json["channel"]},
            "response_url": f"{production.response_url.url}/actions/{n}",
            "message": {"blocks": first.json["blocks"]},
            "actions": [
                {"action_id": button["action_id"], "value": button["value"], "action_ts": f"{time.time():.6f}"}
            ],
        },
    )
    assert answer.status == 200, answer

    claim = production.claim_applied(incident)
    assert claim["owner"] == "alice"
    [update] = wait_until(
        lambda: [r.json for r in production.response_url.delivered if r.path == f"/actions/{n}"],
        10,
        "the page was updated",
    )
    assert update["replace_original"] is True and update["blocks"][0] == section
    assert "claimed by alice" in update["text"]
    count = production.assert_stopped("slack", incident, lambda: len(pages()), claim)
    print(f"\n{incident}: {count} Slack pages before the button's claim stopped the repeats")


def _batch_message(production: Production, incidents: list[str], mode: str, destination: str) -> Message:
    """A batch message as flood control writes it (spec §7): the first member's fields, the batch's id."""
    at = datetime.now(UTC)
    message_id = hashlib.sha256(f"batch\x00by-sms\x00alice\x00{at.isoformat()}".encode()).hexdigest()[:32]
    return Message(
        at=at,
        incident_id=incidents[0],
        instance=1,
        plan="by-sms",
        application="mon",
        step=1,
        notification=0,
        repeat=0,
        role="user",
        target="alice",
        user="alice",
        priority="high",
        mode=mode,
        destination=destination,  # type: ignore[arg-type]
        subject=f"[mon] {len(incidents)} messages from plan by-sms",
        body="\n".join(f"{i}: disk full" for i in incidents),
        render_error=False,
        message_id=message_id,
        batch=BatchInfo(count=len(incidents), incident_ids=incidents),
    )


@pytest.mark.kafka
@pytest.mark.slow
def test_a_batch_message_is_claimed_whole_by_its_slack_button_and_by_sms_end_to_end(production: Production) -> None:
    """Open incidents, then a batch message of them on the message topics (as flood control writes it):
    the sender delivers it (the real slack_sdk and twilio clients, against the fakes) and writes its
    record; the Slack button it carries, and an SMS reply naming the batch's id, claim every incident."""
    tag = uuid.uuid4().hex[:6]
    by_slack = [f"e2e-bs-{tag}-{n}" for n in range(3)]
    by_sms = [f"e2e-bt-{tag}-{n}" for n in range(2)]
    for incident in by_slack + by_sms:
        production.trigger(incident, "by-sms")
    wait_until(
        lambda: all(any(r.form["Body"].startswith(f"{i}:") for r in production.twilio.sms) for i in by_slack + by_sms),
        30,
        "every incident paged (so each has an open instance)",
    )

    slack_batch = _batch_message(production, by_slack, "slack", "U01ALICE")
    sms_batch = _batch_message(production, by_sms, "sms", "+15550000001")
    producer = Producer({"bootstrap.servers": production.bootstrap})
    for message in (slack_batch, sms_batch):
        producer.produce(
            production.stack.topics.messages(message.mode),
            key=message_key(message.user),
            value=json.dumps(outcome_dict(message)).encode(),
        )
    assert producer.flush(10) == 0

    [posted] = wait_until(
        lambda: [
            r
            for r in production.slack.delivered
            if isinstance(r.json, dict) and r.json.get("text", "").startswith(slack_batch.subject)
        ],
        30,
        "the batch reached Slack",
    )
    [_section, actions] = posted.json["blocks"]
    [button] = actions["elements"]
    assert json.loads(button["value"])["incident_ids"] == by_slack
    n = uuid.uuid4().hex
    answer = slack_post(
        production.api,
        {
            "type": "block_actions",
            "user": {"id": "U01ALICE"},
            "response_url": f"{production.response_url.url}/actions/{n}",
            "message": {"blocks": posted.json["blocks"]},
            "actions": [
                {"action_id": button["action_id"], "value": button["value"], "action_ts": f"{time.time():.6f}"}
            ],
        },
    )
    assert answer.status == 200, answer

    wait_until(
        lambda: [r for r in production.twilio.sms if r.form["Body"] == sms_batch.body], 30, "the batch reached Twilio"
    )
    _, reply = sms(
        production.api, "+15550000001", f"claim {sms_batch.message_id}", public=None, token=production.twilio.auth_token
    )
    assert reply.message() == f"Claimed 2 incidents of batch {sms_batch.message_id}: {', '.join(by_sms)}.", reply

    for incident in by_slack + by_sms:
        assert production.claim_applied(incident)["owner"] == "alice"
    [update] = wait_until(
        lambda: [r.json for r in production.response_url.delivered if r.path == f"/actions/{n}"],
        10,
        "the batch page was updated",
    )
    assert update["text"] == f"{', '.join(by_slack)}: claimed by alice"
