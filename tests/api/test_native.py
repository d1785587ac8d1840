"""`POST /v1/events` and the routes around it, against a running `streamproc api` and a real broker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from streamproc.wire.events import derive_incident_id, parse_event
from tests.harness import ApiProcess, read_topic

pytestmark = pytest.mark.kafka
KEY = "grafana-key"


def post(
    api: ApiProcess,
    path: str,
    body: Any,
    key: str | None = KEY,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        api.url + path, data=data, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def get(api: ApiProcess, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(api.url + path, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def trigger(incident_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "trigger",
        "incident_id": incident_id,
        "plan": "db-critical",
        "context": {"summary": "disk full"},
        **extra,
    }


def wait_for(api: ApiProcess, marker: str, count: int) -> list[dict[str, Any]]:
    records = [
        v
        for _, v in read_topic(api.bootstrap, api.topics.incidents)
        if str(v.get("incident_id", "")).startswith(marker)
    ]
    assert len(records) >= count, records
    return records


def test_one_event_is_on_the_topic_when_answered(api: ApiProcess) -> None:
    marker = f"n1-{uuid.uuid4().hex[:6]}"
    status, body, _ = post(api, "/v1/events", trigger(marker))
    assert status == 202, body
    assert body == {"accepted": 1, "incident_ids": [marker]}
    # Answered only after the broker acknowledged: the record is readable right away.
    found = [(k, v) for k, v in read_topic(api.bootstrap, api.topics.incidents) if v.get("incident_id") == marker]
    assert len(found) == 1
    key, value = found[0]
    assert key == marker.encode()
    event = parse_event(json.dumps(value))
    assert event.application == "grafana"  # the key's application fills it in
    assert event.at is not None  # the time of receipt


def test_a_batch_keeps_its_order_and_derives_dedup_ids(api: ApiProcess) -> None:
    dedup = f"disk-{uuid.uuid4().hex}"
    batch = [
        {"type": "trigger", "dedup_key": dedup, "plan": "db-critical", "event_id": "e1"},
        {"type": "claim", "dedup_key": dedup, "owner": "alice", "event_id": "e2"},
        {"type": "resolve", "dedup_key": dedup, "event_id": "e3"},
    ]
    status, body, _ = post(api, "/v1/events", batch)
    expected = derive_incident_id("grafana", dedup)
    assert status == 202, body
    assert body["incident_ids"] == [expected] * 3
    records = wait_for(api, expected, 3)
    assert [r["type"] for r in records] == ["trigger", "claim", "resolve"]
    assert [r["event_id"] for r in records] == ["e1", "e2", "e3"]


def test_nothing_of_an_invalid_batch_is_written(api: ApiProcess) -> None:
    marker = f"bad-{uuid.uuid4().hex[:6]}"
    batch = [trigger(f"{marker}-a"), {"type": "trigger", "incident_id": f"{marker}-b"}, trigger(f"{marker}-c")]
    status, body, _ = post(api, "/v1/events", batch)
    assert status == 400
    assert body["error"] == "[1].plan: Field required"
    status, body, _ = post(api, "/v1/events", [trigger(f"{marker}-d"), trigger(f"{marker}-e", plan="nope")])
    assert status == 404
    assert body["error"] == "[1].plan: unknown plan 'nope'"
    status, body, _ = post(api, "/v1/events", trigger(f"{marker}-f", plan="dyn"))
    assert status == 400 and body["error"].startswith("dynamic_targets:")
    # A valid event afterwards is on the topic; none of the refused ones are.
    assert post(api, "/v1/events", trigger(f"{marker}-ok"))[0] == 202
    records = wait_for(api, marker, 1)
    assert [r["incident_id"] for r in records] == [f"{marker}-ok"]


@pytest.mark.parametrize(
    ("body", "key", "status", "error"),
    [
        (trigger("x"), None, 401, "Authorization: missing"),
        (trigger("x"), "wrong", 401, "Authorization: unknown application key"),
        (trigger("x", application="alertmanager"), KEY, 403, "application: the key is application 'grafana'"),
        ({"type": "page", "incident_id": "x"}, KEY, 400, "type: Input tag 'page'"),
        ({"type": "trigger", "incident_id": "x", "plan": "db-critical", "at": "yesterday"}, KEY, 400, "at: "),
        ([], KEY, 400, "body: an empty array"),
    ],
)
def test_refusals_name_the_problem(api: ApiProcess, body: Any, key: str | None, status: int, error: str) -> None:
    got, answer, _ = post(api, "/v1/events", body, key)
    assert got == status, answer
    assert answer["error"].startswith(error), answer


def test_secondary_key_works_and_garbage_is_400(api: ApiProcess) -> None:
    assert post(api, "/v1/events", trigger(f"k2-{uuid.uuid4().hex[:6]}"), key="grafana-key-2")[0] == 202
    status, body, _ = post(api, "/v1/events", None, raw=b"{not json")
    assert status == 400 and body["error"].startswith("body: not JSON")
    status, body, _ = post(api, "/v1/events", None, raw=b"x" * 5000)
    assert status == 413 and body["error"] == "body: larger than 4096 bytes"


def test_rate_limit_per_application(api: ApiProcess) -> None:
    marker = f"rl-{uuid.uuid4().hex[:6]}"
    answers = [
        post(api, "/v1/events", {"type": "claim", "incident_id": f"{marker}-{i}"}, key="slow-key") for i in range(4)
    ]
    statuses = [a[0] for a in answers]
    assert statuses[:2] == [202, 202]  # burst 2
    assert 429 in statuses[2:]
    refused = next(a for a in answers if a[0] == 429)
    assert int(refused[2]["Retry-After"]) >= 1
    # Another application is not slowed down by this one.
    assert post(api, "/v1/events", {"type": "claim", "incident_id": f"{marker}-other"})[0] == 202


def test_health_ready_openapi_metrics(api: ApiProcess) -> None:
    assert get(api, "/healthz") == (200, b'{"ok": true}')
    status, ready = get(api, "/ready")
    assert status == 200 and json.loads(ready)["ready"] is True
    status, doc = get(api, "/openapi.json")
    spec = json.loads(doc)
    assert status == 200 and spec["openapi"].startswith("3.")
    assert "trigger" in json.dumps(spec["components"]["schemas"]["Event"])
    assert set(spec["paths"]["/v1/events"]["post"]["responses"]) >= {"202", "400", "401", "413", "429", "503"}
    post(api, "/v1/events", trigger("m"), key="wrong")
    status, metrics = get(api, "/metrics")
    text = metrics.decode()
    assert status == 200
    assert 'streamproc_api_requests_total{method="POST",route="/v1/events",status="401"}' in text
    assert "streamproc_api_accept_latency_seconds_bucket" in text
