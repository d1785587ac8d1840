"""Issue 22: the status topic's readers in the API: `/v1/incidents`, Iris's `GET /v0/incidents/{id}`
(PyPI's irisclient) and the `/ui` page's access rules, against summaries written to the topic."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from irisclient import IrisClient

from streamproc.kafka.clients import producer_config
from streamproc.wire.status import IncidentSummary
from tests.harness import API_CONFIG as CONFIG
from tests.harness import ApiProcess

pytestmark = pytest.mark.kafka
UI_TOKEN = "ui-token-0123456789abcdef"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
UI_CONFIG = (
    CONFIG.replace(
        "  db: {members: [alice, bob]}",
        "  db: {members: [alice, bob], manager: bob, rotations: {primary: {users: [alice, bob], "
        "start: '2026-01-01T00:00:00Z', shift: 1d}}}",
    )
    + f'  ui_token: "{UI_TOKEN}"\n'
)


def summary(
    incident_id: str, status: str = "escalating", application: str = "grafana", minutes: int = 0, **fields: Any
) -> IncidentSummary:
    return IncidentSummary(
        incident_id=incident_id,
        instance=1,
        status=status,
        plan="db-critical",  # type: ignore[arg-type]
        application=application,
        step=1,
        steps=1,
        created=T0 + timedelta(minutes=minutes),
        updated=T0,
        last_paged=["alice"],
        last_paged_at=T0,
        summary=f"disk full {incident_id}",
        **fields,
    )


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    proc = ApiProcess(kafka_bootstrap, Path(tmp_path_factory.mktemp("api")), config=UI_CONFIG).start()
    producer = Producer(producer_config(kafka_bootstrap))
    records: list[tuple[str, bytes | None]] = [
        ("g-open", summary("g-open", minutes=3).model_dump_json().encode()),
        (
            "g-claimed",
            summary("g-claimed", "claimed", minutes=2, claimed_by="bob", claimed_at=T0).model_dump_json().encode(),
        ),
        ("g-resolved", summary("g-resolved", "resolved", minutes=1, resolved_at=T0).model_dump_json().encode()),
        ("g-gone", summary("g-gone", minutes=4).model_dump_json().encode()),
        ("g-gone", None),  # its tombstone
        ("am-open", summary("am-open", application="alertmanager").model_dump_json().encode()),
        ("12345", summary("12345", "claimed", claimed_by="alice").model_dump_json().encode()),
    ]
    for key, value in records:
        producer.produce(proc.topics.status, key=key.encode(), value=value)
    assert producer.flush(30) == 0
    try:
        yield proc
    finally:
        proc.stop()


def get(
    api: ApiProcess,
    path: str,
    headers: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(api.url + path, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def listed(api: ApiProcess, key: str, query: str = "") -> dict[str, Any]:
    status, _, body = get(api, f"/v1/incidents{query}", {"Authorization": f"Bearer {key}"})
    assert status == 200, body
    return dict(json.loads(body))


def test_the_list_holds_the_keys_application_open_ones_by_default(api: ApiProcess) -> None:
    answer = listed(api, "grafana-key")
    assert [i["incident_id"] for i in answer["incidents"]] == ["g-open", "g-claimed", "12345"]  # newest first
    assert answer["total"] == 3 and answer["next"] is None
    assert answer["incidents"][1]["claimed_by"] == "bob"
    assert [i["incident_id"] for i in listed(api, "am-key")["incidents"]] == ["am-open"]
    everything = listed(api, "grafana-key", "?status=all")["incidents"]
    assert {i["incident_id"] for i in everything} == {"g-open", "g-claimed", "g-resolved", "12345"}
    assert [i["incident_id"] for i in listed(api, "grafana-key", "?status=claimed&owner=bob")["incidents"]] == [
        "g-claimed"
    ]


def test_pages_follow_the_next_link(api: ApiProcess) -> None:
    first = listed(api, "grafana-key", "?limit=2")
    assert [i["incident_id"] for i in first["incidents"]] == ["g-open", "g-claimed"] and first["total"] == 3
    assert first["next"] is not None
    second = listed(api, "grafana-key", first["next"][len("/v1/incidents") :])
    assert [i["incident_id"] for i in second["incidents"]] == ["12345"] and second["next"] is None


def test_one_incident_and_another_applications_is_not_found(api: ApiProcess) -> None:
    status, _, body = get(api, "/v1/incidents/g-claimed", {"Authorization": "Bearer grafana-key"})
    assert status == 200 and json.loads(body)["status"] == "claimed"
    status, _, _ = get(api, "/v1/incidents/am-open", {"Authorization": "Bearer grafana-key"})
    assert status == 404
    status, _, _ = get(api, "/v1/incidents/g-gone", {"Authorization": "Bearer grafana-key"})
    assert status == 404  # tombstoned


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ("", {}, 401),
        ("", {"Authorization": "Bearer nope"}, 401),
        ("?status=nope", {"Authorization": "Bearer grafana-key"}, 400),
        ("?limit=0", {"Authorization": "Bearer grafana-key"}, 400),
    ],
)
def test_bad_requests(api: ApiProcess, query: str, headers: dict[str, str], expected: int) -> None:
    assert get(api, f"/v1/incidents{query}", headers)[0] == expected


def test_irisclient_reads_an_incident(api: ApiProcess) -> None:
    client = IrisClient("grafana", "grafana-key", api.url)
    answer = client.get(client.url + "incidents/12345")
    assert answer.status_code == 200, answer.text
    incident = answer.json()
    assert incident["id"] == 12345 and incident["owner"] == "alice" and incident["active"] is False
    assert incident["plan"] == "db-critical" and incident["context"] == {"summary": "disk full 12345"}
    assert client.get(client.url + "incidents/am-open").status_code == 404
    other = IrisClient("alertmanager", "am-key", api.url)
    assert other.get(other.url + "incidents/12345").status_code == 404


def test_the_status_page_is_refused_without_the_token(api: ApiProcess) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer grafana-key"},
        {"Authorization": "Basic " + base64.b64encode(b"x:wrong").decode()},
    ):
        status, answer_headers, body = get(api, "/ui", headers)
        assert status == 401 and answer_headers["WWW-Authenticate"].startswith("Basic"), body
        assert b"g-open" not in body
    assert get(api, "/ui?token=wrong")[0] == 401
    assert get(api, "/ui/open")[0] == 401
    assert get(api, "/ui/incidents/g-open")[0] == 401


def test_the_status_page_with_the_token(api: ApiProcess) -> None:
    jar = CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, _, body = get(api, f"/ui?token={UI_TOKEN}", opener=browser)  # redirected, cookie set
    assert status == 200 and [c.name for c in jar] == ["streamproc_ui"]
    assert UI_TOKEN not in {c.value for c in jar}
    page = body.decode()
    for open_one in ("g-open", "g-claimed", "am-open", "12345"):
        assert f'data-incident="{open_one}"' in page
    assert 'data-incident="g-resolved"' not in page and "g-gone" not in page
    assert "+1555" not in page and "@example.com" not in page  # no contact details
    assert "<script src=" not in page and "http" not in page.split("<body>")[1].replace(api.url, "")
    # who is on call now: the primary rotation's holder today, and the manager
    day = (datetime.now(UTC) - datetime(2026, 1, 1, tzinfo=UTC)).days
    assert f"<td>db</td><td>oncall</td><td>{['alice', 'bob'][day % 2]}</td>" in page
    assert "<td>db</td><td>manager</td><td>bob</td>" in page
    version = page.split('data-version="')[1].split('"')[0]
    assert get(api, f"/ui/open?v={version}", opener=browser)[0] == 204
    status, _, fragment = get(api, "/ui/open?v=-1", opener=browser)
    assert status == 200 and b'data-incident="g-open"' in fragment
    basic = "Basic " + base64.b64encode(f"anyone:{UI_TOKEN}".encode()).decode()
    assert get(api, "/ui", {"Authorization": basic})[0] == 200
    assert get(api, "/ui", {"Authorization": f"Bearer {UI_TOKEN}"})[0] == 200
    status, _, body = get(api, "/ui/incidents/g-claimed", opener=browser)
    assert status == 200 and b"claimed" in body and b"bob" in body
