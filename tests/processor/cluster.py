"""Run real `streamproc worker` processes against the test broker, and read what they produce.

Each `Stack` has its own namespace (topics, consumer group, changelog), so test cases sharing one
broker never see each other's records.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from streamproc.kafka.admin import ensure_topics
from streamproc.kafka.clients import producer_config
from streamproc.kafka.topics import Topics
from streamproc.localnet import free_port, terminate
from streamproc.processor.catchup import barrier_token
from streamproc.wire.common import MODES

REPO = Path(__file__).resolve().parents[2]
AUDIT_KINDS = {"triggered", "claimed", "unclaimed", "resolved", "absorbed"}


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except Exception as exc:  # 503 while recovering, or not listening yet
            body = getattr(exc, "read", None)
            if body is not None:
                try:
                    return dict(json.loads(body()))
                except Exception:
                    return None
            return None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        terminate(self.proc)


@dataclass
class Stack:
    bootstrap: str
    config: Path
    workdir: Path
    partitions: int = 6
    namespace: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.topics = Topics(self.namespace)
        ensure_topics(self.bootstrap, self.partitions, names=self.topics)
        self.producer = Producer(producer_config(self.bootstrap))

    def start_worker(self, name: str, store: str = "rocksdb") -> Worker:
        port = free_port()
        log = self.workdir / f"{name}.log"
        env = {
            **os.environ,
            "STREAMPROC_NAMESPACE": self.namespace,
            "STREAMPROC_SESSION_TIMEOUT": "6",
            "STREAMPROC_INSTANCE_ID": name,
        }
        cmd = [
            sys.executable,
            "-m",
            "streamproc.cli",
            "worker",
            "--config",
            str(self.config),
            "--bootstrap",
            self.bootstrap,
            "--partitions",
            str(self.partitions),
            "--store",
            store,
            "--data-dir",
            str(self.workdir / name),
            "--web-port",
            str(port),
            "--tick-interval",
            "0.1",
            "--loglevel",
            "info",
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        worker = Worker(name, proc, port, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, workers: Iterable[Worker] | None = None, timeout: float = 90) -> None:
        """Until every live worker reports ready and together they own every partition."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [w for w in (workers or self.workers) if w.proc.poll() is None]
            statuses = [w.status() for w in live]
            if statuses and all(s and s["ready"] for s in statuses):
                owned = sorted(p for s in statuses if s for p in s["partitions"])
                if owned == list(range(self.partitions)):
                    return
            time.sleep(0.3)
        logs = "\n".join(w.log.read_text()[-3000:] for w in self.workers)
        raise TimeoutError(f"workers not ready in {timeout}s:\n{logs}")

    def produce(self, event: dict[str, Any]) -> None:
        self.producer.produce(
            self.topics.incidents, key=event["incident_id"].encode(), value=json.dumps(event).encode()
        )
        self.producer.poll(0)

    def produce_raw(self, key: bytes | None, value: bytes) -> None:
        self.producer.produce(self.topics.incidents, key=key, value=value)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    # ---- reading what came out ---------------------------------------------------------------
    def output_topics(self) -> list[str]:
        return [self.topics.messages(m) for m in MODES if m != "drop"] + [self.topics.outcomes]

    def read(
        self, topics: list[str], until: Any = None, timeout: float = 60.0
    ) -> list[tuple[str, dict[str, Any], int]]:
        """(topic, JSON value, append timestamp ms) of every record; stops when `until(records)`
        is true and nothing new arrived for a moment, or at the timeout."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.assign(
            [TopicPartition(t, p, 0) for t in topics for p in range(1 if t.endswith("deadletter") else self.partitions)]
        )
        records: list[tuple[str, dict[str, Any], int]] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None:
                    if until is not None and until(records) and time.monotonic() - quiet_since > 1.5:
                        break
                    continue
                if msg.error():
                    continue
                quiet_since = time.monotonic()
                records.append((msg.topic(), json.loads(msg.value()), msg.timestamp()[1]))
        finally:
            consumer.close()
        return records

    def placed(self, topic: str) -> list[tuple[int, bytes | None, dict[str, Any]]]:
        """(partition, key, JSON value) of every record now on `topic`."""
        consumer = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(self.partitions)]
        consumer.assign([TopicPartition(topic, p, 0) for p in range(self.partitions) if ends[p] > 0])
        left = sum(ends)
        placed: list[tuple[int, bytes | None, dict[str, Any]]] = []
        deadline = time.monotonic() + 30
        try:
            while left > 0 and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                left -= 1
                if barrier_token(msg.headers()) is None:  # not one of the processor's barriers
                    placed.append((msg.partition(), msg.key(), json.loads(msg.value())))
        finally:
            consumer.close()
        return placed

    def outcomes(self, until: Any = None, timeout: float = 60.0) -> list[tuple[dict[str, Any], int]]:
        """Spec outcomes (messages and outcome records, not audits) with their append times."""
        return [
            (value, ts)
            for _, value, ts in self.read(self.output_topics(), until, timeout)
            if value.get("kind") not in AUDIT_KINDS
        ]


@contextlib.contextmanager
def live_stack(bootstrap: str, workdir: Path, config_text: str) -> Iterator[Stack]:
    """A `Stack` with `config_text` as its config; its workers are stopped at the end."""
    config = workdir / "config.yaml"
    config.write_text(config_text)
    s = Stack(bootstrap, config, workdir)
    try:
        yield s
    finally:
        s.stop()


def replay_outcomes(config: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc.cli", "replay", "--config", str(config), "--input", "-"],
        input="\n".join(json.dumps(e) for e in events),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return [json.loads(line) for line in proc.stdout.splitlines()]


def iso_ms(epoch_s: float) -> str:
    from streamproc.timeutil import format_us

    return format_us(round(epoch_s * 1000) * 1000)
