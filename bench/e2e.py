"""`make bench`: figures measured where a person would, from a trigger's append to the broker to the
vendor (a local fake) accepting the page, through worker(s) and sender(s). It measures and reports;
it never asserts.

End to end (the default, with `replay`): a collector child process serves the vendor fakes of
`tests/fakes` (Twilio, Slack, webhook, SMTP; so run from a checkout) and records when each page was
accepted; each scenario starts `streamproc worker` xN and one `streamproc sender` as child processes
in a fresh `STREAMPROC_NAMESPACE`, whose incidents topic uses LogAppendTime, so trigger time (the
broker's append) and page time (the fake's acceptance) come from one clock. Expected pages are the
replay engine's on the very events produced (the project's definition of correct).

- burst: N triggers at once, with 1, 2 and 4 workers: seconds until every step-1 page was accepted,
  and trigger -> first page per incident;
- paced: 100 incidents/s and 2,000/min: trigger -> first page p50/p99/max;
- failover: 2 workers under paced load, one SIGKILLed: seconds until the dead worker's partitions
  page again, pages missing (never accepted) and sent twice (one message id accepted twice);
- cost, in each: CPU seconds per 1,000 incidents (processor, senders; /proc utime+stime) and peak RSS;
- replay: events/s through the engine on a virtual clock, and Iris days per second.

`--only topic|senders|api|whatif` runs the older partial benches (worker up to the messages topic,
senders alone, the HTTP API, whatif). Figures go to bench/results.json beside the previous run's.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import heapq
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.counts import drop_namespace, per_incident, records_per_incident, topic_offsets
from streamproc.localnet import free_port, terminate
from streamproc.timeutil import format_us, to_us
from tests import fakes as tests_fakes
from tests.harness.procs import Proc, Worker
from tests.harness.stack import stop_all

BENCH_CONFIG = """
applications:
  mon: {}
users:
  u0: {contacts: {sms: "+1000", email: "u0@x"}}
  u1: {contacts: {sms: "+1001", email: "u1@x"}}
  u2: {contacts: {email: "u2@x"}}
  boss: {contacts: {call: "+1999", email: "boss@x"}}
teams:
  ops:
    members: [u0, u1, u2]
    manager: boss
    rotations:
      primary: {users: [u0, u1, u2], start: "2026-01-01T00:00:00Z", shift: 1h}
plans:
  page:
    owner: boss
    steps:
      - - {role: oncall, target: ops, priority: high, template: t, repeat: 2, wait: 300}
        - {role: team, target: ops, priority: medium, template: t, wait: 600}
      - - {role: manager, target: ops, priority: urgent, template: t}
templates:
  t:
    default:
      default: {subject: "[{{ severity }}] {{ summary }}", body: "{{ summary }} on {{ host }} ({{ incident.id }})"}
      sms: {body: "{{ incident.id }}: {{ summary }}"}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_replay(n_events: int) -> dict[str, Any]:
    from streamproc.config import load_config
    from streamproc.engine.core import Engine
    from streamproc.replay import replay
    from streamproc.timeutil import format_us, parse_time, to_us

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(BENCH_CONFIG)
        engine = Engine(load_config(path))
    t0 = to_us(parse_time("2026-03-01T00:00:00Z"))
    lines = []
    incidents = n_events // 2
    for i in range(incidents):
        at = t0 + i * 1_000_000
        lines.append(
            json.dumps(
                {
                    "type": "trigger",
                    "at": format_us(at),
                    "incident_id": f"i{i}",
                    "application": "mon",
                    "plan": "page",
                    "context": {"summary": "disk", "host": f"h{i}", "severity": "high"},
                }
            )
        )
        kind = "claim" if i % 2 else "resolve"
        lines.append(json.dumps({"type": kind, "at": format_us(at + (i % 900) * 1_000_000), "incident_id": f"i{i}"}))
    started = time.perf_counter()
    report = replay(engine, lines)
    out = report.lines()
    elapsed = time.perf_counter() - started
    return {
        "events": len(lines),
        "outcomes": len(out),
        "seconds": round(elapsed, 2),
        "events_per_s": round(len(lines) / elapsed),
        "iris_days_per_s": round(len(out) / elapsed / IRIS_MESSAGES_PER_DAY, 3),
    }


def bench_processor(bootstrap: str, incidents: int, partitions: int = 12, rate: float | None = None) -> dict[str, Any]:
    """A burst of `incidents` triggers (or, with `rate`, paced at that many per second)."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from streamproc.kafka.admin import ensure_topics
    from streamproc.kafka.clients import producer_config
    from streamproc.kafka.security import client_config
    from streamproc.kafka.topics import Topics

    namespace = f"bench{uuid.uuid4().hex[:6]}"
    names = Topics(namespace)
    ensure_topics(bootstrap, partitions, names=names)
    tmp = Path(tempfile.mkdtemp(prefix="streamproc-bench-"))
    (tmp / "c.yaml").write_text(BENCH_CONFIG)
    port = free_port()
    env = {**os.environ, "STREAMPROC_NAMESPACE": namespace}
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.cli",
            "worker",
            "--config",
            str(tmp / "c.yaml"),
            "--bootstrap",
            bootstrap,
            "--partitions",
            str(partitions),
            "--data-dir",
            str(tmp / "data"),
            "--web-port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
                    if json.loads(resp.read())["ready"]:
                        break
            except Exception:
                pass
            time.sleep(0.3)
        else:
            raise TimeoutError("worker not ready")
        producer = Producer(producer_config(bootstrap, **{"linger.ms": 5}))
        appended: dict[str, float] = {}

        def delivered(err: Any, msg: Any) -> None:
            if err is None:
                appended[msg.key().decode()] = msg.timestamp()[1]

        from streamproc.timeutil import format_us

        started = time.time()
        for i in range(incidents):
            if rate:
                delay = started + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)  # poll(timeout) returns early once a callback is served
            key = f"b{i}"
            event: dict[str, Any] = {
                "type": "trigger",
                "at": format_us(int(time.time() * 1e6)),
                "incident_id": key,
                "application": "mon",
                "plan": "page",
                "context": {"summary": "disk", "host": "h"},
            }
            producer.produce(names.incidents, key=key.encode(), value=json.dumps(event).encode(), on_delivery=delivered)
            producer.poll(0)
        producer.flush(60)
        consumer = Consumer(
            client_config(bootstrap, **{"group.id": f"bench-{uuid.uuid4().hex}", "enable.auto.commit": False})
        )
        consumer.assign([TopicPartition(names.messages(m), p, 0) for m in ("sms", "email") for p in range(partitions)])
        first_message: dict[str, float] = {}
        last_append = 0.0
        deadline = time.monotonic() + 180
        while len(first_message) < incidents and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            value = json.loads(msg.value() or b"{}")
            if value["step"] == 1 and value["notification"] == 0 and value["repeat"] == 0:
                first_message.setdefault(value["incident_id"], msg.timestamp()[1])
                last_append = max(last_append, msg.timestamp()[1])
        consumer.close()
        latencies = [first_message[k] - appended[k] for k in first_message if k in appended]
        span_s = (last_append - min(appended.values())) / 1000 if appended else 0
        return {
            "incidents": incidents,
            "paged": len(first_message),
            "incidents_per_s": round(len(first_message) / span_s) if span_s else None,
            "latency_ms_p50": round(pct(latencies, 0.5)) if latencies else None,
            "latency_ms_p99": round(pct(latencies, 0.99)) if latencies else None,
            "latency_ms_max": round(max(latencies)) if latencies else None,
        }
    finally:
        terminate(worker, 30)
        log.close()


API_KEY = "bench-key"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _broker_pid() -> int | None:
    """The pid of the broker `tools/run.sh` started (its pid file under `KAFKA_RUN_DIR`), or None
    for a broker elsewhere (`STREAMPROC_KAFKA`)."""
    run_dir = Path(os.environ.get("KAFKA_RUN_DIR") or REPO / ".run" / "kafka")
    try:
        pid = int((run_dir / "kafka.pid").read_text().strip())
        return pid if b"kafka" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
    except (OSError, ValueError):
        return None


def _machine_seconds() -> tuple[float, float, float]:
    """(busy, steal, all) CPU seconds of the whole machine so far (/proc/stat's first line): busy is
    every process (all but idle, iowait and steal), so that a scenario's whole cost is known, the
    broker and the bench's own included; steal is time the hypervisor gave to other machines,
    which makes a run slower than the same code on a quiet host."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0, 0.0
    fields += [0] * (8 - len(fields))
    tick = os.sysconf("SC_CLK_TCK")
    steal = fields[7]
    busy = sum(fields) - fields[3] - fields[4] - steal
    return busy / tick, steal / tick, sum(fields) / tick


async def _drive_api(url: str, bodies: list[bytes], events_per_body: int, concurrency: int) -> dict[str, Any]:
    """POST every body from `concurrency` connections; accept latency of each 202."""
    import aiohttp

    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    latencies: list[float] = []
    failures: dict[str, int] = {}
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            for body in queue:
                started = time.perf_counter()
                async with session.post(f"{url}/v1/events", data=body) as resp:
                    await resp.read()
                    if resp.status == 202:
                        latencies.append(time.perf_counter() - started)
                    else:
                        failures[str(resp.status)] = failures.get(str(resp.status), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    accepted = len(latencies) * events_per_body
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(bodies),
        "events_per_request": events_per_body,
        "accepted_events": accepted,
        "failed": failures or None,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed),
        "events_per_s": round(accepted / elapsed),
        "latency_ms_p50": round(pct(ms, 0.5), 1) if ms else None,
        "latency_ms_p99": round(pct(ms, 0.99), 1) if ms else None,
        "latency_ms_max": round(max(ms), 1) if ms else None,
    }


