"""`POST /v1/integrations/alertmanager`: Alertmanager's webhook, from plain HTTP and from the real thing.

The translation tests post Alertmanager's payloads (as captured from Alertmanager 0.25) to the
module's `streamproc api`. The `slow` tests run Debian's `prometheus-alertmanager` (fetched by
tools/debian/fetch.sh into .cache, nothing installed) with a webhook receiver pointing at that API,
post alerts to Alertmanager's own API and read what reached the incidents topic.

Debian's build reads its default notification templates from /usr/share/prometheus/alertmanager
(they are not embedded, and it exits without them), so it runs in a private mount namespace
(`unshare --mount`) in which the unpacked package's usr/share is mounted on /usr/share.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streamproc.localnet import free_port, terminate
from streamproc.wire.events import derive_incident_id
from tests.harness import ApiProcess, read, wait_until
from tests.harness.topics import json_values

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
APP, KEY = "alertmanager", "am-key"  # in the harness CONFIG
PATH = "/v1/integrations/alertmanager"
BASIC = "Basic " + base64.b64encode(f"{APP}:{KEY}".encode()).decode()
BEARER = f"Bearer {KEY}"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: Alertmanager's endsAt of a firing alert


# ---- plain HTTP and the topic ------------------------------------------------------------------


def http(
    method: str, url: str, body: Any = None, authorization: str | None = None, timeout: float = 15.0
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def notify(
    api: ApiProcess, payload: Any, query: str = "?plan=db-critical", authorization: str | None = BEARER
) -> tuple[int, Any]:
    return http("POST", api.url + PATH + query, payload, authorization)


def wait_for_records(
    api: ApiProcess, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Every record of the API's incidents topic (per partition in offset order), read from the
    beginning until `done(records)` holds; fails after `timeout` seconds."""
    return read(api.bootstrap, api.topics.incidents, done, convert=json_values, timeout=timeout)


def of(records: list[dict[str, Any]], incident_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("incident_id") == incident_id]


def until_resolved(api: ApiProcess, incident_id: str) -> list[dict[str, Any]]:
    """The records of `incident_id` up to the first resolve."""
    records = of(
        wait_for_records(api, lambda rs: any(r["type"] == "resolve" for r in of(rs, incident_id))), incident_id
    )
    return records[: [r["type"] for r in records].index("resolve") + 1]


def assert_nothing_written_for(api: ApiProcess, incident_ids: list[str]) -> None:
    """Writes a marker through the API, reads up to it, and checks no record of `incident_ids` is there.
    (Refused requests are answered before anything is written, and the marker is written after.)"""
    marker = alert({"alertname": "Marker", "marker": uuid.uuid4().hex})
    status, body = notify(api, webhook([marker]))
    assert status == 202, body
    marker_id = body["incident_ids"][0]
    records = wait_for_records(api, lambda rs: bool(of(rs, marker_id)))
    written = [r for r in records if r.get("incident_id") in incident_ids]
    assert not written, written


# ---- Alertmanager's payloads -------------------------------------------------------------------


def alert(
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    status: str = "firing",
    fingerprint: str | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": labels,
        "annotations": annotations or {},
        "startsAt": "2026-03-01T10:00:00.078222389Z",
        "endsAt": ZERO_TIME if status == "firing" else "2026-03-01T10:05:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
        "fingerprint": fingerprint or uuid.uuid4().hex[:16],
    }


def webhook(alerts: list[dict[str, Any]], status: str | None = None, group_key: str | None = None) -> dict[str, Any]:
    if status is None:
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    common = (
        dict(alerts[0]["labels"])
        if len({json.dumps(a["labels"]) for a in alerts}) == 1
        else {k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)}
    )
    name = alerts[0]["labels"].get("alertname", "")
    return {
        "receiver": "streamproc",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": name},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": group_key or f'{{}}:{{alertname="{name}", run="{uuid.uuid4().hex}"}}',
        "truncatedAlerts": 0,
    }


# ---- translation, through the running API --------------------------------------------------------


