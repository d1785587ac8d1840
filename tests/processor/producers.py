"""Producers of `streamproc.incidents` as monitoring pipelines run them: other clients, other
partitioners, other keys or none. Each sends one JSON event at a time and says where it went."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Producer

from tests.harness import REPO


class Sink(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


KeyOf = Callable[[dict[str, Any]], bytes | None]


def by_incident(event: dict[str, Any]) -> bytes | None:
    return str(event["incident_id"]).encode()


def by_host(event: dict[str, Any]) -> bytes | None:
    """What a pipeline keyed by its own notion (the alerting host) would send."""
    return f"host-{sum(map(ord, event['incident_id'])) % 3}".encode()


def no_key(event: dict[str, Any]) -> bytes | None:
    return None


class ConfluentSink:
    """confluent-kafka's Producer at its defaults: librdkafka's `consistent_random` (CRC32) partitioner."""

    def __init__(self, bootstrap: str, topic: str, key_of: KeyOf):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1})
        self.topic, self.key_of = topic, key_of

    def send(self, event: dict[str, Any]) -> None:
        self.producer.produce(self.topic, key=self.key_of(event), value=json.dumps(event).encode())
        self.producer.flush(10)

    def close(self) -> None:
        assert self.producer.flush(30) == 0


def kcat_path() -> str:
    """Debian's kcat (a real librdkafka producer), fetched into .cache by tools/debian/fetch.sh."""
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "debian" / "fetch.sh"), "kcat"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"could not fetch kcat:\n{proc.stderr}")
    return proc.stdout.strip()


class KcatSink:
    """`kcat -P -K '\t'`, one run per event (as a pipeline shelling out would do it): kcat reads
    its standard input in blocks, so a long-running kcat would hold events back."""

    def __init__(self, bootstrap: str, topic: str, key_of: KeyOf):
        binary = Path(kcat_path())
        root = binary.parents[2]
        self.env = {**os.environ, "LD_LIBRARY_PATH": str(root / "usr" / "lib" / "x86_64-linux-gnu")}
        self.command = [str(binary), "-P", "-b", bootstrap, "-t", topic, "-K", "\t"]
        self.key_of = key_of

    def send(self, event: dict[str, Any]) -> None:
        key = self.key_of(event)
        assert key is not None and b"\t" not in key
        subprocess.run(
            self.command, input=key + b"\t" + json.dumps(event).encode() + b"\n", env=self.env, check=True, timeout=30
        )

    def close(self) -> None:
        pass
