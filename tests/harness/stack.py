"""A live stack: one topic namespace (topics, consumer groups, changelogs of its own, so tests
sharing a broker never see each other's records) with `streamproc worker`s, senders and an API on
it, events produced into it, and what came out read back."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from streamproc.kafka.admin import ensure_topics
from streamproc.kafka.clients import producer_config
from streamproc.kafka.topics import Topics
from streamproc.localnet import free_port
from streamproc.wire.common import MODES
from tests.harness.procs import REPO, ApiProcess, Proc, Sender, Worker
from tests.harness.topics import Record, json_values, read
from tests.harness.wait import wait_until

AUDIT_KINDS = {"triggered", "claimed", "unclaimed", "resolved", "absorbed"}

Outputs = list[tuple[str, dict[str, Any], int]]
"""(topic, JSON value, record time ms) of records read back."""


class Stack:
    """Its topics are created at once; processes are started by the `start_*` methods and all
    stopped by `stop()`. `env` goes to every process (STREAMPROC_NAMESPACE is the stack's)."""

    def __init__(
        self,
        bootstrap: str,
        config: Path,
        workdir: Path,
        partitions: int = 6,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.bootstrap, self.config, self.workdir, self.partitions = bootstrap, config, workdir, partitions
        self.namespace = namespace or f"t{uuid.uuid4().hex[:8]}"
        self.env = {**(env or {}), "STREAMPROC_NAMESPACE": self.namespace}
        self.topics = Topics(self.namespace)
        ensure_topics(self.bootstrap, self.partitions, names=self.topics)
        self.producer = Producer(producer_config(self.bootstrap))
        self.workers: list[Worker] = []
        self.senders: list[Sender] = []
        self.apis: list[ApiProcess] = []
        self.others: list[Proc] = []

    # ---- processes ------------------------------------------------------------------------------
    @property
    def procs(self) -> list[Proc]:
        return [*self.workers, *self.senders, *self.apis, *self.others]

    def start_worker(
        self, name: str, store: str = "rocksdb", env: Mapping[str, str] | None = None, args: Sequence[str] = ()
    ) -> Worker:
        """A worker with its own data dir and web port; static membership (instance id = `name`)."""
        port = free_port()
        worker = Worker(
            name,
            [
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
                *args,
            ],
            self.workdir,
            port,
            env={"STREAMPROC_SESSION_TIMEOUT": "6", "STREAMPROC_INSTANCE_ID": name, **self.env, **(env or {})},
        )
        self.workers.append(worker)
        worker.start()
        return worker

    def start_sender(
        self,
        modes: Sequence[str] = ("sms",),
        name: str = "sender",
        args: Sequence[str] = (),
        stdout: Path | None = None,
        wait: bool = True,
    ) -> Sender:
        """`streamproc sender --mode ...` with its status server; waits (`wait`) until every mode's
        consumer has its partitions (what is on the topics from then on, it reads)."""
        port = free_port()
        sender = Sender(
            name,
            [
                "sender",
                *(a for m in modes for a in ("--mode", m)),
                "--config",
                str(self.config),
                "--bootstrap",
                self.bootstrap,
                "--status-port",
                str(port),
                *args,
            ],
            self.workdir,
            port,
            env=self.env,
            stdout=stdout,
        )
        self.senders.append(sender)
        sender.start()
        if wait:
            sender.wait_ready(90)
        return sender

    def start_api(
        self,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
        name: str = "api",
        args: Sequence[str] = (),
        stdout: Path | None = None,
    ) -> ApiProcess:
        """`streamproc api` on the stack's namespace and config; waits (`wait`) for its `/ready`
        (else call its `wait_ready()`)."""
        api = ApiProcess(
            self.bootstrap,
            self.workdir,
            self.config.read_text(),
            env={**self.env, **(env or {})},
            namespace=self.namespace,
            partitions=self.partitions,
            name=name,
            args=args,
            stdout=stdout,
        )
        self.apis.append(api)
        if wait:
            return api.start()
        Proc.start(api)
        return api

    def wait_ready(self, workers: Iterable[Worker] | None = None, timeout: float = 90) -> None:
        """Until every live worker (of `workers`) reports ready, together they own every partition,
        and none is still catching up on the backlog of a partition it took over (what it reads
        from then on, it reads in time: a claim is not raced by the pages that fell due meanwhile).
        Fails at once when one of them exits."""
        chosen = list(self.workers if workers is None else workers)

        def ready() -> bool:
            statuses = [w.status() for w in chosen if w.alive]
            if not statuses or not all(s and s["ready"] and not s.get("catching_up") for s in statuses):
                return False
            return sorted(p for s in statuses if s for p in s["partitions"]) == list(range(self.partitions))

        what = "workers ready, owning every partition, caught up"
        wait_until(ready, timeout, what, interval=0.1, procs=chosen)

    def stop(self) -> None:
        """SIGTERM to every process still running, all at once, then wait for each."""
        stop_all(self.procs)

    # ---- events in ------------------------------------------------------------------------------
    def produce(self, event: dict[str, Any]) -> None:
        self.producer.produce(
            self.topics.incidents, key=event["incident_id"].encode(), value=json.dumps(event).encode()
        )
        self.producer.poll(0)

    def produce_raw(self, key: bytes | None, value: bytes) -> None:
        self.producer.produce(self.topics.incidents, key=key, value=value)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    # ---- what came out --------------------------------------------------------------------------
    def output_topics(self) -> list[str]:
        return [self.topics.messages(m) for m in MODES if m != "drop"] + [self.topics.outcomes]

    def read(
        self, topics: list[str], until: Callable[[Outputs], object] | None = None, timeout: float = 60.0
    ) -> Outputs:
        """(topic, JSON value, record time ms) of every record of `topics`, until `until(records)`
        holds and nothing new arrived for 1.5 s (what should not be there has a moment to show),
        or at `timeout` (what was read by then: the assertions say what is missing)."""
        return read(
            self.bootstrap,
            topics,
            until or (lambda records: True),
            convert=lambda r: (r.topic, r.json, r.timestamp) if r.value else None,
            quiet=1.5,
            timeout=timeout,
            must=False,
        )

    def wait_for(self, topics: list[str], until: Callable[[Outputs], object], timeout: float = 60.0) -> Outputs:
        """(topic, JSON value, record time ms) of the records of `topics`, read until `until(records)`
        holds (at once: no quiet moment after it); AssertionError at `timeout`."""
        return read(
            self.bootstrap,
            topics,
            until,
            convert=lambda r: (r.topic, r.json, r.timestamp) if r.value else None,
            timeout=timeout,
            watch=self.procs,
        )

    def read_now(self, topic: str) -> list[Any]:
        """The JSON values of `topic` up to its end now."""
        return read(self.bootstrap, topic, convert=json_values)

    def placed(self, topic: str) -> list[tuple[int, bytes | None, dict[str, Any]]]:
        """(partition, key, JSON value) of every record now on `topic` (the processor's barriers
        left out)."""

        def placed(record: Record) -> tuple[int, bytes | None, dict[str, Any]] | None:
            return None if record.barrier else (record.partition, record.key, record.json)

        return read(self.bootstrap, topic, convert=placed)

    def outcomes(
        self, until: Callable[[Outputs], object] | None = None, timeout: float = 60.0
    ) -> list[tuple[dict[str, Any], int]]:
        """Spec outcomes (messages and outcome records, not audits) with their record times."""
        return [
            (value, ts)
            for _, value, ts in self.read(self.output_topics(), until, timeout)
            if value.get("kind") not in AUDIT_KINDS
        ]

    def replay(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return replay_outcomes(self.config, events)


def stop_all(procs: Iterable[Proc], timeout: float = 30.0) -> None:
    """SIGTERM to each process still running, all at once; SIGKILL to any still there after
    `timeout` s (each exits within STREAMPROC_SHUTDOWN_TIMEOUT, 25 s, by itself)."""
    running = [p for p in procs if p.alive and p.proc is not None]
    for proc in running:
        proc.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running:
        assert proc.proc is not None
        try:
            proc.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait(5)


@contextlib.contextmanager
def live_stack(
    bootstrap: str, workdir: Path, config_text: str, partitions: int = 6, env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    """A `Stack` with `config_text` as its config (workdir/config.yaml); stopped at the end."""
    config = workdir / "config.yaml"
    config.write_text(config_text)
    stack = Stack(bootstrap, config, workdir, partitions=partitions, env=env)
    try:
        yield stack
    finally:
        stack.stop()


def replay_outcomes(config: Path, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `streamproc replay` gives for `events` (JSON lines on its standard input)."""
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


def event_seconds(event: dict[str, Any]) -> float:
    from streamproc.timeutil import parse_time, to_us

    return to_us(parse_time(event["at"])) / 1e6


def at_their_time(send: Callable[[dict[str, Any]], None], events: Iterable[dict[str, Any]]) -> None:
    """Send each event when the wall clock reaches its `at` (the scenario: events are dated when
    they happen)."""
    for event in events:
        time.sleep(max(0.0, event_seconds(event) - time.time()))
        send(event)
