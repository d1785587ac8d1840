"""Alertmanager's silences API v2 on `streamproc api`, driven by the real `amtool` (Debian's
`prometheus-alertmanager` package, fetched by tools/debian/fetch.sh into .cache, nothing installed),
and what it writes on the incidents topic. Plus what amtool cannot send (negative matchers are
refused by us, not by amtool; regexes amtool's Go parser refuses never reach us), over plain HTTP."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streamproc.timeutil import parse_time
from streamproc.wire.api import AM_GETTABLE_SILENCES
from streamproc.wire.events import Silence, Unsilence, parse_any_event
from tests.api.test_alertmanager import REPO, http, rfc3339
from tests.harness import ApiProcess, read_topic

pytestmark = pytest.mark.kafka

APP, KEY = "alertmanager", "am-key"  # in the harness CONFIG


@pytest.fixture(scope="module")
def amtool_bin() -> str:
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "debian" / "fetch.sh"), "amtool"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"could not fetch amtool:\n{proc.stderr}")
    return proc.stdout.strip()


class Amtool:
    def __init__(self, binary: str, api: ApiProcess, http_config: Path) -> None:
        self.binary, self.api, self.http_config = binary, api, http_config

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [
            self.binary,
            *args,
            f"--alertmanager.url={self.api.url}",
            f"--http.config.file={self.http_config}",
            "--timeout=20s",
        ]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if check:
            assert proc.returncode == 0, (command, proc.stdout, proc.stderr, self.api.log()[-2000:])
        return proc

    def query(self, *args: str) -> list[dict[str, Any]]:
        out = self.run("silence", "query", "-o", "json", *args).stdout
        silences: list[dict[str, Any]] = json.loads(out)
        AM_GETTABLE_SILENCES.validate_python(silences)  # what amtool printed is Alertmanager's model
        return silences


@pytest.fixture
def basic(amtool_bin: str, api: ApiProcess, tmp_path: Path) -> Amtool:
    config = tmp_path / "amtool-basic.yml"
    config.write_text(f"basic_auth:\n  username: {APP}\n  password: {KEY}\n")
    return Amtool(amtool_bin, api, config)


def records_of(api: ApiProcess, silence_id: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    return [(k, v) for k, v in read_topic(api.bootstrap, api.topics.incidents) if v.get("silence_id") == silence_id]


def snapshot(api: ApiProcess) -> list[tuple[bytes | None, str]]:
    return sorted((k, json.dumps(v, sort_keys=True)) for k, v in read_topic(api.bootstrap, api.topics.incidents))


def test_amtool_silence_add_query_expire(basic: Amtool, api: ApiProcess, amtool_bin: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    # add: prints the new silence's id once Kafka has the event.
    added = basic.run(
        "silence",
        "add",
        "alertname=DiskFull",
        f"run={run}",
        "instance=~db0[12]:9100",
        "--author=alice",
        "--comment=PostgreSQL 17 upgrade",
        "--duration=2h",
    )
    silence_id = added.stdout.strip()
    assert str(uuid.UUID(silence_id)) == silence_id, added.stdout

    [(key, value)] = records_of(api, silence_id)
    assert key == f"silence:{APP}:{silence_id}".encode()
    event = parse_any_event(json.dumps(value))
    assert isinstance(event, Silence)
    assert event.application == APP  # the credentials' application
    assert event.match == {"alertname": "DiskFull", "run": run}  # equal matchers
    assert event.match_re == {"instance": "db0[12]:9100"}  # regex matchers
    assert (event.created_by, event.comment, event.plans) == ("alice", "PostgreSQL 17 upgrade", None)
    assert event.starts is not None and event.at is not None
    assert event.ends - event.starts == timedelta(hours=2)
    assert abs(event.starts - event.at) < timedelta(seconds=5)  # amtool's "now" and ours

    # query: Alertmanager's JSON, filtered as Alertmanager filters (by the silences' matchers).
    [listed] = [s for s in basic.query(f"run={run}")]
    assert listed["id"] == silence_id and listed["status"]["state"] == "active"
    assert listed["createdBy"] == "alice" and listed["comment"] == "PostgreSQL 17 upgrade"
    assert sorted((m["name"], m["value"], m["isRegex"], m["isEqual"]) for m in listed["matchers"]) == [
        ("alertname", "DiskFull", False, True),
        ("instance", "db0[12]:9100", True, True),
        ("run", run, False, True),
    ]
    assert basic.run("silence", "query", "-q", f"run={run}").stdout.split() == [silence_id]
    assert basic.run("silence", "query", "-q", "alertname=NodeDown", f"run={run}").stdout.split() == []
    assert basic.run("silence", "query", "-q", "alertname=~Disk.*", f"run={run}").stdout.split() == [silence_id]

    # expire: an unsilence of the same silence, after which amtool lists it as expired.
    basic.run("silence", "expire", silence_id)
    (_, first), (key, value) = records_of(api, silence_id)  # one key, one partition: in order
    assert first["type"] == "silence" and key == f"silence:{APP}:{silence_id}".encode()
    ended = parse_any_event(json.dumps(value))
    assert isinstance(ended, Unsilence) and ended.application == APP and ended.silence_id == silence_id
    assert basic.run("silence", "query", "-q", f"run={run}").stdout.split() == []
    assert basic.run("silence", "query", "-q", "--expired", f"run={run}").stdout.split() == [silence_id]
    [gone] = basic.query("--expired", f"run={run}")
    assert gone["status"]["state"] == "expired"
    assert abs(parse_time(gone["endsAt"]) - parse_time(value["at"])) < timedelta(milliseconds=1)  # amtool: ms

    # A silence ended before its window: expired for amtool too (it tells them by endsAt).
    later = basic.run(
        "silence",
        "add",
        f"run={run}",
        "alertname=Later",
        "--comment=next week",
        f"--start={rfc3339(datetime.now(UTC) + timedelta(days=7))}",
        "--duration=1h",
    ).stdout.strip()
    assert [s["status"]["state"] for s in basic.query(f"run={run}")] == ["pending"]
    basic.run("silence", "expire", later)
    assert basic.run("silence", "query", "-q", f"run={run}").stdout.split() == []
    assert sorted(basic.run("silence", "query", "-q", "--expired", f"run={run}").stdout.split()) == sorted(
        [silence_id, later]
    )
    [event] = [parse_any_event(json.dumps(v)) for _, v in records_of(api, later) if v["type"] == "silence"]
    assert isinstance(event, Silence) and event.starts is not None and event.starts > datetime.now(UTC)

    # The same with a bearer key (amtool's `authorization`), and another application's key sees none.
    bearer_config = tmp_path / "amtool-bearer.yml"
    bearer_config.write_text(f"authorization:\n  credentials: {KEY}\n")
    bearer = Amtool(amtool_bin, api, bearer_config)
    assert sorted(bearer.run("silence", "query", "-q", "--expired", f"run={run}").stdout.split()) == sorted(
        [silence_id, later]
    )
    grafana_config = tmp_path / "amtool-grafana.yml"
    grafana_config.write_text("authorization:\n  credentials: grafana-key\n")
    grafana = Amtool(amtool_bin, api, grafana_config)
    assert grafana.run("silence", "query", "-q", "--expired", f"run={run}").stdout.split() == []
    refused = grafana.run("silence", "expire", silence_id, check=False)
    # 404 (amtool 0.25's client knows no 404 for this call, and says so with the status).
    assert refused.returncode == 1 and "(status 404)" in refused.stderr, refused


def test_amtool_refusals_name_the_problem_and_write_nothing(
    basic: Amtool, api: ApiProcess, amtool_bin: str, tmp_path: Path
) -> None:
    before = snapshot(api)
    negative = basic.run("silence", "add", "alertname=DiskFull", "instance!=db01", "--comment=x", check=False)
    assert negative.returncode == 1, negative
    assert 'negative matchers are not supported: matchers[1] (instance!="db01")' in negative.stderr, negative

    too_long = basic.run("silence", "add", "alertname=DiskFull", "--comment=x", "--duration=31d", check=False)
    assert (
        too_long.returncode == 1 and "endsAt: Value error, must be at most 30 days after starts" in too_long.stderr
    ), too_long

    wrong = tmp_path / "wrong.yml"
    wrong.write_text(f"basic_auth:\n  username: {APP}\n  password: not-the-key\n")
    unauthorized = Amtool(amtool_bin, api, wrong).run(
        "silence", "add", "alertname=DiskFull", "--comment=x", check=False
    )
    assert unauthorized.returncode == 1 and "401" in unauthorized.stderr, unauthorized
    assert snapshot(api) == before


def am_silence(matchers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "matchers": matchers,
        "startsAt": "2026-12-06T10:00:00Z",
        "endsAt": "2026-12-06T12:00:00Z",
        "createdBy": "alice",
        "comment": "maintenance",
        **extra,
    }


def m(name: str, value: str, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


AM_REFUSALS = [
    (
        am_silence([m("alertname", "DiskFull"), m("host", "db0.*", regex=True, equal=False)]),
        400,
        'matchers: negative matchers are not supported: matchers[1] (host!~"db0.*")',
    ),
    (
        am_silence([m("host", r"(db)\1", regex=True)]),
        400,
        "matchers (host): Value error, not RE2-compatible: backreferences",
    ),
    (am_silence([m("host", "db(", regex=True)]), 400, "matchers (host): Value error, not a valid regular expression"),
    (am_silence([]), 400, "matchers: at least one matcher is required"),
    (am_silence([m("host", "")]), 400, 'matchers[0] (host=""): an empty value'),
    (am_silence([m("host", "a"), m("host", "b")]), 400, "matchers[1].name: 'host' is given twice"),
    (am_silence([m("host", "a")], endsAt="2026-12-06T09:00:00Z"), 400, "endsAt: Value error, must be after starts"),
    (am_silence([m("host", "a")], endsAt="2027-01-06T12:00:00Z"), 400, "endsAt: Value error, must be at most 30 days"),
    ({"matchers": [m("host", "a")]}, 400, "startsAt: Field required"),
]


@pytest.mark.parametrize(("body", "status", "error"), AM_REFUSALS, ids=[r[2][:40] for r in AM_REFUSALS])
def test_alertmanager_api_refusals_are_alertmanagers_json_strings(
    api: ApiProcess, body: dict[str, Any], status: int, error: str
) -> None:
    before = snapshot(api)
    got, answer = http("POST", api.url + "/api/v2/silences", body, f"Bearer {KEY}")
    assert got == status and isinstance(answer, str) and answer.startswith(error), answer
    assert snapshot(api) == before