def test_each_alert_is_an_incident_named_by_its_fingerprint(api: ApiProcess) -> None:
    firing = alert(
        {"alertname": "DiskFull", "instance": "db01:9100", "severity": "critical", "status": "label"},
        {"summary": "disk full on db01", "runbook": "https://runbooks.example/disk"},
    )
    resolved = alert({"alertname": "DiskFull", "instance": "db02:9100", "severity": "critical"}, status="resolved")
    status, body = notify(api, webhook([firing, resolved]))
    ids = [derive_incident_id(APP, firing["fingerprint"]), derive_incident_id(APP, resolved["fingerprint"])]
    assert status == 202, body
    assert body == {"accepted": 2, "incident_ids": ids}

    records = wait_for_records(api, lambda rs: bool(of(rs, ids[0]) and of(rs, ids[1])))
    [trigger], [resolve] = of(records, ids[0]), of(records, ids[1])
    assert trigger["type"] == "trigger"
    assert (trigger["application"], trigger["plan"], trigger["dedup_key"]) == (
        APP,
        "db-critical",
        firing["fingerprint"],
    )
    context = trigger["context"]
    assert context["summary"] == "disk full on db01"
    assert (context["alertname"], context["instance"], context["runbook"]) == (
        "DiskFull",
        "db01:9100",
        "https://runbooks.example/disk",
    )  # labels and annotations at the top
    assert context["status"] == "firing"  # the alert's status wins over a label named `status` ...
    assert context["labels"] == firing["labels"]  # ... which stays here
    assert context["annotations"] == firing["annotations"]
    assert context["startsAt"] == "2026-03-01T10:00:00.078222Z"
    assert "endsAt" not in context  # Go's zero time: not known
    assert context["generatorURL"] == firing["generatorURL"]
    assert context["fingerprint"] == firing["fingerprint"]
    assert context["externalURL"] == "http://alertmanager.example:9093"
    assert context["receiver"] == "streamproc"
    assert context["groupLabels"] == {"alertname": "DiskFull"}
    assert resolve["type"] == "resolve"
    assert (resolve["application"], resolve["dedup_key"]) == (APP, resolved["fingerprint"])
    assert "plan" not in resolve


def test_summary_falls_back_to_the_alert_name(api: ApiProcess) -> None:
    bare = alert({"alertname": "NodeDown", "instance": "web03"})
    status, body = notify(api, webhook([bare]), authorization=BASIC)  # Alertmanager's basic_auth
    assert status == 202, body
    [incident_id] = body["incident_ids"]
    [trigger] = of(wait_for_records(api, lambda rs: bool(of(rs, incident_id))), incident_id)
    assert trigger["context"]["summary"] == "NodeDown"
    assert trigger["context"]["annotations"] == {}


def test_group_true_is_one_incident_per_group_key(api: ApiProcess) -> None:
    labels = {"alertname": "DiskFull", "severity": "critical", "cluster": "eu1"}
    alerts = [alert({**labels, "instance": f"db0{i}"}, {"summary": f"disk full on db0{i}"}) for i in (1, 2)]
    payload = webhook(alerts)
    payload["commonAnnotations"] = {"runbook": "https://runbooks.example/disk"}
    group_key = payload["groupKey"]
    incident_id = derive_incident_id(APP, group_key)

    status, body = notify(api, payload, "?plan=db-critical&group=true")
    assert status == 202, body
    assert body == {"accepted": 1, "incident_ids": [incident_id]}

    # The group resolves once all its alerts are resolved; a notification still firing re-triggers.
    resolved = webhook(
        [{**a, "status": "resolved", "endsAt": "2026-03-01T10:05:00Z"} for a in alerts], group_key=group_key
    )
    status, body = notify(api, resolved, "?plan=db-critical&group=true")
    assert status == 202, body
    assert body == {"accepted": 1, "incident_ids": [incident_id]}

    records = of(wait_for_records(api, lambda rs: len(of(rs, incident_id)) >= 2), incident_id)
    assert [r["type"] for r in records] == ["trigger", "resolve"]
    trigger = records[0]
    assert trigger["dedup_key"] == group_key
    context = trigger["context"]
    assert context["summary"] == "DiskFull: 2 alerts firing"
    assert (context["firing"], context["resolved"], context["status"]) == (2, 0, "firing")
    assert context["cluster"] == "eu1" and context["runbook"] == "https://runbooks.example/disk"
    assert context["commonLabels"] == context["labels"] == {**labels}
    assert [a["fingerprint"] for a in context["alerts"]] == [a["fingerprint"] for a in alerts]
    assert context["alerts"][1]["labels"]["instance"] == "db02"
    assert context["groupKey"] == group_key


