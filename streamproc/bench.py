"""`make bench`: measure, never assert. Prints figures from one run.

1. replay: events per second through the engine on a virtual clock (one core);
2. processor: one worker, a burst of incidents: incidents per second sustained, and p50/p99 of
   (message record append time - trigger record append time);
3. senders: messages per second per mode through local vendor fakes, and added latency;
4. api: one `streamproc api` process, `POST /v1/events` from concurrent client connections:
   accepted events per second, and p50/p99 of the accept latency (request sent -> 202, which
   comes after the broker acknowledged the events), for single events and for batches.
5. whatif: a week of generated traffic through `whatif` (two replays, the report, the HTML),
   extrapolated linearly to a week at Iris scale (700,000 events a day).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from streamproc.localnet import free_port, terminate

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
        lines.append(json.dumps({"type": "trigger", "at": format_us(at), "incident_id": f"i{i}",
                                 "application": "mon", "plan": "page",
                                 "context": {"summary": "disk", "host": f"h{i}", "severity": "high"}}))
        kind = "claim" if i % 2 else "resolve"
        lines.append(json.dumps({"type": kind, "at": format_us(at + (i % 900) * 1_000_000), "incident_id": f"i{i}"}))
    started = time.perf_counter()
    report = replay(engine, lines)
    out = report.lines()
    elapsed = time.perf_counter() - started
    return {"events": len(lines), "outcomes": len(out), "seconds": round(elapsed, 2),
            "events_per_s": round(len(lines) / elapsed)}



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
        [sys.executable, "-m", "streamproc.cli", "worker", "--config", str(tmp / "c.yaml"), "--bootstrap", bootstrap,
         "--partitions", str(partitions), "--data-dir", str(tmp / "data"), "--web-port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
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
            event = {"type": "trigger", "at": format_us(int(time.time() * 1e6)), "incident_id": key,
                     "application": "mon", "plan": "page", "context": {"summary": "disk", "host": "h"}}
            producer.produce(names.incidents, key=key.encode(), value=json.dumps(event).encode(),
                             on_delivery=delivered)
            producer.poll(0)
        producer.flush(60)
        consumer = Consumer(client_config(bootstrap, **{"group.id": f"bench-{uuid.uuid4().hex}",
                                                        "enable.auto.commit": False}))
        consumer.assign([TopicPartition(names.messages(m), p, 0) for m in ("sms", "email")
                         for p in range(partitions)])
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
            "incidents": incidents, "paged": len(first_message),
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
        "requests": len(bodies), "events_per_request": events_per_body, "accepted_events": accepted,
        "failed": failures or None, "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed), "events_per_s": round(accepted / elapsed),
        "latency_ms_p50": round(pct(ms, 0.5), 1) if ms else None,
        "latency_ms_p99": round(pct(ms, 0.99), 1) if ms else None,
        "latency_ms_max": round(max(ms), 1) if ms else None,
    }


def bench_api(bootstrap: str, requests: int, concurrency: int = 32, batch: int = 100,
              batch_requests: int = 500, partitions: int = 12) -> dict[str, Any]:
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
        "api:\n  rate: {rate: 1000000, burst: 1000000}\n")  # measure the door, not the rate limit
    (tmp / "c.yaml").write_text(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "STREAMPROC_NAMESPACE": namespace}
    log = open(tmp / "api.log", "wb")  # noqa: SIM115
    api = subprocess.Popen(
        [sys.executable, "-m", "streamproc.cli", "api", "--config", str(tmp / "c.yaml"), "--bootstrap", bootstrap,
         "--port", str(port), "--partitions", str(partitions)],
        env=env, stdout=log, stderr=subprocess.STDOUT)
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
            return {"type": "trigger", "at": format_us(int(time.time() * 1e6)), "incident_id": f"a{i}",
                    "plan": "page", "context": {"summary": "disk", "host": f"h{i % 50}", "severity": "high"}}

        def single(offset: int, n: int) -> list[bytes]:
            return [json.dumps(event(offset + i)).encode() for i in range(n)]

        results: dict[str, Any] = {"concurrency": concurrency}
        asyncio.run(_drive_api(url, single(0, min(1000, requests)), 1, concurrency))  # warm-up, not reported
        warm = min(1000, requests)
        cpu_before = _cpu_seconds(api.pid)
        results["single"] = asyncio.run(_drive_api(url, single(warm, requests), 1, concurrency))
        results["single"]["api_cpu_percent"] = round(
            100 * (_cpu_seconds(api.pid) - cpu_before) / results["single"]["seconds"])
        written = warm + requests
        if batch_requests:
            bodies = [json.dumps([event(written + r * batch + i) for i in range(batch)]).encode()
                      for r in range(batch_requests)]
            cpu_before = _cpu_seconds(api.pid)
            results[f"batch_{batch}"] = asyncio.run(_drive_api(url, bodies, batch, concurrency))
            results[f"batch_{batch}"]["api_cpu_percent"] = round(
                100 * (_cpu_seconds(api.pid) - cpu_before) / results[f"batch_{batch}"]["seconds"])
            written += batch * batch_requests
        consumer = Consumer(client_config(bootstrap, **{"group.id": f"bench-{uuid.uuid4().hex}"}))
        try:
            on_topic = sum(consumer.get_watermark_offsets(TopicPartition(names.incidents, p), timeout=10)[1]
                           for p in range(partitions))
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
    return {"events": len(items), "incidents": len(report.incidents), "parse_s": round(parsed - started, 2),
            "replays_and_report_s": round(replayed - parsed, 2), "html_s": round(done - replayed, 2),
            "events_per_s": round(len(items) / (done - started)),
            "iris_week_events": IRIS_EVENTS_PER_WEEK,
            "iris_week_minutes_extrapolated": round(per_event * IRIS_EVENTS_PER_WEEK / 60, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="streamproc.bench")
    parser.add_argument("--bootstrap", default=os.environ.get("STREAMPROC_KAFKA", "127.0.0.1:19092"))
    parser.add_argument("--replay-events", type=int, default=100_000)
    parser.add_argument("--incidents", type=int, default=6000)
    parser.add_argument("--paced-rate", type=int, default=100, help="incidents/s for the latency run")
    parser.add_argument("--api-requests", type=int, default=10_000, help="single-event requests for the api run")
    parser.add_argument("--api-concurrency", type=int, default=32, help="client connections for the api run")
    parser.add_argument("--whatif-per-day", type=int, default=20_000, help="incidents per day for the whatif run")
    parser.add_argument("--only", choices=["replay", "processor", "senders", "api", "whatif"], default=None)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    if args.only in (None, "replay"):
        results["replay"] = bench_replay(args.replay_events)
        print("replay:", json.dumps(results["replay"]), flush=True)
    if args.only in (None, "whatif"):
        results["whatif"] = bench_whatif(args.whatif_per_day)
        print(f"whatif (a week, {args.whatif_per_day} incidents a day, extrapolated to a week at Iris scale):",
              json.dumps(results["whatif"]), flush=True)
    if args.only in (None, "processor"):
        results["processor"] = bench_processor(args.bootstrap, args.incidents)
        print(f"processor (1 worker, burst of {args.incidents}):", json.dumps(results["processor"]), flush=True)
        results["processor_paced"] = bench_processor(args.bootstrap, args.paced_rate * 20, rate=args.paced_rate)
        print(f"processor (1 worker, {args.paced_rate}/s for 20 s):", json.dumps(results["processor_paced"]),
              flush=True)
    if args.only in (None, "senders"):
        try:
            from streamproc.senders.bench import bench as sender_bench
        except ImportError as exc:
            print(f"senders: not measured ({exc})")
        else:
            results["senders"] = asyncio.run(sender_bench(args.bootstrap))
            print("senders:", json.dumps(results["senders"]), flush=True)
    if args.only in (None, "api"):
        results["api"] = bench_api(args.bootstrap, args.api_requests, args.api_concurrency)
        for name, figures in results["api"].items():
            if isinstance(figures, dict):
                print(f"api ({name}, {args.api_concurrency} connections):", json.dumps(figures), flush=True)
        print("api (records on the incidents topic):", results["api"]["on_topic"],
              f"(expected {results['api']['expected_on_topic']})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
