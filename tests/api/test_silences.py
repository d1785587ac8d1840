"""The native doors to spec §8 (`/v1/silences`, `/v1/heartbeats/{name}`) against a running
`streamproc api` and a real broker: what they write on the incidents topic, what they list, what
they refuse (and that a refusal writes nothing)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streamproc.api.publish import Publisher
from streamproc.api.server import build_app
from streamproc.config import load_config
from streamproc.localnet import free_port
from streamproc.wire.api import SilenceList, SilenceView
from streamproc.wire.events import Heartbeat, Silence, Unsilence, parse_any_event
from tests.harness import API_CONFIG as CONFIG
from tests.harness import ApiProcess, read_topic

KEY, AM_KEY = "grafana-key", "am-key"  # applications grafana and alertmanager of the harness CONFIG


def call(
    api: ApiProcess, method: str, path: str, body: Any = None, key: str | None = KEY, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        api.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hours(n: float) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(hours=n))


def records(api: ApiProcess) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Every record of the module's incidents topic (the API answered after Kafka had each)."""
    return read_topic(api.bootstrap, api.topics.incidents)


def snapshot(api: ApiProcess) -> list[tuple[bytes | None, str]]:
    """The topic's records, in an order that does not depend on how partitions interleave."""
    return sorted((k, json.dumps(v, sort_keys=True)) for k, v in records(api))


def of_silence(api: ApiProcess, silence_id: str) -> list[tuple[bytes | None, dict[str, Any]]]:
    return [(k, v) for k, v in records(api) if v.get("silence_id") == silence_id]


@pytest.mark.kafka
def test_a_silence_is_written_with_the_keys_application_and_listed(api: ApiProcess) -> None:
    silence_id = f"db-upgrade-{uuid.uuid4().hex[:6]}"
    starts, ends = hours(1), hours(3)
    body = {
        "silence_id": silence_id,
        "starts": starts,
        "ends": ends,
        "plans": ["db-critical"],
        "match": {"host": ["db01", "db02"], "severity": "critical"},
        "match_re": {"alertname": "Disk.*"},
        "created_by": "alice",
        "comment": "PostgreSQL 17 upgrade",
    }
    before = datetime.now(UTC)
    status, answer = call(api, "POST", "/v1/silences", body)
    assert status == 202, answer
    view = SilenceView.model_validate(answer)
    assert (view.silence_id, view.application, view.state) == (silence_id, "grafana", "pending")

    # On the topic before the answer: keyed by the silence, the key's application, `at` = receipt.
    [(key, value)] = of_silence(api, silence_id)
    assert key == f"silence:grafana:{silence_id}".encode()
    event = parse_any_event(json.dumps(value))
    assert isinstance(event, Silence)
    assert event.application == "grafana"
    assert event.at is not None and before - timedelta(seconds=1) <= event.at <= datetime.now(UTC)
    assert rfc3339(event.ends) == ends and event.starts is not None and rfc3339(event.starts) == starts
    assert event.match == body["match"] and event.match_re == body["match_re"]
    assert (event.plans, event.created_by, event.comment) == (["db-critical"], "alice", "PostgreSQL 17 upgrade")

    # Listed right after the write (GET reads the topic up to its end first), to its application only.
    status, listed = call(api, "GET", "/v1/silences")
    assert status == 200, listed
    [mine] = [s for s in SilenceList.model_validate(listed).silences if s.silence_id == silence_id]
    assert mine == view
    status, others = call(api, "GET", "/v1/silences", key=AM_KEY)
    assert status == 200 and silence_id not in json.dumps(others), others