def bench_api(
    bootstrap: str,
    requests: int,
    concurrency: int = 32,
    batch: int = 100,
    batch_requests: int = 500,
    partitions: int = 12,
) -> dict[str, Any]:
    """`streamproc api` as a child process in its own namespace; single events, then batches."""
    from confluent_kafka import Consumer, TopicPartition

    from streamproc.kafka.admin import ensure_topics
    from streamproc.kafka.security import client_config
    from streamproc.kafka.topics import Topics
    from streamproc.timeutil import format_us

    namespace = f"bench{uuid.uuid4().hex[:6]}"
    names = Topics(namespace)
    ensure_topics(bootstrap, partitions, names=names)
    tmp = Path(tempfile.mkdtemp(prefix="streamproc-bench-api-"))
    config = BENCH_CONFIG.replace("  mon: {}", f'  mon: {{key: "{API_KEY}"}}') + (
        "api:\n  rate: {rate: 1000000, burst: 1000000}\n"
    )  # measure the door, not the rate limit
    (tmp / "c.yaml").write_text(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STREAMPROC_NAMESPACE": namespace}
    log = open(tmp / "api.log", "wb")  # noqa: SIM115
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.cli",
            "api",
            "--config",
            str(tmp / "c.yaml"),
            "--bootstrap",
            bootstrap,
            "--port",
            str(port),
            "--partitions",
            str(partitions),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if api.poll() is not None:
                raise RuntimeError(f"streamproc api exited with {api.returncode}: see {tmp / 'api.log'}")
            try:
                with urllib.request.urlopen(f"{url}/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("streamproc api not ready")
            time.sleep(0.2)

        def event(i: int) -> dict[str, Any]:
            return {
                "type": "trigger",
                "at": format_us(int(time.time() * 1e6)),
                "incident_id": f"a{i}",
                "plan": "page",
                "context": {"summary": "disk", "host": f"h{i % 50}", "severity": "high"},
            }

        def single(offset: int, n: int) -> list[bytes]:
            return [json.dumps(event(offset + i)).encode() for i in range(n)]

        results: dict[str, Any] = {"concurrency": concurrency}
        asyncio.run(_drive_api(url, single(0, min(1000, requests)), 1, concurrency))  # warm-up, not reported
        warm = min(1000, requests)
        cpu_before = _cpu_seconds(api.pid)
        results["single"] = asyncio.run(_drive_api(url, single(warm, requests), 1, concurrency))
        results["single"]["api_cpu_percent"] = round(
            100 * (_cpu_seconds(api.pid) - cpu_before) / results["single"]["seconds"]
        )
        written = warm + requests
        if batch_requests:
            bodies = [
                json.dumps([event(written + r * batch + i) for i in range(batch)]).encode()
                for r in range(batch_requests)
            ]
            cpu_before = _cpu_seconds(api.pid)
            results[f"batch_{batch}"] = asyncio.run(_drive_api(url, bodies, batch, concurrency))
            results[f"batch_{batch}"]["api_cpu_percent"] = round(
                100 * (_cpu_seconds(api.pid) - cpu_before) / results[f"batch_{batch}"]["seconds"]
            )
            written += batch * batch_requests
        consumer = Consumer(client_config(bootstrap, **{"group.id": f"bench-{uuid.uuid4().hex}"}))
        try:
            on_topic = sum(
                consumer.get_watermark_offsets(TopicPartition(names.incidents, p), timeout=10)[1]
                for p in range(partitions)
            )
        finally:
            consumer.close()
        results["on_topic"] = on_topic
        results["expected_on_topic"] = written
        return results
    finally:
        terminate(api, 30)
        log.close()


IRIS_EVENTS_PER_WEEK = 7 * 700_000


def bench_whatif(incidents_per_day: int, days: int = 7) -> dict[str, Any]:
    """`streamproc whatif` (both replays and the report, JSON and HTML) on generated traffic with
    the example plan change, extrapolated linearly to a week at Iris scale (700,000 events a day)."""
    from zoneinfo import ZoneInfo

    from streamproc.config import load_config
    from streamproc.engine.core import Engine
    from streamproc.replay.simulator import parse_lines
    from streamproc.whatif.analysis import compare, run_both
    from streamproc.whatif.output import write_html
    from streamproc.whatif.traffic import events

    examples = Path(__file__).resolve().parent.parent / "examples" / "whatif"
    engines = [Engine(load_config(examples / name)) for name in ("baseline.yaml", "new.yaml")]

    import gc

    gc.freeze()  # as `streamproc whatif` does: many long-lived objects
    gc.set_threshold(50_000, 20, 100)
    started = time.perf_counter()
    items = list(parse_lines(json.dumps(e) for e in events(days, incidents_per_day)))
    parsed = time.perf_counter()
    tz = ZoneInfo("UTC")
    base, new = run_both(engines, items, tz)  # two processes, as `streamproc whatif` runs them
    report = compare(base, new, baseline_config="baseline", new_config="new", source="bench", timezone="UTC")
    report.model_dump_json()
    replayed = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_html(report, str(Path(tmp) / "r.html"), [])
    done = time.perf_counter()
    per_event = (done - started) / len(items)
    return {
        "events": len(items),
        "incidents": len(report.incidents),
        "parse_s": round(parsed - started, 2),
        "replays_and_report_s": round(replayed - parsed, 2),
        "html_s": round(done - replayed, 2),
        "events_per_s": round(len(items) / (done - started)),
        "iris_week_events": IRIS_EVENTS_PER_WEEK,
        "iris_week_minutes_extrapolated": round(per_event * IRIS_EVENTS_PER_WEEK / 60, 1),
    }


# ---------------------------------------------------------------------------------------------
# End to end: trigger appended to the broker -> worker(s) -> sender -> vendor fake accepted it.
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent
E2E_PARTITIONS = 12
FAKE_MODES = ("sms", "call", "slack", "email", "webhook")
TEAMS = ("db", "web", "net", "cache", "queue", "storage")
APPS = ("grafana", "prometheus", "pagerduty")
#: (plan shape, team) per plan; the shapes are below in `e2e_config`.
PLANS = {f"{team}-{shape}": (shape, team) for team in TEAMS for shape in ("critical", "warning", "urgent")}
CLAIM_FRACTION, CLAIM_AFTER = 0.3, 2.5
RETRIGGER_FRACTION, RETRIGGER_AFTER = 0.1, 1.0
RESOLVE_FRACTION, RESOLVE_AFTER = 0.4, 16.0


def e2e_config(fakes: dict[str, Any], flood: bool = False) -> str:
    """Several applications, teams with rotations and per-user modes over every vendor mode, plans with
    repeats and waits of seconds; sender rates far above what is reached, so they are not the limit.
    With `flood`, flood control (spec §7) is on: every plan batches (more than 20 pages of a plan to
    one person within a minute start batches every 5 s) and every user has a downgrade rule (a fourth
    call within 10 minutes goes by SMS), so every page passes the flood stage."""
    users: dict[str, Any] = {}
    teams: dict[str, Any] = {}
    for t, team in enumerate(TEAMS):
        members = [f"{team}{k}" for k in range(4)]
        for k, name in enumerate(members):
            n = t * 4 + k
            modes = [{"high": "slack"}, {"high": "sms", "medium": "slack"}, {}][n % 3]
            users[name] = {
                "contacts": {
                    "sms": f"+1555{n:07d}",
                    "call": f"+1555{n:07d}",
                    "email": f"{name}@example.com",
                    "slack": f"U{n:08d}",
                },
                **({"modes": modes} if modes else {}),
            }
        users[f"{team}-boss"] = {"contacts": {"call": f"+1666{t:07d}", "email": f"{team}-boss@example.com"}}
        teams[team] = {
            "members": members,
            "manager": f"{team}-boss",
            "rotations": {
                "primary": {"users": members, "start": "2026-01-01T00:00:00Z", "shift": "1h"},
                "secondary": {"users": members[::-1], "start": "2026-01-01T00:00:00Z", "shift": "1h"},
            },
        }
    # The outside check of issue 20: one plan, every step-1 page an SMS (to the members of `pager`).
    pagers = [f"pager{k}" for k in range(4)]
    for k, name in enumerate(pagers):
        users[name] = {
            "contacts": {"sms": f"+1777{k:07d}"},
            "modes": dict.fromkeys(("urgent", "high", "medium", "low"), "sms"),
        }
    teams["pager"] = {
        "members": pagers,
        "rotations": {"primary": {"users": pagers, "start": "2026-01-01T00:00:00Z", "shift": "1h"}},
    }
    users["hookbot"] = {
        "contacts": {"webhook": fakes["webhook"]},
        "modes": dict.fromkeys(("urgent", "high", "medium", "low"), "webhook"),
    }
    shapes: dict[str, list[list[dict[str, Any]]]] = {
        # pages at 0 and 5 s (sms/slack), then the manager at 10 s (call)
        "critical": [
            [{"role": "oncall-primary", "priority": "high", "repeat": 1, "wait": 5}],
            [{"role": "manager", "priority": "urgent"}],
        ],
        # an email and a webhook at 0, the secondary's email at 8 s
        "warning": [
            [
                {"role": "oncall-primary", "priority": "medium", "wait": 8},
                {"role": "user", "target": "hookbot", "priority": "high"},
            ],
            [{"role": "oncall-secondary", "priority": "low"}],
        ],
        # calls at 0, 4 and 8 s, then the manager (call) at 12 s
        "urgent": [
            [{"role": "oncall-primary", "priority": "urgent", "repeat": 2, "wait": 4}],
            [{"role": "manager", "priority": "high"}],
        ],
    }
    plans: dict[str, Any] = {}
    for plan, (shape, team) in PLANS.items():
        plans[plan] = {
            "owner": f"{team}-boss",
            "steps": [[{"target": team, **n, "template": "page"} for n in step] for step in shapes[shape]],
        }
    if flood:
        for plan in plans.values():
            plan["batching"] = {"threshold": 20, "window": "60s", "every": "5s", "quiet": "10s"}
        for user in users.values():
            user["downgrade"] = [{"from": "call", "to": "sms", "count": 3, "window": "10m"}]
    plans["sms-burst"] = {
        "steps": [[{"role": "oncall-primary", "target": "pager", "priority": "high", "template": "page"}]]
    }
    plans["warmup"] = {"steps": [[{"role": "user", "target": "hookbot", "priority": "low", "template": "page"}]]}
    fast = {"rate": 100000, "burst": 100000}
    config = {
        "priorities": {"urgent": "call", "high": "sms", "medium": "email", "low": "email"},
        "applications": {"grafana": {"default_modes": {"high": "slack"}}, "prometheus": {}, "pagerduty": {}},
        "users": users,
        "teams": teams,
        "plans": plans,
        "templates": {
            "page": {
                "default": {
                    "default": {
                        "subject": "[{{ severity }}] {{ summary }}",
                        "body": "{{ summary }} on {{ host }} ({{ incident.id }})",
                    },
                    "sms": {"body": "{{ incident.id }}: {{ summary }} (reply 'claim {{ incident.id }}')"},
                }
            }
        },
        "senders": {
            # status_callback_url and gather_url carry the message id to the fake (as they do to Twilio)
            "twilio": {
                "account_sid": fakes["twilio_sid"],
                "auth_token": fakes["twilio_token"],
                "from_number": "+15559990000",
                "base_url": fakes["twilio"],
                "gather_url": "http://127.0.0.1:9/voice",
                "status_callback_url": "http://127.0.0.1:9/status",
            },
            "slack": {"token": fakes["slack_token"], "base_url": fakes["slack"]},
            "smtp": {"host": "127.0.0.1", "port": fakes["smtp_port"]},
            "webhook": {"secret": "bench"},
            "rates": dict.fromkeys(FAKE_MODES, fast),
            "concurrency": 32,
            "max_queued": 100000,
        },
    }
    return json.dumps(config, indent=1)  # JSON is YAML


# -- the collector: every vendor fake in a process of its own --------------------------------

_MESSAGE_ID = re.compile(r"(?:message_id|streamproc-|X-Streamproc-Message-Id)[^0-9a-f]{0,8}([0-9a-f]{32})")


async def _collector_main() -> None:
    """Serve the vendor fakes of tests/fakes (so: run from a checkout) and, on a control port,
    `GET /arrivals?since=N`: [mode, message id, accepted at (epoch s)] of every accepted request."""
    from aiohttp import web

    fakes: Any = tests_fakes
    twilio, slack, hook = fakes.FakeTwilio(), fakes.FakeSlack(), fakes.FakeWebhook()
    for fake in (twilio, slack, hook):
        await fake.start()
    smtp = fakes.FakeSmtp().start()
    items: list[tuple[str, str, float]] = []
    cursors = {"twilio": 0, "slack": 0, "webhook": 0, "smtp": 0}

    def collect() -> None:
        for source, log in (("twilio", twilio.requests), ("slack", slack.requests), ("webhook", hook.requests)):
            new = log[cursors[source] :]
            cursors[source] += len(new)
            for r in new:
                if not r.ok:
                    continue
                if source == "twilio":
                    mode, text = ("sms" if r.path.endswith("/Messages.json") else "call"), " ".join(r.form.values())
                else:
                    mode, text = source, r.body.decode(errors="replace")
                found = _MESSAGE_ID.search(text)
                items.append((mode, found.group(1) if found else "", r.at))
        mails = smtp.messages[cursors["smtp"] :]
        cursors["smtp"] += len(mails)
        for m in mails:
            found = _MESSAGE_ID.search(m.data.decode(errors="replace"))
            items.append(("email", found.group(1) if found else "", m.at))

    async def arrivals(request: web.Request) -> web.Response:
        collect()
        since = int(request.query.get("since", "0"))
        return web.json_response({"n": len(items), "items": items[since:]})

    control = web.Application()
    control.router.add_get("/arrivals", arrivals)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(
        json.dumps(
            {
                "control": f"http://127.0.0.1:{port}",
                "twilio": twilio.url,
                "twilio_sid": twilio.account_sid,
                "twilio_token": twilio.auth_token,
                "slack": slack.api_url,
                "slack_token": slack.token,
                "smtp_port": smtp.port,
                "webhook": hook.hook_url,
            }
        ),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    for fake in (twilio, slack, hook):
        await fake.close()
    smtp.stop()


class Collector:
    """The collector child process, and the pages it has seen accepted."""

    def __init__(self, workdir: Path) -> None:
        self.log = open(workdir / "collector.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e", "--collector"], cwd=REPO, stdout=subprocess.PIPE, stderr=self.log
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the collector did not start: see {workdir / 'collector.log'}")
        self.fakes: dict[str, Any] = json.loads(line)
        self.seen: list[tuple[str, str, float]] = []

    def poll(self) -> list[tuple[str, str, float]]:
        """Fetch what arrived since the last call; returns the new arrivals."""
        with urllib.request.urlopen(f"{self.fakes['control']}/arrivals?since={len(self.seen)}", timeout=30) as resp:
            new = [tuple(x) for x in json.loads(resp.read())["items"]]
        self.seen.extend(new)  # type: ignore[arg-type]
        return new  # type: ignore[return-value]

    def close(self) -> None:
        terminate(self.proc, 10)  # type: ignore[arg-type]
        self.log.close()


# -- the stack: worker(s) and a sender as child processes, as `streamproc run` starts them ------


def _proc_status(pid: int, field_name: str) -> float:
    """A kB figure of /proc/<pid>/status (VmHWM: peak RSS) in MB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


class Stack:
    """`streamproc worker` xN (distinct --web-port/--data-dir, one namespace, so one group) and one
    `streamproc sender` for every mode, each logging to a file in `workdir`: the processes of the
    test harness (`tests.harness.procs`), with the benchmark's own arguments."""

    def __init__(self, bootstrap: str, namespace: str, config: Path, workdir: Path, profile: bool = False) -> None:
        self.bootstrap, self.namespace, self.config, self.workdir = bootstrap, namespace, config, workdir
        self.profile = profile
        """Each process under cProfile (`bench.profiled`), for the call counts of `bench.counts`."""
        self.env = {"STREAMPROC_NAMESPACE": namespace, "STREAMPROC_LOG_FORMAT": "json"}
        self.workers: list[Worker] = []
        self.sender: Proc | None = None
        self.cpu_at_kill: dict[int, float] = {}

    def _entry(self, name: str) -> list[str]:
        return ["bench.profiled", str(self.workdir / f"{name}.prof")] if self.profile else ["streamproc.cli"]

    def start(self, workers: int) -> None:
        for i in range(workers):
            name, port = f"worker-{i}", free_port()
            args = ["worker", "--config", str(self.config), "--bootstrap", self.bootstrap]
            args += ["--partitions", str(E2E_PARTITIONS), "--data-dir", str(self.workdir / name)]
            args += ["--web-port", str(port)]
            self.workers.append(Worker(name, args, self.workdir, port, env=self.env, entry=self._entry(name)).start())
        args = ["sender", "--config", str(self.config), "--bootstrap", self.bootstrap]
        self.sender = Proc("sender", args, self.workdir, env=self.env, entry=self._entry("sender")).start()

    def wait_ready(self, timeout: float) -> None:
        """Every live worker ready, and together they own every partition exactly once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            states = [w.status() for w in self.workers if w.alive]
            owned = [p for s in states if s and s.get("ready") for p in s.get("partitions", [])]
            if all(s and s.get("ready") for s in states) and sorted(owned) == list(range(E2E_PARTITIONS)):
                return
            time.sleep(0.1)
        raise TimeoutError(f"workers not ready within {timeout:.0f} s (logs in {self.workdir})")

    def check_alive(self) -> None:
        for proc in [*self.workers, *([self.sender] if self.sender else [])]:
            if not proc.alive and not proc.ended:
                raise RuntimeError(f"{proc.name} exited with {proc.returncode}: see {proc.log}")

    def kill_worker(self, index: int) -> list[int]:
        """SIGKILL one worker; returns the partitions it owned."""
        worker = self.workers[index]
        state = worker.status() or {}
        assert worker.proc is not None
        self.cpu_at_kill[worker.proc.pid] = _cpu_seconds(worker.proc.pid)
        worker.kill()
        return list(state.get("partitions", []))

    def _pid(self, proc: Proc) -> int:
        assert proc.proc is not None
        return proc.proc.pid

    def cpu(self) -> tuple[float, float]:
        """(CPU seconds of all workers, of the sender) so far; a killed worker counts up to its kill."""
        workers = sum(
            self.cpu_at_kill.get(self._pid(w), 0.0) if not w.alive else _cpu_seconds(self._pid(w)) for w in self.workers
        )
        return workers, _cpu_seconds(self._pid(self.sender)) if self.sender else 0.0

    def peak_rss_mb(self) -> tuple[float, float]:
        """(largest VmHWM of the live workers, the sender's), MB."""
        workers = max((_proc_status(self._pid(w), "VmHWM") for w in self.workers if w.alive), default=0.0)
        return workers, _proc_status(self._pid(self.sender), "VmHWM") if self.sender else 0.0

    def stop(self) -> None:
        stop_all([*self.workers, *([self.sender] if self.sender else [])], timeout=30)


# -- the load generator ------------------------------------------------------------------------


@dataclass
class Load:
    """What was produced: every event (in produce order) and each trigger's broker append time (ms)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    appended_ms: dict[str, float] = field(default_factory=dict)
    log_append_time: bool = True
    failed: int = 0


class Generator:
    """Produces realistic incidents to the namespace's incidents topic: several applications and plans,
    a fraction triggered again while open (absorbed), claimed after a few seconds, resolved later."""

    def __init__(self, bootstrap: str, topic: str, seed: int = 1) -> None:
        from confluent_kafka import Producer

        from streamproc.kafka.clients import producer_config

        self.producer = Producer(producer_config(bootstrap, **{"linger.ms": 5}))
        self.topic = topic
        self.rng = random.Random(seed)
        self.load = Load()
        self._followups: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = 0

    def _delivered(self, incident: str | None, err: Any, msg: Any) -> None:
        if err is not None:
            self.load.failed += 1
            return
        if incident is not None:
            kind, ms = msg.timestamp()
            self.load.log_append_time &= kind == 2  # TIMESTAMP_LOG_APPEND_TIME
            self.load.appended_ms[incident] = float(ms)

    def _send(self, event: dict[str, Any], first_trigger: bool) -> None:
        event["at"] = format_us(int(time.time() * 1e6))
        self.load.events.append(event)
        incident = event["incident_id"]
        self.producer.produce(
            self.topic,
            key=incident.encode(),
            value=json.dumps(event).encode(),
            on_delivery=functools.partial(self._delivered, incident if first_trigger else None),
        )
        self.producer.poll(0)

    def trigger(
        self, incident: str, followups: bool = True, plan: str | None = None, application: str | None = None
    ) -> None:
        rng = self.rng
        app = application or rng.choice(APPS)
        plan = plan or rng.choice(sorted(PLANS))
        event: dict[str, Any] = {
            "type": "trigger",
            "incident_id": incident,
            "application": app,
            "plan": plan,
            "context": {
                "summary": rng.choice(["disk full", "5xx rate", "latency p99", "replica lag"]),
                "host": f"h{rng.randrange(200):03d}",
                "severity": rng.choice(["high", "critical"]),
            },
        }
        self._send(event, True)
        if not followups:
            return
        now = time.time()
        if rng.random() < RETRIGGER_FRACTION:
            self._later(now + RETRIGGER_AFTER, {**event, "context": {**event["context"], "repeat": True}})
        if rng.random() < CLAIM_FRACTION:
            self._later(now + CLAIM_AFTER, {"type": "claim", "incident_id": incident, "owner": "responder"})
        if rng.random() < RESOLVE_FRACTION:
            self._later(now + RESOLVE_AFTER, {"type": "resolve", "incident_id": incident})

    def _later(self, when: float, event: dict[str, Any]) -> None:
        self._seq += 1
        heapq.heappush(self._followups, (when, self._seq, event))

    def due_followups(self) -> None:
        now = time.time()
        while self._followups and self._followups[0][0] <= now:
            self._send(dict(heapq.heappop(self._followups)[2]), False)

    def next_followup(self) -> float | None:
        return self._followups[0][0] if self._followups else None

    def run_paced(self, prefix: str, rate: float, seconds: float, on_tick: Callable[[float], None]) -> None:
        """`rate` triggers a second for `seconds`, and their follow-ups; those due over 3 s after the
        last trigger (resolves, long after every page) are left out, as if resolved later."""
        started = time.time()
        total = int(rate * seconds)
        i = 0
        while i < total or (self._followups and self._followups[0][0] < started + seconds + 3):
            now = time.time()
            on_tick(now - started)
            next_trigger = started + i / rate if i < total else None
            if next_trigger is not None and next_trigger <= now:
                self.trigger(f"{prefix}-{i}")
                i += 1
                continue
            self.due_followups()
            wake = min(x for x in (next_trigger, self.next_followup(), now + 0.2) if x is not None)
            self.producer.poll(max(0.0, min(0.05, wake - time.time())))
            delay = wake - time.time()
            if delay > 0:
                time.sleep(delay)
        self.flush()

    def flush(self) -> None:
        remaining = self.producer.flush(60)
        self.load.failed += remaining


# -- one scenario ------------------------------------------------------------------------------


def _stats_ms(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {"p50": round(pct(values, 0.5)), "p99": round(pct(values, 0.99)), "max": round(max(values))}


def _expected_pages(config: Path, events: list[dict[str, Any]]) -> list[Any]:
    """The project's definition of correct: the replay engine on the very events produced."""
    from streamproc.config import load_config
    from streamproc.engine.core import Engine
    from streamproc.replay import replay_events
    from streamproc.wire.events import parse_event
    from streamproc.wire.outcomes import Message

    engine = Engine(load_config(config))
    report = replay_events(engine, ((i, parse_event(json.dumps(e))) for i, e in enumerate(events)))
    return [e.outcome for e in report.emitted if isinstance(e.outcome, Message)]


def _read_topics(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    """Every JSON record of `topics` as they are now (assigned partitions, no group, no commit)."""
    from confluent_kafka import Consumer, TopicPartition

    from streamproc.kafka.security import client_config

    consumer = Consumer(
        client_config(bootstrap, **{"group.id": f"bench-{uuid.uuid4().hex}", "enable.auto.commit": False})
    )
    records: list[dict[str, Any]] = []
    try:
        ends = {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            for p in range(E2E_PARTITIONS)
        }
        consumer.assign([TopicPartition(t, p, 0) for (t, p), end in ends.items() if end > 0])
        left = sum(ends.values())
        deadline = time.monotonic() + 60
        while left > 0 and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                left -= 1
                try:
                    records.append(json.loads(msg.value() or b"{}"))
                except ValueError:
                    continue
    finally:
        consumer.close()
    return records


def _deliveries(bootstrap: str, topic: str) -> dict[str, Any]:
    """Statuses the senders recorded on the deliveries topic, and the ids they dropped (claimed or
    resolved by the time the page reached the front of the queue)."""
    statuses: dict[str, int] = {}
    dropped: set[str] = set()
    for record in _read_topics(bootstrap, [topic]):
        status = str(record.get("status"))
        statuses[status] = statuses.get(status, 0) + 1
        if status.startswith("dropped"):
            dropped.add(str(record.get("message_id")))
    return {"statuses": statuses, "dropped_ids": dropped}


def _explain_unexpected(bootstrap: str, names: Any, ids: set[str], events: list[dict[str, Any]]) -> list[Any]:
    """Pages accepted that replay does not expect: the message records and their incident's events."""
    found = [r for r in _read_topics(bootstrap, [names.messages(m) for m in FAKE_MODES]) if r.get("message_id") in ids]
    out = []
    for r in found[:5]:
        out.append(
            {
                "message": {
                    k: r.get(k)
                    for k in (
                        "incident_id",
                        "instance",
                        "step",
                        "notification",
                        "repeat",
                        "user",
                        "mode",
                        "at",
                        "message_id",
                    )
                },
                "events": [(e["type"], e["at"]) for e in events if e["incident_id"] == r.get("incident_id")],
            }
        )
    return out


@dataclass
class Scenario:
    name: str
    workers: int
    incidents: int = 0
    """burst size (when `rate` is None)"""
    rate: float | None = None
    """paced: triggers per second"""
    seconds: float = 0.0
    kill_at: float | None = None
    """failover: SIGKILL half of the workers this many seconds into the load"""
    flood: bool = False
    """flood control on (`e2e_config(flood=True)`): the cost of the stage"""
    plan: str | None = None
    """burst: every trigger on this plan (default: the mix)"""
    application: str | None = None
    """burst: every trigger from this application (default: the mix)"""
    profile: bool = False
    """`--count`: every process under cProfile, for the call counts (slow: counts, not speed)"""


def run_scenario(
    sc: Scenario,
    bootstrap: str,
    collector: Collector,
    config: Path,
    workdir: Path,
    say: Callable[[str], None],
    stopping: list[threading.Thread],
) -> dict[str, Any]:
    """One scenario in a fresh namespace. Its stack is stopped by a thread (appended to `stopping`)
    once the figures are taken, so the next scenario starts meanwhile."""
    from streamproc.kafka.admin import TopicSpec, ensure_topics, processor_topics
    from streamproc.kafka.topics import Topics, partition_for

    namespace = f"bench{sc.name.replace('-', '')}{uuid.uuid4().hex[:6]}"
    names = Topics(namespace)
    # Trigger time = the broker's append time: the one clock shared with the fakes (same machine).
    wanted = processor_topics(E2E_PARTITIONS, names)
    wanted[names.incidents] = TopicSpec(E2E_PARTITIONS, {"message.timestamp.type": "LogAppendTime"})
    ensure_topics(bootstrap, names=names, wanted=wanted)
    scdir = workdir / sc.name
    scdir.mkdir(parents=True, exist_ok=True)
    stack = Stack(bootstrap, namespace, config, scdir, profile=sc.profile)
    gen = Generator(bootstrap, names.incidents, seed=len(sc.name))
    try:
        t0 = time.monotonic()
        stack.start(sc.workers)
        stack.wait_ready(180)
        # Warm-up: a page on every partition, so the groups have settled and every client is open.
        warm = Generator(bootstrap, names.incidents, seed=0)
        for j in range(2 * E2E_PARTITIONS):
            warm.trigger(f"warm-{j}", followups=False, plan="warmup")
        warm.flush()
        warm_ids = {m.message_id for m in _expected_pages(config, warm.load.events)}
        deadline = time.monotonic() + 120
        while True:
            collector.poll()
            if warm_ids <= {a[1] for a in collector.seen}:
                break
            stack.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"warm-up pages did not arrive (logs in {scdir})")
            time.sleep(0.3)
        say(f"  {sc.name}: stack up and warm in {time.monotonic() - t0:.0f} s")
        mark = len(collector.seen)
        offsets0 = topic_offsets(bootstrap, namespace)
        cpu0 = stack.cpu()
        broker = _broker_pid()
        other0 = (_cpu_seconds(broker) if broker else 0.0, *_machine_seconds())
        killed: dict[str, Any] = {}

        def on_tick(elapsed: float) -> None:
            if sc.kill_at is not None and not killed and elapsed >= sc.kill_at:
                victims = range(sc.workers // 2)
                partitions = sorted(p for i in victims for p in stack.kill_worker(i))
                killed.update({"at": time.time(), "partitions": partitions, "workers": len(victims)})
                say(f"  {sc.name}: SIGKILLed {len(victims)} of {sc.workers} workers (partitions {partitions})")

        load_started = time.time()
        if sc.rate is None:
            for i in range(sc.incidents):
                gen.trigger(f"{sc.name}-{i}", followups=False, plan=sc.plan, application=sc.application)
            gen.flush()
        else:
            gen.run_paced(sc.name, sc.rate, sc.seconds, on_tick)
        load_s = time.time() - load_started
        expected = _expected_pages(config, gen.load.events)
        by_id = {m.message_id: m for m in expected}
        step1 = {m.message_id for m in expected if m.step == 1 and m.repeat == 0}
        last_due = max((to_us(m.at) / 1e6 for m in expected), default=time.time())
        # Wait for every expected page (a burst: up to 5 minutes; paced: 2 minutes after the last is due).
        deadline = max(time.time(), last_due) + (300 if sc.rate is None else 120)
        step1_done: float | None = None
        seen_before, quiet_since = len(collector.seen), time.time()
        while True:
            collector.poll()
            got = {a[1] for a in collector.seen[mark:]}
            if step1_done is None and step1 <= got:
                step1_done = time.time()
            if by_id.keys() <= got or time.time() > deadline:
                break
            if len(collector.seen) > seen_before:
                seen_before, quiet_since = len(collector.seen), time.time()
            elif time.time() > max(last_due, quiet_since) + 5:
                # Quiet for 5 s: done if what is left was dropped by the sender (claimed or resolved),
                # or with flood control, whose live batches may differ from replay's (below)
                quiet_since = time.time()
                if sc.flood or by_id.keys() - got <= _deliveries(bootstrap, names.deliveries)["dropped_ids"]:
                    break
            stack.check_alive()
            time.sleep(0.5)
        done_at = time.time()
        cpu1 = stack.cpu()
        other1 = (_cpu_seconds(broker) if broker else 0.0, *_machine_seconds())
        offsets1 = topic_offsets(bootstrap, namespace)
        rss = stack.peak_rss_mb()
        time.sleep(2)  # late duplicates
        collector.poll()
    finally:

        def stop_and_drop() -> None:
            stack.stop()
            drop_namespace(bootstrap, namespace)

        stopper = threading.Thread(target=stop_and_drop, name=f"stop-{sc.name}")
        stopper.start()
        stopping.append(stopper)
    deliveries = _deliveries(bootstrap, names.deliveries)

    arrivals = collector.seen[mark:]
    first_accept: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _, message_id, at in arrivals:
        counts[message_id] = counts.get(message_id, 0) + 1
        first_accept.setdefault(message_id, at)
    missing = [i for i in by_id if i not in first_accept]
    dropped_by_sender = [i for i in missing if i in deliveries["dropped_ids"]]
    unexpected = {i for i in counts if i not in by_id}
    first_page: dict[str, float] = {}
    for message_id in step1:
        if message_id in first_accept:
            incident = by_id[message_id].incident_id
            first_page[incident] = min(first_page.get(incident, math.inf), first_accept[message_id])
    appended = gen.load.appended_ms
    trigger_to_page = [first_page[i] * 1000 - appended[i] for i in first_page if i in appended]
    lateness = [(first_accept[i] - to_us(m.at) / 1e6) * 1000 for i, m in by_id.items() if i in first_accept]
    incidents = len(appended)
    pages = len(by_id)
    result: dict[str, Any] = {
        "workers": sc.workers,
        "incidents": incidents,
        "events": len(gen.load.events),
        "expected_pages": pages,
        "accepted_pages": pages - len(missing),
        "pages_missing": len(missing) - len(dropped_by_sender),
        "pages_dropped_by_sender": len(dropped_by_sender),
        "pages_sent_twice": sum(1 for i, c in counts.items() if c > 1 and i in by_id),
        "unexpected_pages": len(unexpected),
        "trigger_to_first_page_ms": _stats_ms(trigger_to_page),
        "scheduled_to_accepted_ms": _stats_ms(lateness),
        "cpu_s_per_1000_incidents": {
            "processor": round((cpu1[0] - cpu0[0]) * 1000 / max(1, incidents), 2),
            "senders": round((cpu1[1] - cpu0[1]) * 1000 / max(1, incidents), 2),
            "broker": round((other1[0] - other0[0]) * 1000 / max(1, incidents), 2) if broker else None,
            "machine": round((other1[1] - other0[1]) * 1000 / max(1, incidents), 2),
        },
        "machine_cores": os.cpu_count(),
        "machine_steal_percent": round(100 * (other1[2] - other0[2]) / max(1e-9, other1[3] - other0[3]), 1),
        "peak_rss_mb": {"processor": round(rss[0]), "senders": round(rss[1])},
        "records_per_incident": records_per_incident(offsets0, offsets1, incidents),
        "load_s": round(load_s, 1),
        "measured_s": round(done_at - load_started, 1),
        "deliveries": deliveries["statuses"],
    }
    if unexpected:
        result["unexpected_examples"] = _explain_unexpected(bootstrap, names, unexpected, gen.load.events)
    if not gen.load.log_append_time:
        result["note"] = "trigger times are producer create times (the topic did not use LogAppendTime)"
    if gen.load.failed:
        result["produce_failures"] = gen.load.failed
    if sc.flood:
        result["note"] = (
            "flood control: a burst's triggers are due within the same few ms, where spec §7 lets "
            "live batches differ from replay's; missing/unexpected count those differences"
        )
    if sc.rate is None:
        first_append = min(appended.values()) / 1000 if appended else load_started
        result["all_step1_pages_s"] = round(step1_done - first_append, 2) if step1_done else None
        result["incidents_per_s"] = round(incidents / (step1_done - first_append)) if step1_done else None
    else:
        result["rate_per_s"] = sc.rate
        result["seconds"] = sc.seconds
    if killed:
        kill_at = killed["at"]
        victims = set(killed["partitions"])
        moved: dict[int, float] = {}
        for message_id, at in first_accept.items():
            m = by_id.get(message_id)
            if m is None or to_us(m.at) / 1e6 < kill_at:
                continue
            partition = partition_for(m.incident_id.encode(), E2E_PARTITIONS)
            if partition in victims:
                moved[partition] = min(moved.get(partition, math.inf), at)
        after = [
            (first_accept[i] - to_us(m.at) / 1e6) * 1000
            for i, m in by_id.items()
            if i in first_accept and to_us(m.at) / 1e6 >= kill_at - 1
        ]
        result["failover"] = {
            "killed_workers": killed["workers"],
            "killed_partitions": sorted(victims),
            "kill_at_s": sc.kill_at,
            "seconds_until_all_move": (
                round(max(moved.values()) - kill_at, 1) if moved and len(moved) == len(victims) else None
            ),
            "partitions_moving_again": len(moved),
            "max_lateness_after_kill_ms": round(max(after)) if after else None,
        }
    return result


# -- scenarios, the table, results.json ---------------------------------------------------------

IRIS_MESSAGES_PER_DAY = 700_000


def scenarios(quick: bool) -> list[Scenario]:
    """The full run stays under 15 minutes on a 2-core box; the quick one under 2."""
    if quick:
        return [
            Scenario("burst-w1", 1, incidents=200),
            Scenario("burst-w2", 2, incidents=200),
            Scenario("burst-sms-w2", 2, incidents=200, plan="sms-burst", application="prometheus"),
            Scenario("burst-flood-w1", 1, incidents=200, flood=True),
            Scenario("paced-100s", 1, rate=100, seconds=5),
            Scenario("failover-w2", 2, rate=30, seconds=12, kill_at=3),
        ]
    return [
        Scenario("burst-w1", 1, incidents=6000),
        Scenario("burst-w2", 2, incidents=6000),
        Scenario("burst-w4", 4, incidents=6000),
        # issue 20's outside check: 6,000 triggers of one plan, every step-1 page an SMS, 2 workers
        Scenario("burst-sms-w2", 2, incidents=6000, plan="sms-burst", application="prometheus"),
        Scenario("burst-flood-w1", 1, incidents=3000, flood=True),
        Scenario("paced-100s", 1, rate=100, seconds=60),  # 1 worker falls behind at 100/s here: a long drain
        Scenario("paced-2000min", 1, rate=2000 / 60, seconds=90),
        Scenario("failover-w2", 2, rate=100 / 3, seconds=90, kill_at=30),
    ]


WARM_BROKER = Scenario("warm-broker", 1, incidents=2000)
"""Run first and not reported: a broker started a minute before costs three to four times as much
CPU per incident as one that has worked a while (its JIT), so without it the first scenario
measured a colder broker than the others, and than production's."""


def run_e2e(
    bootstrap: str, chosen: list[Scenario], say: Callable[[str], None], warm_broker: bool = False
) -> dict[str, Any]:
    """The scenarios, in order; with `warm_broker`, `WARM_BROKER` before them."""
    (REPO / ".run" / "bench").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="e2e-", dir=REPO / ".run" / "bench"))
    say(f"end to end: logs in {workdir}")
    collector = Collector(workdir)
    results: dict[str, Any] = {}
    stopping: list[threading.Thread] = []
    try:
        config = workdir / "bench.yaml"
        config.write_text(e2e_config(collector.fakes))
        flood_config = workdir / "bench-flood.yaml"
        flood_config.write_text(e2e_config(collector.fakes, flood=True))
        for sc in [WARM_BROKER, *chosen] if warm_broker else chosen:
            started = time.monotonic()
            try:
                results[sc.name] = run_scenario(
                    sc, bootstrap, collector, flood_config if sc.flood else config, workdir, say, stopping
                )
            except Exception as exc:  # report and go on: the bench never asserts
                results[sc.name] = {"error": f"{type(exc).__name__}: {exc}"}
            say(
                f"  {sc.name} ({time.monotonic() - started:.0f} s): "
                + json.dumps({k: v for k, v in results[sc.name].items() if k != "deliveries"})
            )
        results.pop(WARM_BROKER.name, None)
    finally:
        for stopper in stopping:
            stopper.join()
        collector.close()
    for sc in chosen:
        figures = results.get(sc.name, {})
        if sc.profile and "incidents" in figures:  # the profiles are written as the processes exit
            figures["calls_per_incident"] = per_incident((workdir / sc.name).glob("*.prof"), figures["incidents"])
            say(f"  {sc.name}: calls per incident " + json.dumps(figures["calls_per_incident"]))
    return results


def _get(figures: dict[str, Any] | None, path: str) -> Any:
    value: Any = figures
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


ROWS: dict[str, list[tuple[str, str]]] = {
    "burst": [
        ("all step-1 pages accepted (s)", "all_step1_pages_s"),
        ("incidents/s", "incidents_per_s"),
        ("trigger → first page p50 (ms)", "trigger_to_first_page_ms.p50"),
        ("trigger → first page p99 (ms)", "trigger_to_first_page_ms.p99"),
    ],
    "paced": [
        ("trigger → first page p50 (ms)", "trigger_to_first_page_ms.p50"),
        ("trigger → first page p99 (ms)", "trigger_to_first_page_ms.p99"),
        ("trigger → first page max (ms)", "trigger_to_first_page_ms.max"),
        ("every page, due → accepted p99 (ms)", "scheduled_to_accepted_ms.p99"),
    ],
    "failover": [
        ("s until every escalation moves again", "failover.seconds_until_all_move"),
        ("max lateness after the kill (ms)", "failover.max_lateness_after_kill_ms"),
        ("trigger → first page p99 (ms)", "trigger_to_first_page_ms.p99"),
        ("late pages the sender dropped (claimed/resolved)", "pages_dropped_by_sender"),
    ],
    "common": [
        ("pages missing", "pages_missing"),
        ("pages sent twice", "pages_sent_twice"),
        ("unexpected pages (not in replay)", "unexpected_pages"),
        ("processor CPU s / 1000 incidents", "cpu_s_per_1000_incidents.processor"),
        ("senders CPU s / 1000 incidents", "cpu_s_per_1000_incidents.senders"),
        ("broker CPU s / 1000 incidents", "cpu_s_per_1000_incidents.broker"),
        ("whole machine CPU s / 1000 incidents", "cpu_s_per_1000_incidents.machine"),
        ("CPU time the host gave elsewhere (steal, %)", "machine_steal_percent"),
        ("processor peak RSS (MB)", "peak_rss_mb.processor"),
        ("senders peak RSS (MB)", "peak_rss_mb.senders"),
    ],
    "replay": [("events/s", "events_per_s"), ("Iris days/s (700,000 messages a day)", "iris_days_per_s")],
    "whatif": [("events/s", "events_per_s"), ("Iris week (min, extrapolated)", "iris_week_minutes_extrapolated")],
    "api": [
        ("single events/s", "single.events_per_s"),
        ("single p99 (ms)", "single.latency_ms_p99"),
        ("batch events/s", "batch_100.events_per_s"),
    ],
    "senders": [],
    "topic": [("incidents/s (to the messages topic)", "incidents_per_s"), ("p99 (ms)", "latency_ms_p99")],
}


def _rows_for(section: str) -> list[tuple[str, str]]:
    kind = section.split("-")[0]
    if kind in ("burst", "paced", "failover"):
        return ROWS[kind] + ROWS["common"]
    return ROWS.get(kind, [])


def print_table(results: dict[str, Any], previous: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name, justify in (("scenario", "left"), ("figure", "left"), ("previous", "right"), ("new", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]

    def show(value: Any) -> str:
        return "—" if value is None else f"{value:,}" if isinstance(value, int | float) else str(value)

    for section, figures in results.items():
        if isinstance(figures, dict) and "error" in figures:
            table.add_row(section, "[red]error[/red]", "", figures["error"][:80])
            continue
        label = section
        if isinstance(figures, dict) and "workers" in figures:
            label = (
                f"{section} ({figures['workers']} worker{'s' if figures['workers'] > 1 else ''}, "
                f"{figures.get('incidents', 0):,} incidents)"
            )
        for i, (name, path) in enumerate(_rows_for(section)):
            table.add_row(
                label if i == 0 else "",
                name,
                show(_get(previous.get(section), path)),
                show(_get(figures, path)),
                end_section=i == len(_rows_for(section)) - 1,
            )
    Console(width=None if sys.stdout.isatty() else 110).print(table)


def _load_previous(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("STREAMPROC_KAFKA", "127.0.0.1:19092"))
    parser.add_argument("--quick", action="store_true", help="small sizes (make bench-quick): under 2 minutes")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["replay", "e2e", "burst", "paced", "failover", "topic", "senders", "api", "whatif"],
        help="run only these (repeatable); default: replay and the end-to-end scenarios",
    )
    parser.add_argument(
        "--count",
        action="store_true",
        help="the count table (bench/counts.py): burst-w1 (or --only's) under cProfile; counts, not speed",
    )
    parser.add_argument("--replay-events", type=int, default=None)
    parser.add_argument("--api-requests", type=int, default=10_000, help="single-event requests for the api run")
    parser.add_argument("--api-concurrency", type=int, default=32, help="client connections for the api run")
    parser.add_argument("--whatif-per-day", type=int, default=20_000, help="incidents per day for the whatif run")
    parser.add_argument("--results", default=str(REPO / "bench" / "results.json"))
    parser.add_argument("--collector", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.collector:
        asyncio.run(_collector_main())
        return 0

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so every `finally` stops its children

    signal.signal(signal.SIGTERM, on_term)
    only = set(args.only) or ({"burst"} if args.count else {"replay", "e2e"})
    if "e2e" in only:
        only |= {"burst", "paced", "failover"}
    kind = "count" if args.count else "quick" if args.quick else "full"
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f}s] {text}", flush=True)

    results: dict[str, Any] = {}
    if "replay" in only:
        results["replay"] = bench_replay(args.replay_events or (5_000 if args.quick else 100_000))
        say("replay: " + json.dumps(results["replay"]))
    chosen = [sc for sc in scenarios(args.quick) if sc.name.split("-")[0] in only]
    if args.count:
        chosen = [dataclasses.replace(sc, profile=True) for sc in chosen if args.only or sc.name == "burst-w1"]
    if chosen:
        # The warm-up only when the broker may be cold and the figures are compared: not for the
        # quick run's smoke check, nor the count table (counts do not depend on the broker).
        results.update(run_e2e(args.bootstrap, chosen, say, warm_broker=not (args.quick or args.count)))
    if "topic" in only:
        results["topic"] = bench_processor(args.bootstrap, 600 if args.quick else 6000)
        say("topic (1 worker, burst, to the messages topic): " + json.dumps(results["topic"]))
    if "senders" in only:
        from bench.senders import bench as sender_bench

        results["senders"] = asyncio.run(sender_bench(args.bootstrap))
        say("senders: " + json.dumps(results["senders"]))
    if "api" in only:
        results["api"] = bench_api(args.bootstrap, args.api_requests // (10 if args.quick else 1), args.api_concurrency)
        say("api: " + json.dumps(results["api"]))
    if "whatif" in only:
        results["whatif"] = bench_whatif(args.whatif_per_day // (10 if args.quick else 1))
        say("whatif: " + json.dumps(results["whatif"]))

    path = Path(args.results)
    stored = _load_previous(path)
    before = stored.get(kind, {})
    previous: dict[str, Any] = dict(before.get("previous", {}).get("results", {}))
    previous.update(before.get("results", {}))  # a section not re-run keeps its older figures
    merged = {**before.get("results", {}), **results}
    stored[kind] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.monotonic() - started),
        "host": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "results": merged,
        "previous": {"at": before.get("at"), "results": before.get("results", {})},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=1, default=str) + "\n")
    print_table(
        results,
        previous,
        f"make bench{'-quick' if args.quick else ''}: previous ({before.get('at', 'none')})"
        f" → new, {round(time.monotonic() - started)} s",
    )
    print(f"figures written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
