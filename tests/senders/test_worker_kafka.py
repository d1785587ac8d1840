"""The sender worker on a real broker, against the local vendor fakes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from streamproc.kafka.topics import Topics
from streamproc.senders.delivery_log import CRASH_ENV
from streamproc.senders.worker import group_id
from streamproc.wire.outcomes import Audit
from tests.fakes import FakeTwilio
from tests.harness import committed_to_end
from tests.senders.helpers import message
from tests.senders.kafkahelp import (
    deliveries,
    new_topics,
    produce,
    produce_audit,
    read_all,
    sender,
    sms_settings,
    wait_for_members,
    wait_until,
)

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


async def test_messages_are_sent_recorded_and_dropped_when_claimed(kafka_bootstrap: str, twilio: FakeTwilio) -> None:
    """The whole path once: sent, fallback to email on a bad number, dropped when claimed."""
    topics = new_topics(kafka_bootstrap, "sms")
    twilio.invalid_numbers.add("+1000")
    claimed = message(user="carol", body="claimed page")
    produce_audit(
        kafka_bootstrap,
        topics,
        Audit(kind="claimed", at=datetime.now(UTC), incident_id=claimed.incident_id, instance=1),
    )
    ok = message(user="alice", body="hello")
    bad = message(user="bob", destination="+1000", body="bad number")
    produce(kafka_bootstrap, topics, [ok, bad, claimed])
    emails = {"bob": "bob@example.com"}
    async with sender(kafka_bootstrap, topics, ["sms"], sms_settings(twilio), emails.get):
        await wait_until(lambda: len(deliveries(kafka_bootstrap, topics)) >= 3, 30, "three delivery records")
    status = {d.message_id: d.status for d in deliveries(kafka_bootstrap, topics)}
    assert status == {
        ok.message_id: "sent",
        bad.message_id: "fallback",
        claimed.message_id: "dropped-claimed",
    }
    assert [r.form["Body"] for r in twilio.delivered] == ["hello"]
    emails_queued = [json.loads(v) for v in read_all(kafka_bootstrap, topics.messages("email"))]
    assert [(e["message_id"], e["destination"]) for e in emails_queued] == [
        (bad.message_id + "~email", "bob@example.com")
    ]


async def test_rate_limit_holds_with_two_workers(kafka_bootstrap: str, twilio: FakeTwilio) -> None:
    """Two workers share the cluster-wide 20/s (burst 4): over any window at the vendor,
    deliveries stay within rate * window + burst."""
    rate, burst, count = 20, 4, 80
    topics = new_topics(kafka_bootstrap, "sms")
    one = sms_settings(twilio, rates={"sms": {"rate": rate, "burst": burst}})
    two = sms_settings(twilio, rates={"sms": {"rate": rate, "burst": burst}}, twilio={"from_number": "+15559990002"})
    async with sender(kafka_bootstrap, topics, ["sms"], one), sender(kafka_bootstrap, topics, ["sms"], two):
        await wait_for_members(kafka_bootstrap, group_id("sms", topics), 2)  # both share before the flood
        produce(
            kafka_bootstrap,
            topics,
            [message(user=f"user{n}", body=f"flood {n}", priority="low") for n in range(count)],
        )
        await twilio.wait_for(count, timeout=60)
    arrivals = sorted(r.at for r in twilio.delivered)
    assert len(arrivals) == count
    assert {r.form["From"] for r in twilio.delivered} == {"+15559990000", "+15559990002"}  # both worked
    slack = 1  # one token of timing noise between our clock reads and the fake's
    for window in (0.5, 1.0, 2.0):
        worst = max(sum(1 for t in arrivals[i:] if t - start <= window) for i, start in enumerate(arrivals))
        assert worst <= rate * window + burst + slack, (window, worst)
    overall = (count - burst) / (arrivals[-1] - arrivals[0])
    assert overall <= rate * 1.1, overall


async def test_urgent_page_is_not_stuck_behind_a_flood(kafka_bootstrap: str, twilio: FakeTwilio) -> None:
    topics = new_topics(kafka_bootstrap, "sms")
    settings = sms_settings(twilio, rates={"sms": {"rate": 20, "burst": 1}}, concurrency=1)
    flood = [message(user=f"user{n % 7}", application="noisy", priority="low", body=f"low {n}") for n in range(100)]
    urgent = message(user="alice", application="pager", priority="urgent", body="URGENT")
    produce(kafka_bootstrap, topics, flood)
    async with sender(kafka_bootstrap, topics, ["sms"], settings):
        await twilio.wait_for(10, timeout=30)
        before = len(twilio.delivered)
        produce(kafka_bootstrap, topics, [urgent])
        await wait_until(lambda: "URGENT" in [r.form["Body"] for r in twilio.delivered], 10, "urgent delivered")
    bodies = [r.form["Body"] for r in twilio.delivered]
    position = bodies.index("URGENT")
    # At 20/s, polling and producing take a few deliveries' time at most; the flood's end is ~90 away.
    assert position <= before + 5, (before, position)


def write_config(path: Path, twilio: FakeTwilio, users: list[str]) -> Path:
    config = {
        "users": {u: {"contacts": {"sms": "+15550000001"}} for u in users},
        "senders": {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": "+15559990000",
                "base_url": twilio.url,
            },
            "rates": {"sms": {"rate": 20, "burst": 2}},
            "concurrency": 1,
            "session_timeout": 6,
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def spawn_worker(bootstrap: str, topics: Topics, config: Path, **env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamproc.senders.worker", "--mode", "sms", "--bootstrap", bootstrap,
        "--config", str(config),
        cwd=REPO, env={**os.environ, "STREAMPROC_NAMESPACE": topics.namespace, **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
async def test_worker_killed_before_commit_does_not_page_twice(
    kafka_bootstrap: str, twilio: FakeTwilio, tmp_path: Path
) -> None:
    """SIGKILL right after the 5th `sent` record is acknowledged, before its offset is
    committed. A second worker takes the partitions over and must skip what was sent."""
    topics = new_topics(kafka_bootstrap, "sms")
    users = [f"user{n}" for n in range(10)]
    pages = [message(user=u, body=f"page-{n}") for n, u in enumerate(users)]
    config = write_config(tmp_path / "senders.yaml", twilio, users)
    produce(kafka_bootstrap, topics, pages)

    first = await spawn_worker(kafka_bootstrap, topics, config, **{CRASH_ENV: "5"})
    try:
        async with asyncio.timeout(60):
            await first.wait()
    finally:
        if first.returncode is None:
            first.kill()
    assert first.returncode == -9, (first.returncode, (await first.stderr.read()).decode()[-2000:])  # type: ignore[union-attr]
    assert len(twilio.delivered) == 5

    second = await spawn_worker(kafka_bootstrap, topics, config)
    try:
        await twilio.wait_for(len(pages), timeout=60)
        await wait_until(
            lambda: len(deliveries(kafka_bootstrap, topics)) >= len(pages) + 1, 30, "records of both workers"
        )
        # Every page handled (its offset committed, after its record): anything sent twice is sent.
        await wait_until(
            lambda: committed_to_end(kafka_bootstrap, group_id("sms", topics), topics.messages("sms")),
            30,
            "the second worker committed every page",
        )
    finally:
        second.terminate()
        async with asyncio.timeout(60):
            await second.wait()
    assert second.returncode == 0
    counts = Counter(r.form["Body"] for r in twilio.delivered)
    assert counts == Counter({p.body: 1 for p in pages})
    records = deliveries(kafka_bootstrap, topics)
    sent = Counter(d.message_id for d in records if d.status == "sent")
    assert sent == Counter({p.message_id: 1 for p in pages})
    # The killed worker's last page was read again by the second worker and skipped.
    assert [d.status for d in records if d.message_id == pages_sent_last(twilio, pages)] == [
        "sent",
        "duplicate",
    ]


def pages_sent_last(twilio: FakeTwilio, pages: list[object]) -> str:
    fifth = twilio.delivered[4].form["Body"]
    return next(p.message_id for p in pages if p.body == fifth)  # type: ignore[attr-defined]


def test_vendor_status_callbacks_land_on_the_deliveries_topic(kafka_bootstrap: str) -> None:
    from confluent_kafka import Producer

    from streamproc.kafka.deliveries import record_vendor_status

    topics = new_topics(kafka_bootstrap, "sms")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    written = record_vendor_status(
        producer,
        "m-1",
        "twilio",
        "delivered",
        "carrier accepted",
        vendor_id="SM123",
        user="alice",
        topic=topics.deliveries,
    )
    [got] = deliveries(kafka_bootstrap, topics)
    assert got == written
    assert (got.status, got.detail, got.vendor_id, got.user) == (
        "vendor-status",
        "delivered: carrier accepted",
        "SM123",
        "alice",
    )


async def test_without_credentials_every_mode_prints(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    from streamproc.config.senders import SendersSettings

    topics = new_topics(kafka_bootstrap, "sms", "slack")
    pages = [message(mode="sms", body="by sms"), message(mode="slack", destination="U1", body="by slack")]
    produce(kafka_bootstrap, topics, pages)
    async with sender(kafka_bootstrap, topics, ["sms", "slack"], SendersSettings()):
        await wait_until(lambda: len(deliveries(kafka_bootstrap, topics)) >= 2, 30, "two records")
    out = capsys.readouterr().out
    for page in pages:
        assert f"{page.message_id}: by {page.mode}" in out
    assert {(d.vendor, d.status) for d in deliveries(kafka_bootstrap, topics)} == {("console", "sent")}


async def test_ready_once_assigned_and_deliveries_reread(kafka_bootstrap: str, twilio: FakeTwilio) -> None:
    """`/ready` answers 200 only after the assignment (and its dedupe rebuild): from then on a
    message already delivered before the start is skipped, and a new one is sent."""
    import aiohttp

    from streamproc.localnet import free_port

    topics = new_topics(kafka_bootstrap, "sms")
    before = message(user="alice", body="sent by an earlier worker")
    async with sender(kafka_bootstrap, topics, ["sms"], sms_settings(twilio)):
        produce(kafka_bootstrap, topics, [before])
        await twilio.wait_for(1, 30)
    port = free_port()
    async with (
        sender(kafka_bootstrap, topics, ["sms"], sms_settings(twilio), status_address=("127.0.0.1", port)),
        aiohttp.ClientSession() as http,
    ):
        answers: list[int] = []

        async def ready() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/ready") as answer:
                    answers.append(answer.status)
                    body = await answer.json()
                    return answer.status == 200 and body["ready"] is True
            except aiohttp.ClientConnectionError:
                return False

        async with asyncio.timeout(30):
            while not await ready():
                await asyncio.sleep(0.05)
        async with http.get(f"http://127.0.0.1:{port}/ready") as answer:
            body = await answer.json()
        total = len(body["modes"]["sms"]["partitions"])
        assert total > 0 and body["modes"]["sms"]["assigned"] is True
        assert set(answers) <= {200, 503}
        produce(kafka_bootstrap, topics, [before, message(user="bob", body="new page")])
        await twilio.wait_for(2, 30)
        await wait_until(lambda: len(deliveries(kafka_bootstrap, topics)) >= 3, 30, "three delivery records")
    assert [r.form["Body"] for r in twilio.delivered] == ["sent by an earlier worker", "new page"]
