"""Run `streamproc api` as users do (a child process with a config file) and read what it wrote.

Each `ApiProcess` gets its own topic namespace (`STREAMPROC_NAMESPACE`), so tests sharing the
session broker never see each other's events.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import trustme
from confluent_kafka import Consumer, TopicPartition

from streamproc.kafka.topics import Topics
from streamproc.localnet import free_port, terminate

CONFIG = """
applications:
  grafana:
    key: "grafana-key"
    secondary_key: "grafana-key-2"
    routing_keys: {R0UTINGKEY0000000000000000000001: db-critical}
  alertmanager:
    key: "am-key"
  throttled:
    key: "slow-key"
    rate: {rate: 0.2, burst: 2}
    routing_keys: {SLOWROUTINGKEY: db-critical}
users:
  alice:
    contacts: {sms: "+15550000001", call: "+15550000001", email: "alice@example.com", slack: "U01ALICE"}
  bob:
    contacts: {sms: "+15550000002", email: "bob@example.com", slack: "U02BOB"}
teams:
  db: {members: [alice, bob]}
plans:
  db-critical:
    steps:
      - - {role: user, target: alice, priority: high, template: t, repeat: 5, wait: 2}
  dyn:
    steps:
      - - {dynamic: 0, priority: high, template: t}
templates:
  t:
    default:
      default: {subject: "{{ summary }}", body: "{{ incident.id }}: {{ summary }}"}
heartbeats:
  nightly-backup: {application: grafana, plan: db-critical, interval: 26h}
  am-pipeline: {application: alertmanager, plan: db-critical, interval: 5m}
api:
  max_body_bytes: 4096
"""


class ApiProcess:
    def __init__(
        self, bootstrap: str, tmp: Path, config: str = CONFIG, env: dict[str, str] | None = None, tls: bool = False
    ) -> None:
        self.bootstrap = bootstrap
        self.namespace = f"apitest-{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.namespace)
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ca_file: str | None = None
        self.ssl_context: ssl.SSLContext | None = None
        if tls:  # a throwaway CA (trustme) and a certificate for 127.0.0.1 signed by it
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1")
            cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "api.pem"))
            ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
            self.ca_file = str(tmp / "ca.pem")
            self.ssl_context = ssl.create_default_context(cafile=self.ca_file)
            config += f"\n  tls_cert_file: {tmp / 'api.pem'}\n  tls_key_file: {tmp / 'api.pem'}\n"
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(config)
        self.log_path = tmp / f"api-{self.port}.log"
        self.env = {**os.environ, "STREAMPROC_NAMESPACE": self.namespace, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> ApiProcess:
        """Starts the process and waits until it answers; stops it again when it does not."""
        try:
            return self._start(wait_ready, timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, wait_ready: bool, timeout: float) -> ApiProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamproc.cli",
                    "api",
                    "--config",
                    str(self.config_path),
                    "--bootstrap",
                    self.bootstrap,
                    "--port",
                    str(self.port),
                    "--partitions",
                    "3",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        path = "/ready" if wait_ready else "/healthz"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamproc api exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2, context=self.ssl_context) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamproc api not {path} after {timeout} s: {self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
            self.proc = None


def read_topic(
    bootstrap: str, topic: str, expect: int | None = None, timeout: float = 10.0, settle: float = 1.0
) -> list[tuple[bytes | None, dict[str, Any]]]:
    """Records of `topic` as (key, JSON value), from the beginning.

    expect=None: everything up to the end offsets as they are now (what the API acknowledged
    before this call is all there). expect=N: reads until N records arrived, then `settle`
    more seconds to see extra ones, or until `timeout` (for records other processes write)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = list(meta.partitions) if meta is not None and meta.partitions else []
        if not partitions:
            return []
        ends: dict[int, int] = {}
        if expect is None:
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high > low:
                    ends[p] = high
            if not ends:
                return []
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        out: list[tuple[bytes | None, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            out.append((msg.key(), json.loads(msg.value())))
            if expect is None:
                if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                    ends.pop(msg.partition(), None)
                if not ends:
                    return out
            elif len(out) >= expect:
                deadline = min(deadline, time.monotonic() + settle)
        if expect is None:
            raise TimeoutError(f"{topic}: partitions {sorted(ends)} not read to their end in {timeout} s")
        return out
    finally:
        consumer.close()
