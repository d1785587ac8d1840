"""The whole data path as a timeline, GoAlert-smoke-test style, on real parts: a trigger on the
incidents topic -> `streamproc worker` -> `streamproc.messages.sms` -> `streamproc sender` -> the real
twilio client -> a local Twilio REST fake. Then a claim stops the repeats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.timeutil import parse_time, to_us
from tests.fakes import FakeTwilio
from tests.fakes.http import serving
from tests.harness import iso_ms, live_stack

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
applications:
  app: {}
users:
  bob: {contacts: {sms: "+15550000002", email: "bob@x"}}
plans:
  page-bob:
    steps:
      - - {role: user, target: bob, priority: high, template: t, repeat: 8, wait: 2}
templates:
  t:
    default:
      default: {body: "{{ incident.id }}: {{ summary }} (repeat {{ incident.step }})"}
senders:
  twilio: {account_sid: "%(sid)s", auth_token: "%(token)s", from_number: "+15559990000", base_url: "%(url)s"}
  rates: {sms: {rate: 50, burst: 50}}
"""


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with serving(FakeTwilio()) as fake:
        yield fake


def test_trigger_pages_through_twilio_until_claimed(kafka_bootstrap: str, tmp_path: Path, twilio: FakeTwilio) -> None:
    text = CONFIG % {"sid": twilio.account_sid, "token": twilio.auth_token, "url": twilio.url}
    with live_stack(kafka_bootstrap, tmp_path, text) as stack:
        sender = stack.start_sender(["sms"], wait=False)
        stack.start_worker("w1")
        stack.wait_ready()
        sender.wait_ready()  # its consumer has the partitions: it reads what comes from now on
        # 10:00 trigger -> sms at +0, +2, +4 ... ; claim at +5 -> nothing at or after +5
        t0 = time.time()
        stack.produce(
            {
                "type": "trigger",
                "at": iso_ms(t0),
                "incident_id": "smoke-1",
                "application": "app",
                "plan": "page-bob",
                "context": {"summary": "disk full"},
            }
        )
        stack.flush()
        time.sleep(max(0.0, t0 + 5.0 - time.time()))  # the scenario: the claim comes at +5
        claim_at = time.time()
        stack.produce({"type": "claim", "at": iso_ms(claim_at), "incident_id": "smoke-1", "owner": "bob"})
        stack.flush()
        stack.wait_for([stack.topics.outcomes], lambda recs: any(v.get("kind") == "claimed" for _, v, _ in recs))
        # The scenario: the clock passes the repeat the claim cancelled (+6).
        time.sleep(max(0.0, t0 + 6.5 - time.time()))
        emitted = [v for _, v, _ in stack.read([stack.topics.messages("sms")], until=lambda r: True, timeout=5)]
        # The sender has settled every page emitted (a record of each on the deliveries topic): what
        # Twilio has now is all it gets.
        ids = {m["message_id"] for m in emitted}
        stack.wait_for([stack.topics.deliveries], lambda recs: {v["message_id"] for _, v, _ in recs} >= ids)
        received = twilio.sms
        print(
            f"\nsmoke: emitted {len(emitted)} sms before the claim; Twilio received {len(received)}; "
            f"first page reached Twilio {received[0].at - t0:.2f}s after the trigger"
            if received
            else ""
        )
        assert len(emitted) == 3  # +0, +2, +4
        assert all(to_us(parse_time(m["at"])) / 1e6 < claim_at for m in emitted)
        assert len(received) == 3, [r.form for r in received]
        forms: list[dict[str, Any]] = [r.form for r in received]
        assert {f["To"] for f in forms} == {"+15550000002"} and {f["From"] for f in forms} == {"+15559990000"}
        assert all(f["Body"].startswith("smoke-1: disk full") for f in forms)
