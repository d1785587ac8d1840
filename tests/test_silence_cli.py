"""`streamproc silence add|list|expire` as users run it (a child process), on a real broker: the events
it writes on the incidents topic, what `list` reads back, and what it refuses (writing nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streamproc.kafka.topics import Topics
from streamproc.wire.api import SilenceList, SilenceView
from streamproc.wire.events import Silence, Unsilence, parse_any_event
from tests.harness import API_CONFIG as CONFIG
from tests.harness import read_topic

pytestmark = pytest.mark.kafka


class Cli:
    def __init__(self, bootstrap: str, tmp: Path) -> None:
        self.bootstrap = bootstrap
        self.topics = Topics(f"silcli-{uuid.uuid4().hex[:8]}")
        self.config = tmp / "config.yaml"
        self.config.write_text(CONFIG)
        self.env = {**os.environ, "STREAMPROC_NAMESPACE": self.topics.namespace}

    def run(self, command: str, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamproc.cli",
                "silence",
                command,
                "--config",
                str(self.config),
                "--bootstrap",
                self.bootstrap,
                *args,
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    def records(self) -> list[tuple[bytes | None, dict[str, Any]]]:
        return read_topic(self.bootstrap, self.topics.incidents)

    def snapshot(self) -> list[tuple[bytes | None, str]]:
        return sorted((k, json.dumps(v, sort_keys=True)) for k, v in self.records())


@pytest.fixture(scope="module")
def cli(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(kafka_bootstrap, tmp_path_factory.mktemp("silence-cli"))


def test_add_list_expire(cli: Cli) -> None:
    before = datetime.now(UTC)
    added = cli.run(
        "add",
        "--application",
        "grafana",
        "--id",
        "db-upgrade",
        "--duration",
        "2h",
        "--match",
        "host=db01",
        "--match",
        "host=db02",
        "--match",
        "severity=critical",
        "--match-re",
        "alertname=Disk.*",
        "--plan",
        "db-critical",
        "--created-by",
        "alice",
        "--comment",
        "PostgreSQL 17 upgrade",
        "--json",
    )
    view = SilenceView.model_validate_json(added.stdout)
    assert (view.silence_id, view.application, view.state) == ("db-upgrade", "grafana", "active")

    [(key, value)] = cli.records()
    assert key == b"silence:grafana:db-upgrade"
    event = parse_any_event(json.dumps(value))
    assert isinstance(event, Silence) and event.at is not None
    assert before <= event.at <= datetime.now(UTC)
    assert event.starts is None  # from `at`, as the spec defaults it
    assert event.ends - event.at == timedelta(hours=2)
    assert event.match == {"host": ["db01", "db02"], "severity": "critical"}
    assert event.match_re == {"alertname": "Disk.*"}
    assert (event.plans, event.created_by, event.comment) == (["db-critical"], "alice", "PostgreSQL 17 upgrade")

    later = cli.run(
        "add",
        "--application",
        "grafana",
        "--starts",
        "2030-01-01T00:00:00Z",
        "--ends",
        "2030-01-02T00:00:00Z",
        "--json",
    )
    pending_id = SilenceView.model_validate_json(later.stdout).silence_id
    other = cli.run("add", "--application", "alertmanager", "--duration", "1h", "--json")
    other_id = SilenceView.model_validate_json(other.stdout).silence_id

    listed = SilenceList.model_validate_json(cli.run("list", "--application", "grafana", "--json").stdout)
    assert [(s.silence_id, s.state) for s in listed.silences] == [("db-upgrade", "active"), (pending_id, "pending")]
    assert listed.silences[0] == view
    everyone = SilenceList.model_validate_json(cli.run("list", "--json").stdout)
    assert {s.silence_id for s in everyone.silences} == {"db-upgrade", pending_id, other_id}
    table = cli.run("list", "--application", "grafana").stdout
    assert "db-upgrade" in table and "host=db01|db02" in table and "alertname=~Disk.*" in table
    assert "plan in db-critical" in table and pending_id in table and other_id not in table

    ended = SilenceList.model_validate_json(
        cli.run("expire", "--application", "grafana", "db-upgrade", "--json").stdout
    )
    assert [(s.silence_id, s.state) for s in ended.silences] == [("db-upgrade", "expired")]
    [(key, value)] = [(k, v) for k, v in cli.records() if v["type"] == "unsilence"]
    assert key == b"silence:grafana:db-upgrade"
    unsilence = parse_any_event(json.dumps(value))
    assert isinstance(unsilence, Unsilence) and unsilence.application == "grafana"
    listed = SilenceList.model_validate_json(cli.run("list", "--application", "grafana", "--json").stdout)
    assert [s.silence_id for s in listed.silences] == [pending_id]
    every = SilenceList.model_validate_json(cli.run("list", "--application", "grafana", "--all", "--json").stdout)
    assert [(s.silence_id, s.state) for s in every.silences] == [(pending_id, "pending"), ("db-upgrade", "expired")]


REFUSALS = [
    (["add", "--application", "nope", "--duration", "1h"], "--application: unknown application 'nope'"),
    (
        ["add", "--application", "grafana", "--duration", "31d"],
        "ends: Value error, must be at most 30 days after starts",
    ),
    (
        ["add", "--application", "grafana", "--starts", "2030-01-02T00:00:00Z", "--ends", "2030-01-01T00:00:00Z"],
        "ends: Value error, must be after starts",
    ),
    (
        ["add", "--application", "grafana", "--duration", "1h", "--match-re", "host=db("],
        "match_re.host: Value error, not a valid regular expression",
    ),
    (
        ["add", "--application", "grafana", "--duration", "1h", "--match-re", r"host=(db)\1"],
        "match_re.host: Value error, not RE2-compatible: backreferences",
    ),
    (["add", "--application", "grafana", "--duration", "1h", "--match", "host"], "--match: expected KEY=VALUE"),
    (
        ["expire", "--application", "grafana", "no-such-silence"],
        "application 'grafana' has no silence 'no-such-silence'",
    ),
]


@pytest.mark.parametrize(("args", "error"), REFUSALS, ids=[e[:40] for _, e in REFUSALS])
def test_refusals_name_the_problem_and_write_nothing(cli: Cli, args: list[str], error: str) -> None:
    cli.run("list")  # (the topic exists)
    before = cli.snapshot()
    refused = cli.run(*args, code=2)
    assert f"streamproc silence {args[0]}: {error}" in refused.stderr, refused.stderr
    assert cli.snapshot() == before


def test_list_shows_silences_any_producer_wrote(cli: Cli, tmp_path: Path) -> None:
    """`streamproc produce` takes §8 events too; `list` reads whatever wrote them (here a silence and
    its extension, then an unsilence of another), applied at their `at` as the processor applies them."""
    starts = datetime.now(UTC) + timedelta(hours=1)
    events = [
        {
            "type": "silence",
            "at": datetime.now(UTC).isoformat(),
            "silence_id": "produced",
            "application": "grafana",
            "starts": starts.isoformat(),
            "ends": (starts + timedelta(hours=1)).isoformat(),
        },
        {
            "type": "silence",
            "at": datetime.now(UTC).isoformat(),
            "silence_id": "produced",
            "application": "grafana",
            "starts": starts.isoformat(),
            "ends": (starts + timedelta(hours=3)).isoformat(),
            "comment": "longer",
        },
        {
            "type": "silence",
            "at": datetime.now(UTC).isoformat(),
            "silence_id": "gone",
            "application": "grafana",
            "ends": (starts + timedelta(hours=3)).isoformat(),
        },
        {"type": "unsilence", "at": datetime.now(UTC).isoformat(), "silence_id": "gone", "application": "grafana"},
        {
            "type": "heartbeat",
            "at": datetime.now(UTC).isoformat(),
            "heartbeat": "nightly-backup",
            "application": "grafana",
        },
    ]
    path = tmp_path / "maintenance.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    produced = subprocess.run(
        [sys.executable, "-m", "streamproc.cli", "produce", str(path), "--bootstrap", cli.bootstrap],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert produced.returncode == 0, produced.stderr
    keys = {k for k, v in cli.records() if v.get("silence_id") in ("produced", "gone") or v["type"] == "heartbeat"}
    assert keys == {b"silence:grafana:produced", b"silence:grafana:gone", b"heartbeat-nightly-backup"}
    listed = SilenceList.model_validate_json(cli.run("list", "--application", "grafana", "--all", "--json").stdout)
    mine = {s.silence_id: s for s in listed.silences if s.silence_id in ("produced", "gone")}
    assert (mine["produced"].state, mine["produced"].comment) == ("pending", "longer")
    assert mine["produced"].ends == starts + timedelta(hours=3)
    assert mine["gone"].state == "expired"