def test_plan_is_required_known_and_without_dynamic_targets(api: ApiProcess) -> None:
    payload = webhook([alert({"alertname": "DiskFull"})])
    incident_id = derive_incident_id(APP, payload["alerts"][0]["fingerprint"])
    status, body = notify(api, payload, "")
    assert status == 400 and body["error"].startswith("plan:"), body
    status, body = notify(api, payload, "?plan=")
    assert status == 400 and body["error"].startswith("plan:"), body
    status, body = notify(api, payload, "?plan=nope")
    assert status == 404 and body["error"] == "plan: unknown plan 'nope'", body
    status, body = notify(api, payload, "?plan=dyn")  # needs dynamic_targets, which alerts cannot give
    assert status == 400 and body["error"].startswith("plan: 'dyn'") and "dynamic" in body["error"], body
    status, body = notify(api, payload, "?plan=db-critical&group=maybe")
    assert status == 400 and body["error"].startswith("group:"), body
    assert_nothing_written_for(api, [incident_id])


def test_an_invalid_alert_refuses_the_whole_notification_naming_the_field(api: ApiProcess) -> None:
    good = alert({"alertname": "DiskFull", "instance": "db01"})
    bad = alert({"alertname": "DiskFull", "instance": "db02"})
    del bad["fingerprint"]
    status, body = notify(api, webhook([good, bad]))
    assert status == 400 and body["error"] == "alerts[1].fingerprint: Field required", body

    odd = alert({"alertname": "DiskFull"}, status="pending")
    status, body = notify(api, webhook([good, odd], status="firing"))
    assert status == 400 and body["error"].startswith("alerts[1].status:"), body

    numeric = alert({"alertname": "DiskFull"})
    numeric["labels"]["value"] = 3  # Alertmanager's label values are strings
    status, body = notify(api, webhook([good, numeric]))
    assert status == 400 and body["error"].startswith("alerts[1].labels.value:"), body

    status, body = notify(api, {**webhook([good]), "alerts": []})
    assert status == 400 and body["error"].startswith("alerts:"), body
    status, body = notify(api, [webhook([good])])
    assert status == 400 and body["error"].startswith("body:"), body

    no_key = webhook([good])
    del no_key["groupKey"]
    status, body = notify(api, no_key, "?plan=db-critical&group=true")
    assert status == 400 and body["error"].startswith("groupKey:"), body
    assert_nothing_written_for(api, [derive_incident_id(APP, good["fingerprint"])])


def test_a_wrong_key_is_refused_and_nothing_is_written(api: ApiProcess) -> None:
    payload = webhook([alert({"alertname": "DiskFull", "instance": "db01"})])
    incident_id = derive_incident_id(APP, payload["alerts"][0]["fingerprint"])
    wrong_basic = "Basic " + base64.b64encode(f"{APP}:not-the-key".encode()).decode()
    for authorization in ("Bearer not-the-key", wrong_basic, None):
        status, body = notify(api, payload, authorization=authorization)
        assert status == 401, (authorization, body)
    # A key of another application is that application's: its incidents are its own.
    status, body = notify(api, payload, authorization="Bearer grafana-key")
    assert status == 202, body
    assert body["incident_ids"] == [derive_incident_id("grafana", payload["alerts"][0]["fingerprint"])]
    assert_nothing_written_for(api, [incident_id])


