"""The whole data path as a timeline, GoAlert-smoke-test style, on real parts: a trigger on the
incidents topic -> `streamproc worker` -> `streamproc.messages.sms` -> `streamproc sender` -> the real
twilio client -> a local Twilio REST fake. Then a claim stops the repeats."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.localnet import terminate
from streamproc.timeutil import parse_time, to_us
from tests.fakes import FakeTwilio
from tests.fakes.http import serving
from tests.processor.cluster import REPO, Stack, iso_ms

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
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG % {"sid": twilio.account_sid, "token": twilio.auth_token, "url": twilio.url})
    stack = Stack(kafka_bootstrap, config, tmp_path)
    env = {**os.environ, "STREAMPROC_NAMESPACE": stack.namespace}
    with open(tmp_path / "sender.log", "wb") as log:
        sender = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamproc.cli",
                "sender",
                "--mode",
                "sms",
                "--config",
                str(config),
                "--bootstrap",
                kafka_bootstrap,
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        stack.start_worker("w1")
        stack.wait_ready()
        time.sleep(3)  # the sender joins its group
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
        time.sleep(max(0.0, t0 + 5.0 - time.time()))
        claim_at = time.time()
        stack.produce({"type": "claim", "at": iso_ms(claim_at), "incident_id": "smoke-1", "owner": "bob"})
        stack.flush()
        time.sleep(6)  # the plan would have paged at +6, +8, +10
        emitted = [v for _, v, _ in stack.read([stack.topics.messages("sms")], until=lambda r: True, timeout=5)]
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
    finally:
        terminate(sender)
        stack.stop()
