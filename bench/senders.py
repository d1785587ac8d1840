"""Sender-stage benchmark: messages per second per mode, and the latency the stage adds.

Runs one worker for every mode on a real broker, with the vendors pointed at the local
fakes of `tests/fakes` (so it must run from a checkout). Two phases per mode:

- throughput: a burst of messages produced at once; rate = messages / (last arrival at
  the fake - produce start). Rate limits are set far above what is reached, so this is
  what the stage itself can do, not the configured limit.
- latency: messages produced one at a time at a modest pace; added latency = arrival at
  the fake - the record's timestamp (set at produce, so it includes the broker append).

It reports; it never asserts. `python -m bench.senders [BOOTSTRAP]` prints JSON.

`--process` measures cost instead: a real `streamproc sender` child process (as `make run` and
`make bench` start it, JSON logs to a file), one burst per mode, and the child's CPU seconds
(/proc utime+stime, which other load on the box does not distort) per 1,000 pages.
`--count N` sets the burst, `--sender-arg=--loglevel=warning` passes options to the sender.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamproc.config.senders import SendersSettings
from streamproc.kafka.security import client_config
from streamproc.kafka.topics import Topics
from streamproc.senders.worker import run_sender
from streamproc.wire.outcomes import Message, outcome_dict
from tests import fakes

MODES = ("sms", "call", "slack", "email", "webhook")
_ID = re.compile(rb"bench-[0-9a-f]{8}-\d+")


def _message(mode: str, message_id: str, destination: str, n: int) -> Message:
    return Message(
        at=datetime.now(UTC),
        incident_id=f"bench-{n}",
        instance=1,
        plan="bench",
        application=f"app{n % 3}",
        step=1,
        notification=0,
        repeat=0,
        role="user",
        target=f"user{n % 50}",
        user=f"user{n % 50}",
        priority="high",
        mode=mode,  # type: ignore[arg-type]
        destination=destination,
        subject=f"bench {message_id}",
        body=f"bench page {message_id}",
        render_error=False,
        message_id=message_id,
    )


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Arrivals:
    """Arrival time (epoch seconds) per message id, read from what the fakes received."""

    def __init__(self, fakes: dict[str, Any], smtp: Any) -> None:
        self._fakes = fakes
        self._smtp = smtp

    def get(self, mode: str) -> dict[str, float]:
        found: dict[str, float] = {}
        if mode == "email":
            entries = [(m.data, m.at) for m in self._smtp.messages]
        else:
            entries = [(r.body, r.at) for r in self._fakes[mode].delivered]
        for body, at in entries:
            match = _ID.search(body)
            if match:
                found.setdefault(match.group().decode(), at)
        return found


async def bench(bootstrap: str, burst: int = 300, trickle: int = 40, trickle_rate: float = 20.0) -> dict[str, Any]:
    """Measure every mode through the local fakes on the broker at `bootstrap`."""
    fakes_mod: Any = fakes
    twilio, slack, hook = fakes_mod.FakeTwilio(), fakes_mod.FakeSlack(), fakes_mod.FakeWebhook()
    for fake in (twilio, slack, hook):
        await fake.start()
    smtp = fakes_mod.FakeSmtp().start()
    fast = {"rate": 100000, "burst": 10000}
    settings = SendersSettings.model_validate(
        {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": "+15559990000",
                "base_url": twilio.url,
                "gather_url": "http://127.0.0.1:9/gather",
            },
            "slack": {"token": slack.token, "base_url": slack.api_url},
            "smtp": {"host": smtp.host, "port": smtp.port},
            "webhook": {"secret": "bench"},
            "rates": {mode: fast for mode in MODES},
            "concurrency": 16,
        }
    )
    destinations = {
        "sms": "+15550000001",
        "call": "+15550000001",
        "slack": "U01BENCH",
        "email": "bench@example.com",
        "webhook": hook.hook_url,
    }
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
    producer = Producer(client_config(bootstrap, **{"linger.ms": 5, "partitioner": "murmur2_random"}))
    arrivals = _Arrivals({"sms": twilio, "call": twilio, "slack": slack, "webhook": hook}, smtp)
    stamp = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    counter = 0

    def produce(mode: str, count: int) -> list[str]:
        nonlocal counter
        ids = []
        for _ in range(count):
            counter += 1
            message_id = f"bench-{stamp}-{counter}"
            msg = _message(mode, message_id, destinations[mode], counter)
            now = time.time()
            sent_at[message_id] = now
            producer.produce(
                topics.messages(mode),
                key=msg.user.encode(),
                value=json.dumps(outcome_dict(msg)).encode(),
                timestamp=int(now * 1000),
            )
            ids.append(message_id)
        producer.flush(30)
        return ids

    async def arrived(mode: str, ids: list[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = arrivals.get(mode)
            if all(i in seen for i in ids):
                break
            await asyncio.sleep(0.05)
        seen = arrivals.get(mode)
        return {i: seen[i] for i in ids if i in seen}

    report: dict[str, Any] = {"bootstrap": bootstrap, "burst": burst, "trickle": trickle, "modes": {}}
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_sender(list(MODES), bootstrap, settings, lambda user: None, stop=stop, topics=topics)
    )
    try:
        # Warm-up: one message per mode, so the group has settled and clients are open.
        for mode in MODES:
            await arrived(mode, produce(mode, 1), 60)
        for mode in MODES:
            start = time.time()
            ids = produce(mode, burst)
            got = await arrived(mode, ids, 120)
            elapsed = max(got.values()) - start if got else float("nan")
            latencies: list[float] = []
            for _ in range(trickle):
                [one] = produce(mode, 1)
                found = await arrived(mode, [one], 10)
                if one in found:
                    latencies.append((found[one] - sent_at[one]) * 1000)
                await asyncio.sleep(1 / trickle_rate)
            report["modes"][mode] = {
                "vendor_fake": "smtp" if mode == "email" else mode,
                "delivered": len(got),
                "msgs_per_s": round(len(got) / elapsed, 1) if got and elapsed > 0 else None,
                "added_latency_ms": {
                    "p50": round(_percentile(latencies, 0.50), 1),
                    "p99": round(_percentile(latencies, 0.99), 1),
                    "mean": round(statistics.fmean(latencies), 1) if latencies else None,
                    "samples": len(latencies),
                },
            }
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        for fake in (twilio, slack, hook):
            await fake.close()
        smtp.stop()
    return report


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (librdkafka names its threads `rdk:...`)."""
    found: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm, rest = task.joinpath("stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        name = comm.split("(", 1)[1]
        name = "rdk:broker" if name.startswith("rdk:broker") else name
        fields = rest.split()
        found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def process_bench(
    bootstrap: str,
    count: int = 500,
    sender_args: list[str] | None = None,
    keep_logs: bool = False,
    modes: tuple[str, ...] = MODES,
    rate: float = 0.0,
) -> dict[str, Any]:
    """CPU seconds per 1,000 pages of a `streamproc sender` child process, per mode and overall:
    each mode's `count` messages at once, or at `rate` per second when given (pages trickling
    in, as they leave a processor, are handled in smaller batches and cost more each)."""
    fakes_mod: Any = fakes
    twilio, slack, hook = fakes_mod.FakeTwilio(), fakes_mod.FakeSlack(), fakes_mod.FakeWebhook()
    for fake in (twilio, slack, hook):
        await fake.start()
    smtp = fakes_mod.FakeSmtp().start()
    fast = {"rate": 100000, "burst": 100000}
    config = {
        "senders": {
            "twilio": {
                "account_sid": twilio.account_sid,
                "auth_token": twilio.auth_token,
                "from_number": "+15559990000",
                "base_url": twilio.url,
                "gather_url": "http://127.0.0.1:9/voice",
                "status_callback_url": "http://127.0.0.1:9/status",
            },
            "slack": {"token": slack.token, "base_url": slack.api_url},
            "smtp": {"host": smtp.host, "port": smtp.port},
            "webhook": {"secret": "bench"},
            "rates": dict.fromkeys(MODES, fast),
            "concurrency": 32,
            "max_queued": 100000,
        },
        "users": {},
    }
    workdir = Path(tempfile.mkdtemp(prefix="sender-bench-"))
    (workdir / "config.yaml").write_text(json.dumps(config))
    destinations = {
        "sms": "+15550000001",
        "call": "+15550000001",
        "slack": "U01BENCH",
        "email": "bench@example.com",
        "webhook": hook.hook_url,
    }
    topics = Topics(f"bench{uuid.uuid4().hex[:6]}")
    producer = Producer(client_config(bootstrap, **{"linger.ms": 5, "partitioner": "murmur2_random"}))
    arrivals = _Arrivals({"sms": twilio, "call": twilio, "slack": slack, "webhook": hook}, smtp)
    stamp = uuid.uuid4().hex[:8]
    counter = 0

    def produce(mode: str, n: int, paced: float = 0.0) -> list[str]:
        nonlocal counter
        ids = []
        started = time.monotonic()
        for k in range(n):
            if paced:
                time.sleep(max(0.0, started + k / paced - time.monotonic()))
                producer.poll(0)
            counter += 1
            message_id = f"bench-{stamp}-{counter}"
            msg = _message(mode, message_id, destinations[mode], counter)
            producer.produce(topics.messages(mode), key=msg.user.encode(), value=json.dumps(outcome_dict(msg)).encode())
            ids.append(message_id)
        producer.flush(30)
        return ids

    async def arrived(mode: str, ids: list[str], timeout: float) -> float | None:
        """Wall time of the last arrival once all `ids` arrived (None: timed out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = arrivals.get(mode)
            if all(i in seen for i in ids):
                return max(seen[i] for i in ids)
            await asyncio.sleep(0.25)
        return None

    log_file = open(workdir / "sender.log", "wb")  # noqa: SIM115
    env = {**os.environ, "STREAMPROC_LOG_FORMAT": "json", "STREAMPROC_NAMESPACE": topics.namespace}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamproc.senders.worker",
            "--config",
            str(workdir / "config.yaml"),
            "--bootstrap",
            bootstrap,
            *(sender_args or []),
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    report: dict[str, Any] = {
        "count_per_mode": count,
        "rate": rate or None,
        "sender_args": sender_args or [],
        "modes": {},
    }
    try:
        for mode in modes:  # warm-up: the group has settled and every vendor client is open
            if await arrived(mode, produce(mode, 1), 90) is None:
                raise RuntimeError(f"warm-up page of {mode} never arrived (see {workdir}/sender.log)")
        cpu0 = _cpu_seconds(child.pid)
        await asyncio.sleep(10)
        report["idle_cpu_percent"] = round((_cpu_seconds(child.pid) - cpu0) * 10, 1)
        threads0 = _thread_cpu(child.pid)
        total_cpu = 0.0
        total = 0
        for mode in modes:
            cpu0, start = _cpu_seconds(child.pid), time.time()
            ids = await asyncio.to_thread(produce, mode, count, rate) if rate else produce(mode, count)
            last = await arrived(mode, ids, 180)
            await asyncio.sleep(0.5)  # the delivery records of the last pages
            cpu = _cpu_seconds(child.pid) - cpu0
            total_cpu += cpu
            total += len(ids)
            report["modes"][mode] = {
                "cpu_s_per_1000": round(cpu * 1000 / count, 2),
                "msgs_per_s": round(count / (last - start), 1) if last else None,
            }
        report["cpu_s_per_1000_pages"] = round(total_cpu * 1000 / max(1, total), 2)
        threads1 = _thread_cpu(child.pid)
        report["cpu_s_per_1000_by_thread"] = {
            name: round((cpu - threads0.get(name, 0.0)) * 1000 / max(1, total), 2)
            for name, cpu in sorted(threads1.items(), key=lambda kv: -kv[1])
            if cpu - threads0.get(name, 0.0) > 0
        }
        report["peak_rss_mb"] = _vm_hwm_mb(child.pid)
    finally:
        child.terminate()
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log_file.close()
        for fake in (twilio, slack, hook):
            await fake.close()
        smtp.stop()
        if keep_logs:
            report["logs"] = str(workdir)
        else:
            for path in workdir.iterdir():
                path.unlink()
            workdir.rmdir()
    return report


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.senders", description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap", nargs="?", default=os.environ.get("STREAMPROC_KAFKA", "127.0.0.1:19092"))
    parser.add_argument("--process", action="store_true", help="CPU per 1,000 pages of a sender child process")
    parser.add_argument("--count", type=int, default=500, help="burst per mode (--process)")
    parser.add_argument("--sender-arg", action="append", default=[], help="an option for the sender (--process)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the sender's log (--process)")
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second (--process; default: at once)")
    parser.add_argument("--mode", action="append", choices=MODES, help="a mode to measure (--process; default all)")
    args = parser.parse_args(argv)
    if args.process:
        result = asyncio.run(
            process_bench(
                args.bootstrap, args.count, args.sender_arg, args.keep_logs, tuple(args.mode or MODES), args.rate
            )
        )
    else:
        result = asyncio.run(bench(args.bootstrap))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