def test_rate_limit_is_503_so_alertmanager_retries(api: ApiProcess) -> None:
    """Alertmanager drops notifications answered 4xx: a throttled one must be retried, not lost."""
    payload = webhook([alert({"alertname": "Flood", "instance": uuid.uuid4().hex[:6]})])
    statuses = [notify(api, payload, authorization="Bearer slow-key")[0] for _ in range(3)]
    assert statuses == [202, 202, 503]  # the throttled application's burst is 2


# ---- the real Alertmanager -----------------------------------------------------------------------


def alertmanager_root() -> Path:
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "debian" / "fetch.sh"), "prometheus-alertmanager"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"could not fetch prometheus-alertmanager:\n{proc.stderr}")
    return Path(proc.stdout.strip()).parents[2]  # <root>/usr/bin/prometheus-alertmanager


class Alertmanager:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        status, body = http("POST", self.url + "/api/v2/alerts", alerts)
        assert status == 200, (status, body)

    def fingerprint(self, labels: dict[str, str]) -> str:
        status, found = http("GET", self.url + "/api/v2/alerts")
        assert status == 200, found
        [match] = [a for a in found if a["labels"] == labels]
        fingerprint: str = match["fingerprint"]
        return fingerprint

    def metric(self, name: str, **labels: str) -> float:
        """A counter of Alertmanager's /metrics (0 while it has no sample)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@contextmanager
def alertmanager(tmp_path: Path, receivers: str, routes: str) -> Iterator[Alertmanager]:
    root = alertmanager_root()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: default
  group_by: [alertname, run]
  group_wait: 0s        # notify as soon as an alert arrives
  group_interval: 1s    # and at most a second after a change (a resolve)
  repeat_interval: 1h
  routes:
{routes}
receivers:
  - name: default
{receivers}
""")
    log = tmp_path / f"alertmanager-{port}.log"
    # Run as installed: Debian's build needs its templates under /usr/share/prometheus/alertmanager.
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace.append("--map-root-user")
    command = [
        *namespace,
        "sh",
        "-c",
        'mount --bind "$0/usr/share" /usr/share && exec "$0/usr/bin/$@"',
        str(root),
        "prometheus-alertmanager",
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        "--cluster.listen-address=",  # no clustering (no gossip port)
        "--log.level=debug",
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until(ready, 30, lambda: f"alertmanager ready:\n{log.read_text()}")
        yield Alertmanager(proc, url, log)
    finally:
        terminate(proc)


def receiver(api: ApiProcess, name: str, http_config: str, query: str = "") -> str:
    return f"""  - name: {name}
    webhook_configs:
      - url: {api.url}{PATH}?plan=db-critical{query}
        send_resolved: true
        http_config:
{http_config}
"""


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.slow
def test_alertmanager_fires_and_resolves_incidents(api: ApiProcess, tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    receivers = receiver(api, "streamproc", f"          basic_auth: {{username: {APP}, password: {KEY}}}") + receiver(
        api, "streamproc-groups", f"          authorization: {{credentials: {KEY}}}", "&group=true"
    )
    routes = """    - receiver: streamproc
      matchers: ['mode="alert"']
    - receiver: streamproc-groups
      matchers: ['mode="group"']"""
    started = time.monotonic()
    with alertmanager(tmp_path, receivers, routes) as am:
        # One alert, one incident: triggered, then resolved.
        labels = {"alertname": "DiskFull", "run": run, "mode": "alert", "instance": "db01:9100", "severity": "critical"}
        annotations = {"summary": "disk full on db01", "description": "/var at 99%"}
        generator = "http://prometheus.example:9090/graph?g0.expr=disk"
        am.post_alerts([{"labels": labels, "annotations": annotations, "generatorURL": generator}])
        fingerprint = am.fingerprint(labels)
        incident_id = derive_incident_id(APP, fingerprint)
        records = of(wait_for_records(api, lambda rs: bool(of(rs, incident_id))), incident_id)
        trigger = records[0]
        assert trigger["type"] == "trigger", records
        assert (trigger["application"], trigger["plan"], trigger["dedup_key"]) == (APP, "db-critical", fingerprint)
        context = trigger["context"]
        assert context["summary"] == "disk full on db01"
        assert (context["instance"], context["description"]) == ("db01:9100", "/var at 99%")
        assert context["labels"] == labels and context["annotations"] == annotations
        assert (context["status"], context["generatorURL"]) == ("firing", generator)
        assert context["externalURL"] == am.url and context["receiver"] == "streamproc"
        assert datetime.fromisoformat(context["startsAt"]) <= datetime.now(UTC)

        ended = rfc3339(datetime.now(UTC) - timedelta(seconds=1))
        am.post_alerts([{"labels": labels, "annotations": annotations, "endsAt": ended}])
        records = until_resolved(api, incident_id)
        # Same key, same partition: the resolve comes after the trigger(s) (Alertmanager may repeat one).
        types = [r["type"] for r in records]
        assert types[0] == "trigger" and set(types[:-1]) == {"trigger"}, types
        assert records[-1]["dedup_key"] == fingerprint

        # A group: one incident for two alerts, resolved when both are. (With group_wait 0s the first
        # notification may hold only the first alert; the next one, a second later, holds both.)
        group_labels = {"alertname": "NodeDown", "run": run, "mode": "group"}
        am.post_alerts([{"labels": {**group_labels, "instance": f"web0{i}"}} for i in (1, 2)])
        group_trigger: list[dict[str, Any]] = []

        def group_seen(rs: list[dict[str, Any]]) -> bool:
            group_trigger[:] = [
                r
                for r in rs
                if r["type"] == "trigger"
                and r["context"].get("firing") == 2
                and r["context"].get("groupLabels") == {"alertname": "NodeDown", "run": run}
            ]
            return bool(group_trigger)

        wait_for_records(api, group_seen)
        group = group_trigger[0]
        group_key = group["context"]["groupKey"]
        assert group["dedup_key"] == group_key and f'run="{run}"' in group_key
        assert group["incident_id"] == derive_incident_id(APP, group_key)
        assert group["context"]["summary"] == "NodeDown: 2 alerts firing"
        assert group["context"]["firing"] == 2
        assert sorted(a["labels"]["instance"] for a in group["context"]["alerts"]) == ["web01", "web02"]

        ended = rfc3339(datetime.now(UTC) - timedelta(seconds=1))
        am.post_alerts([{"labels": {**group_labels, "instance": "web01"}, "endsAt": ended}])
        am.post_alerts([{"labels": {**group_labels, "instance": "web02"}, "endsAt": ended}])
        records = until_resolved(api, group["incident_id"])
        types = [r["type"] for r in records]
        assert types[0] == "trigger" and set(types[:-1]) == {"trigger"}, types
    print(f"alertmanager round trips took {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_alertmanager_with_a_wrong_key_is_refused(api: ApiProcess, tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    receivers = receiver(api, "wrong-key", "          authorization: {credentials: not-the-key}")
    routes = """    - receiver: wrong-key
      matchers: ['mode="wrong"']"""
    with alertmanager(tmp_path, receivers, routes) as am:
        failed_before = am.metric("alertmanager_notifications_failed_total", integration="webhook")
        labels = {"alertname": "DiskFull", "run": run, "mode": "wrong"}
        am.post_alerts([{"labels": labels, "annotations": {"summary": "never paged"}}])
        fingerprint = am.fingerprint(labels)
        wait_until(
            lambda: am.metric("alertmanager_notifications_failed_total", integration="webhook") > failed_before,
            30,
            lambda: f"alertmanager failed a notification:\n{am.log.read_text()}",
            interval=0.2,
        )
        log = am.log.read_text()
        # Alertmanager logs our answer, reason included, and does not retry a 4xx.
        assert "unexpected status code 401" in log and "unknown application key" in log, log
    assert_nothing_written_for(api, [derive_incident_id(APP, fingerprint)])