@pytest.mark.kafka
def test_the_server_makes_an_id_and_the_same_id_replaces_the_silence(api: ApiProcess) -> None:
    status, answer = call(api, "POST", "/v1/silences", {"ends": hours(1), "match": {"host": "web01"}})
    assert status == 202, answer
    silence_id = answer["silence_id"]
    assert str(uuid.UUID(silence_id)) == silence_id
    assert answer["state"] == "active"  # starts defaults to now

    status, again = call(
        api, "POST", "/v1/silences", {"silence_id": silence_id, "ends": hours(2), "match": {"host": "web02"}}
    )
    assert status == 202, again
    status, listed = call(api, "GET", "/v1/silences")
    mine = [s for s in listed["silences"] if s["silence_id"] == silence_id]
    assert [(s["match"], s["ends"]) for s in mine] == [({"host": "web02"}, again["ends"])]
    assert [v["type"] for _, v in of_silence(api, silence_id)] == ["silence", "silence"]


@pytest.mark.kafka
def test_delete_writes_an_unsilence_and_the_silence_is_no_longer_listed(api: ApiProcess) -> None:
    status, made = call(api, "POST", "/v1/silences", {"ends": hours(2), "match_re": {"host": "db.*"}})
    assert status == 202, made
    silence_id = made["silence_id"]

    status, ended = call(api, "DELETE", f"/v1/silences/{silence_id}")
    assert status == 202, ended
    assert ended["state"] == "expired" and ended["ends"] == ended["updated_at"]
    (_, first), (key, value) = of_silence(api, silence_id)  # one key, one partition: in order
    assert first["type"] == "silence"
    assert key == f"silence:grafana:{silence_id}".encode()
    event = parse_any_event(json.dumps(value))
    assert isinstance(event, Unsilence) and event.application == "grafana" and event.at is not None
    assert rfc3339(event.at) == ended["ends"]
    status, listed = call(api, "GET", "/v1/silences")
    assert silence_id not in [s["silence_id"] for s in listed["silences"]]

    # A pending silence ended before it starts covers nothing: gone from the list too.
    status, pending = call(api, "POST", "/v1/silences", {"starts": hours(1), "ends": hours(2)})
    assert call(api, "DELETE", f"/v1/silences/{pending['silence_id']}")[0] == 202
    status, listed = call(api, "GET", "/v1/silences")
    assert pending["silence_id"] not in [s["silence_id"] for s in listed["silences"]]


@pytest.mark.kafka
def test_a_heartbeat_is_written_for_the_monitors_incident(api: ApiProcess) -> None:
    status, answer = call(api, "POST", "/v1/heartbeats/nightly-backup")
    assert status == 202, answer
    assert answer == {"accepted": 1, "incident_ids": ["heartbeat-nightly-backup"]}
    key, value = [(k, v) for k, v in records(api) if v.get("type") == "heartbeat"][-1]
    assert key == b"heartbeat-nightly-backup"
    event = parse_any_event(json.dumps(value))
    assert isinstance(event, Heartbeat)
    assert (event.heartbeat, event.application) == ("nightly-backup", "grafana") and event.at is not None


def _silence(**fields: Any) -> dict[str, Any]:
    return {"ends": hours(1), **fields}


