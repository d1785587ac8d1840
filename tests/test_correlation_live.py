"""One incident followed through the JSON logs of the API, a worker and a sender (real processes),
by its incident id and the correlation id the API request gave it, and through the record headers;
then `streamproc inspect incident` tells the story of one from the topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamproc.kafka.headers import CORRELATION_HEADER, HTTP_HEADER
from streamproc.kafka.topics import partition_for
from streamproc.timeutil import parse_time
from tests.harness import REPO, Stack, live_stack, read, wait_until
from tests.harness.logs import json_lines

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = """
applications:
  app: {key: "app-key"}
users:
  alice: {contacts: {sms: "+1001", email: "alice@x"}}
plans:
  once:
    steps:
      - - {role: user, target: alice, priority: high, template: t}
  repeating:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 5, wait: 600}
templates:
  t:
    default:
      default: {subject: "{{ summary }}", body: "{{ summary }} #{{ incident.id }}"}
"""


@dataclass
class LiveStack:
    stack: Stack
    api_url: str
    api_log: Path
    sender_log: Path
    sender_status: str
    incidents: list[str] = field(default_factory=list)
    """Every incident the module's tests posted (each test follows its own)."""


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """One stack for the module's tests: each follows an incident of its own."""
    tmp_path = tmp_path_factory.mktemp("live")
    with pytest.MonkeyPatch.context() as monkeypatch, live_stack(kafka_bootstrap, tmp_path, CONFIG) as stack:
        monkeypatch.setenv("STREAMPROC_LOG_FORMAT", "json")  # every process, `inspect` too
        stack.start_worker("w1")
        # The console vendor's lines go to the sender's stdout; its log is JSON lines only.
        sender = stack.start_sender(["sms"], stdout=tmp_path / "sender.out", wait=False)
        api = stack.start_api(args=["--loglevel", "info"], stdout=tmp_path / "api.out", wait=False)
        stack.wait_ready()
        api.wait_ready()
        sender.wait_ready()
        yield LiveStack(stack, api.url, api.log, sender.log, sender.status_url)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    return wait_until(check, timeout, what, interval=0.1)


def headers_on(bootstrap: str, topic: str, incident: str) -> list[dict[str, bytes]]:
    """Headers of the records of `topic` (as it is now) whose value names `incident`."""
    return read(bootstrap, topic, convert=lambda r: r.headers if incident.encode() in (r.value or b"") else None)


def post(live: LiveStack, event: dict[str, Any], correlation: str, header: str = "X-Request-Id") -> None:
    live.incidents.append(event["incident_id"])
    request = urllib.request.Request(
        f"{live.api_url}/v1/events",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Authorization": "Bearer app-key", "Content-Type": "application/json", header: correlation},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
        assert resp.headers[HTTP_HEADER] == correlation


def inspect(live: LiveStack, *args: str, what: str = "incident") -> subprocess.CompletedProcess[str]:
    extra = ["--bootstrap", live.stack.bootstrap] if what == "incident" else []
    return subprocess.run(
        [sys.executable, "-m", "streamproc.cli", "inspect", what, *args, *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "STREAMPROC_NAMESPACE": live.stack.namespace, "COLUMNS": "300"},
        timeout=120,
    )


def test_inspect_incident_tells_trigger_page_delivery_and_claim(live: LiveStack) -> None:
    incident = f"insp-{uuid.uuid4().hex[:8]}"
    post(
        live,
        {"type": "trigger", "incident_id": incident, "plan": "repeating", "context": {"summary": "disk"}},
        "req-trigger",
        header="X-Correlation-Id",
    )
    wait_for(
        "the first page's delivery",
        lambda: [
            x
            for x in json_lines(live.sender_log)
            if x.get("incident_id") == incident and x["message"] == "delivery sent"
        ],
    )
    post(live, {"type": "claim", "incident_id": incident, "owner": "alice"}, "req-claim")

    def timeline() -> list[dict[str, Any]] | None:
        done = inspect(live, incident, "--json")
        assert done.returncode in (0, 1), done.stderr
        entries: list[dict[str, Any]] = json.loads(done.stdout)["entries"]
        return entries if any(e["kind"] == "claimed" for e in entries) else None

    entries = wait_for("the claim's audit in inspect's output", timeline)
    kinds = [(e["topic"].split(".", 1)[1], e["kind"]) for e in entries]
    assert kinds == [
        ("incidents", "trigger"),
        ("events", "trigger"),
        ("messages.sms", "message"),
        ("deliveries", "sent"),
        ("incidents", "claim"),
        ("events", "claim"),
        ("outcomes", "claimed"),
    ], kinds
    trigger_correlation = {e["correlation_id"] for e in entries[:4]}
    assert trigger_correlation == {"req-trigger"}
    assert entries[-1]["correlation_id"] == "req-trigger"  # the instance's records carry its trigger's id
    assert [e["correlation_id"] for e in entries[4:6]] == ["req-claim", "req-claim"]
    sent = entries[3]
    assert sent["message_id"] == entries[2]["message_id"] and 0 <= sent["lateness_seconds"] < 30
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)

    table = inspect(live, incident)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(incident in line for line in lines[:2])

    def row(*words: str) -> int:
        found = [i for i, line in enumerate(lines) if all(w in line for w in words)]
        assert len(found) == 1, (words, table.stdout)
        return found[0]

    order = [
        row("incidents[", "trigger", "req-trigger"),
        row("events[", "trigger"),
        row("messages.sms[", "message", "sms to alice", "[high]", sent["message_id"][:12]),
        row("deliveries[", "sent", "via console", f"{sent['lateness_seconds']:.3f}s"),
        row("incidents[", "claim", "owner=alice", "req-claim"),
        row("outcomes[", "claimed", "req-trigger"),
    ]
    assert order == sorted(order)
    assert inspect(live, "no-such-incident", "--json").returncode == 1


