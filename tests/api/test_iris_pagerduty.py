"""The Iris and PagerDuty doors, driven by the real clients: PyPI's `irisclient` and `pagerduty`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pagerduty
import pytest
import requests
from irisclient import IrisClient

from streamproc.api.auth import iris_digest
from streamproc.wire.events import derive_incident_id
from tests.harness import ApiProcess, read_topic

pytestmark = pytest.mark.kafka
ROUTING_KEY = "R0UTINGKEY0000000000000000000001"


def events_of(api: ApiProcess, incident_id: str) -> list[dict[str, Any]]:
    return [v for _, v in read_topic(api.bootstrap, api.topics.incidents) if v.get("incident_id") == incident_id]


# ------------------------------------------------------------------------------------------ Iris
def test_irisclient_creates_claims_and_resolves(api: ApiProcess) -> None:
    client = IrisClient("grafana", "grafana-key", api.url)
    summary = f"disk {uuid.uuid4().hex[:6]}"
    incident = client.incident("db-critical", context={"summary": summary, "host": "db01"})
    assert isinstance(incident, int) and 0 < incident < 2**53  # Iris ids are integers
    second = client.incident("db-critical", context={"summary": summary})
    assert second != incident  # each trigger is a new incident, as in Iris

    claimed = client.post(client.url + f"incidents/{incident}", json={"owner": "alice"})
    assert claimed.status_code == 200 and claimed.json()["owner"] == "alice"
    unclaimed = client.post(client.url + f"incidents/{incident}", json={"owner": None})
    assert unclaimed.status_code == 200
    resolved = client.post(client.url + f"incidents/{incident}/resolve")
    assert resolved.status_code == 200 and resolved.json() == {"incident_id": incident, "active": False}

    events = events_of(api, str(incident))
    assert [e["type"] for e in events] == ["trigger", "claim", "unclaim", "resolve"]
    assert events[0]["application"] == "grafana" and events[0]["context"]["summary"] == summary
    assert events[1]["owner"] == "alice"


def test_iris_secondary_key_and_dynamic_targets(api: ApiProcess) -> None:
    client = IrisClient("grafana", "grafana-key-2", api.url)
    incident = client.incident("dyn", {"summary": "x"}, dynamic_targets=[{"role": "team", "target": "db"}])
    assert events_of(api, str(incident))[0]["dynamic_targets"] == [{"role": "team", "target": "db"}]
    with pytest.raises(requests.HTTPError) as refused:
        client.incident("dyn", {"summary": "x"})  # the plan needs dynamic target 0
    assert refused.value.response.status_code == 400
    with pytest.raises(requests.HTTPError) as unknown:
        client.incident("no-such-plan", {"summary": "x"})
    assert unknown.value.response.status_code == 404


def test_iris_wrong_key_and_unknown_application_are_refused(api: ApiProcess) -> None:
    before = len(read_topic(api.bootstrap, api.topics.incidents))
    with pytest.raises(requests.HTTPError) as wrong:
        IrisClient("grafana", "not-the-key", api.url).incident("db-critical", {"summary": "x"})
    assert wrong.value.response.status_code == 401
    # irisclient lists the applications it could have used (GET /v0/applications).
    with pytest.raises(ValueError, match=r'"nagios" not in list of available applications: .*grafana'):
        IrisClient("nagios", "whatever", api.url).incident("db-critical", {"summary": "x"})
    assert len(read_topic(api.bootstrap, api.topics.incidents)) == before


def _signed_post(api: ApiProcess, window: int, key: str = "grafana-key") -> requests.Response:
    body = json.dumps({"plan": "db-critical", "context": {"summary": "hand-signed"}}).encode()
    digest = iris_digest(key, window, "POST", "/v0/incidents", body)
    return requests.post(
        api.url + "/v0/incidents",
        data=body,
        timeout=10,
        headers={"Authorization": "hmac grafana:" + digest.decode(), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("window", "accepted"),
    [
        (lambda now: now // 5, True),
        (lambda now: now // 5 - 1, True),  # the previous 5 s window
        (lambda now: now // 30, True),  # Iris's 30 s windows
        (lambda now: now // 30 - 1, True),
        (lambda now: now // 5 - 3, False),  # 10-15 s old, outside both kinds of window
        (lambda now: now // 30 - 3, False),
    ],
)
def test_iris_hmac_windows(api: ApiProcess, window: Any, accepted: bool) -> None:
    now = int(time.time())
    if accepted and now % 5 == 4 and window(now) == now // 5 - 1:
        time.sleep(1.1)  # the previous window must still be the previous one when the server checks
        now = int(time.time())
    response = _signed_post(api, window(now))
    assert response.status_code == (201 if accepted else 401), response.text


# ------------------------------------------------------------------------------------- PagerDuty
@pytest.fixture(scope="module")
def api_tls(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """The pagerduty client only speaks https: the API serves TLS (api.tls_cert_file)."""
    proc = ApiProcess(kafka_bootstrap, Path(tmp_path_factory.mktemp("api-tls")), tls=True).start()
    try:
        yield proc
    finally:
        proc.stop()


def pd_client(api: ApiProcess, routing_key: str = ROUTING_KEY) -> pagerduty.EventsApiV2Client:
    return pagerduty.EventsApiV2Client(routing_key, base_url=api.url, verify=api.ssl_context)


def test_pagerduty_client_trigger_acknowledge_resolve(api_tls: ApiProcess) -> None:
    api = api_tls
    client = pd_client(api)
    dedup = f"pd-{uuid.uuid4().hex[:8]}"
    returned = client.trigger("CPU on fire", "web01", dedup_key=dedup, severity="error", custom_details={"cpu": 99})
    assert returned == dedup
    assert client.acknowledge(dedup) == dedup
    assert client.resolve(dedup) == dedup
    generated = client.trigger("no dedup key given", "web02")
    assert generated and generated != dedup

    events = events_of(api, derive_incident_id("grafana", dedup))
    assert [e["type"] for e in events] == ["trigger", "acknowledge", "resolve"]
    trigger = events[0]
    assert trigger["plan"] == "db-critical" and trigger["application"] == "grafana"
    assert trigger["context"]["summary"] == "CPU on fire"
    assert trigger["context"]["severity"] == "error" and trigger["context"]["priority"] == "high"
    assert trigger["context"]["custom_details"] == {"cpu": 99}
    assert len(events_of(api, derive_incident_id("grafana", generated))) == 1


def test_pagerduty_errors_answer_like_pagerduty(api_tls: ApiProcess) -> None:
    api = api_tls
    client = pd_client(api, "unknown-routing-key")
    with pytest.raises(pagerduty.Error) as refused:
        client.trigger("x", "y")
    response = refused.value.response
    assert response is not None and response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["routing_key: unknown routing key"],
    }
    bad = requests.post(
        api.url + "/v2/enqueue",
        timeout=10,
        verify=api.ca_file,
        json={
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "payload": {"summary": "x", "source": "y", "severity": "fatal"},
        },
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0].startswith("payload.severity:")
    ack = requests.post(
        api.url + "/v2/enqueue",
        timeout=10,
        verify=api.ca_file,
        json={"routing_key": ROUTING_KEY, "event_action": "acknowledge"},
    )
    assert ack.status_code == 400 and ack.json()["errors"] == ["dedup_key: required for acknowledge and resolve"]


def test_pagerduty_rate_limit_answers_429(api_tls: ApiProcess) -> None:
    event = {"routing_key": "SLOWROUTINGKEY", "event_action": "resolve", "dedup_key": "d"}
    answers = [
        requests.post(api_tls.url + "/v2/enqueue", json=event, timeout=10, verify=api_tls.ca_file) for _ in range(3)
    ]
    assert [a.status_code for a in answers[:2]] == [202, 202]
    assert answers[2].status_code == 429 and int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].json()["status"] == "throttle event"