REFUSALS = [
    # (method, path, body, key, status, the error starts with)
    ("POST", "/v1/silences", _silence(starts=hours(2)), KEY, 400, "ends: Value error, must be after starts"),
    ("POST", "/v1/silences", _silence(ends=hours(-1)), KEY, 400, "ends: Value error, must be after starts"),
    (
        "POST",
        "/v1/silences",
        _silence(starts=hours(1), ends=hours(1 + 24 * 30 + 0.01)),
        KEY,
        400,
        "ends: Value error, must be at most 30 days after starts",
    ),
    (
        "POST",
        "/v1/silences",
        _silence(match_re={"host": "db(01"}),
        KEY,
        400,
        "match_re.host: Value error, not a valid regular expression",
    ),
    (
        "POST",
        "/v1/silences",
        _silence(match_re={"host": r"(db)\1"}),
        KEY,
        400,
        "match_re.host: Value error, not RE2-compatible: backreferences",
    ),
    (
        "POST",
        "/v1/silences",
        _silence(match_re={"host": "(?=db)db01"}),
        KEY,
        400,
        "match_re.host: Value error, not RE2-compatible: lookahead",
    ),
    ("POST", "/v1/silences", _silence(match={"port": 5432}), KEY, 400, "match.port"),
    (
        "POST",
        "/v1/silences",
        _silence(matches={"host": "db01"}),
        KEY,
        400,
        "matches: Extra inputs are not permitted",
    ),  # a typo must not silence the whole application
    ("POST", "/v1/silences", {"match": {"host": "db01"}}, KEY, 400, "ends: Field required"),
    (
        "POST",
        "/v1/silences",
        _silence(application="alertmanager"),
        KEY,
        403,
        "application: the key is application 'grafana', not 'alertmanager'",
    ),
    (
        "POST",
        "/v1/silences",
        _silence(application="nope"),
        KEY,
        403,
        "application: the key is application 'grafana', not 'nope'",
    ),
    ("POST", "/v1/silences", _silence(), "not-a-key", 401, "Authorization: unknown application key"),
    ("POST", "/v1/silences", [_silence()], KEY, 400, "body: a JSON object is expected"),
    (
        "DELETE",
        "/v1/silences/no-such-silence",
        None,
        KEY,
        404,
        "silence_id: application 'grafana' has no silence 'no-such-silence'",
    ),
    ("POST", "/v1/heartbeats/no-such-monitor", None, KEY, 404, "heartbeat: unknown monitor 'no-such-monitor'"),
    (
        "POST",
        "/v1/heartbeats/am-pipeline",
        None,
        KEY,
        403,
        "heartbeat: monitor 'am-pipeline' belongs to another application, not to 'grafana'",
    ),
    ("POST", "/v1/heartbeats/nightly-backup", None, None, 401, "Authorization: missing"),
]


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("method", "path", "body", "key", "status", "error"), REFUSALS, ids=[f"{r[0]} {r[1]} {r[5][:40]}" for r in REFUSALS]
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    api: ApiProcess, method: str, path: str, body: Any, key: str | None, status: int, error: str
) -> None:
    before = snapshot(api)
    got, answer = call(api, method, path, body, key)
    assert got == status, answer
    assert answer["error"].startswith(error), answer
    assert snapshot(api) == before


@pytest.mark.kafka
def test_another_applications_silence_cannot_be_ended(api: ApiProcess) -> None:
    status, made = call(api, "POST", "/v1/silences", _silence(), key=AM_KEY)
    assert status == 202, made
    before = snapshot(api)
    status, answer = call(api, "DELETE", f"/v1/silences/{made['silence_id']}")  # grafana's key
    assert status == 404 and answer["error"].startswith("silence_id: application 'grafana' has no silence"), answer
    assert snapshot(api) == before


async def test_without_kafka_every_door_is_503_never_2xx(tmp_path: Path) -> None:
    """Nothing listens on the bootstrap port: writes time out (the produce timeout, 1 s here) and reads
    cannot see the topic's end; no answer is 2xx. (The application in-process, on aiohttp's test server.)"""
    (tmp_path / "config.yaml").write_text(CONFIG)
    publisher = Publisher(f"127.0.0.1:{free_port()}", 1.0)
    app = build_app(load_config(str(tmp_path / "config.yaml")), publisher)
    async with TestClient(TestServer(app)) as client:
        for method, path, body in [
            ("POST", "/v1/silences", _silence()),
            ("GET", "/v1/silences", None),
            ("DELETE", "/v1/silences/x", None),
            ("POST", "/v1/heartbeats/nightly-backup", None),
        ]:
            resp = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {KEY}"})
            answer = await resp.json()
            assert resp.status == 503, (method, path, answer)
            assert answer["error"].startswith("kafka unavailable:"), answer
            assert resp.headers["Retry-After"] == "5"