def test_one_incident_is_followed_by_its_correlation_id_across_api_worker_and_sender(live: LiveStack) -> None:
    correlation = f"req-{uuid.uuid4().hex[:12]}"
    incident = f"corr-{uuid.uuid4().hex[:8]}"
    post(
        live,
        {"type": "trigger", "incident_id": incident, "plan": "once", "context": {"summary": "disk full"}},
        correlation,
    )

    def ours(lines: list[dict[str, Any]], message: str) -> list[dict[str, Any]]:
        return [x for x in lines if x.get("incident_id") == incident and x.get("message") == message]

    worker_log = live.stack.workers[0].log
    # The sender's delivery line (which tells the vendor call of an accepted page: no line of its
    # own), then the worker's lines, all with the request's id.
    call = wait_for("delivery line", lambda: ours(json_lines(live.sender_log), "delivery sent"))
    rendered = ours(json_lines(worker_log), "message rendered")
    rekeyed = ours(json_lines(worker_log), "event re-keyed")
    applied = ours(json_lines(worker_log), "event applied")
    assert not ours(json_lines(live.sender_log), "vendor call"), "an accepted call is told on its delivery line"
    assert len(call) == len(rendered) == len(rekeyed) == len(applied) == 1, (call, rendered, rekeyed, applied)
    for line in (*call, *rendered, *rekeyed, *applied):
        assert line["correlation_id"] == correlation, line
    assert call[0]["message_id"] == rendered[0]["message_id"]
    assert (call[0]["vendor"], call[0]["result"], call[0]["mode"], call[0]["status"]) == (
        "console",
        "ok",
        "sms",
        "sent",
    )
    assert call[0]["attempt"] == 1 and isinstance(call[0]["seconds"], float)
    assert (call[0]["application"], call[0]["plan"], call[0]["instance"]) == ("app", "once", 1)
    assert (applied[0]["plan"], applied[0]["application"], applied[0]["instance"]) == ("once", "app", 1)
    assert isinstance(call[0]["partition"], int) and isinstance(applied[0]["partition"], int)
    # The API's own line, and the header on every record of the way.
    api_lines = [x for x in json_lines(live.api_log) if x.get("incident_id") == incident]
    assert api_lines and all(x["correlation_id"] == correlation for x in api_lines)
    topics = live.stack.topics
    bootstrap = live.stack.bootstrap
    for topic in (topics.incidents, topics.events, topics.messages("sms"), topics.deliveries):
        headers = headers_on(bootstrap, topic, incident)
        assert headers and all(h.get(CORRELATION_HEADER) == correlation.encode() for h in headers), (topic, headers)


def test_inspect_workers_and_senders(live: LiveStack) -> None:
    # On a partition none of the module's other incidents is on: its row counts this one alone.
    taken = {partition_for(i.encode(), live.stack.partitions) for i in live.incidents}
    names = (f"wk-{uuid.uuid4().hex[:8]}" for _ in range(1000))
    incident = next(i for i in names if partition_for(i.encode(), live.stack.partitions) not in taken)
    post(live, {"type": "trigger", "incident_id": incident, "plan": "repeating", "context": {"summary": "x"}}, "r1")
    wait_for(
        "the first page's delivery",
        lambda: [
            x
            for x in json_lines(live.sender_log)
            if x.get("incident_id") == incident and x["message"] == "delivery sent"
        ],
    )
    worker = live.stack.workers[0]
    own = partition_for(incident.encode(), live.stack.partitions)

    def workers() -> dict[str, Any] | None:
        done = inspect(live, f"http://127.0.0.1:{worker.port}", "--json", what="workers")
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)["workers"][0]
        rows = {r["partition"]: r for r in answer["partitions"]}
        return answer if rows[own]["open"] == 1 and rows[own]["wake_ups"] == 1 else None

    answer = wait_for("the open incident in the worker's status", workers)  # the table is written after the outputs
    assert answer["instance"] == "w1" and answer["ready"] is True
    assert sorted(r["partition"] for r in answer["partitions"]) == list(range(live.stack.partitions))
    row = next(r for r in answer["partitions"] if r["partition"] == own)
    assert 500 < (parse_time(row["next_wake"]).timestamp() - time.time()) <= 600 and not row["catching_up"]
    table = inspect(live, f"http://127.0.0.1:{worker.port}", what="workers")
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.stdout.splitlines() if "│" in line]
    assert table.returncode == 0 and ["w1", str(own), "1", "1", row["next_wake"], "ready"] in cells, table.stdout

    done = inspect(live, live.sender_status, "--json", what="senders")
    assert done.returncode == 0, done.stderr
    (mode,) = json.loads(done.stdout)["senders"][0]["modes"]
    assert (mode["mode"], mode["vendor"], mode["queued"], mode["in_flight"]) == ("sms", "console", 0, 0)
    assert mode["partitions"] and mode["rate_limit"]["mode"]["rate"] > 0
    table = inspect(live, live.sender_status, what="senders")
    assert table.returncode == 0 and "sms" in table.stdout and "console" in table.stdout, table.stdout
    assert inspect(live, "http://127.0.0.1:1", what="senders").returncode == 1  # nobody there
