"""`streamproc <command>` as a child process, as users run it: arguments, environment (the topic
namespace above all), a log file, a readiness endpoint to wait on, SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from streamproc.kafka.topics import Topics
from streamproc.localnet import free_port, terminate

REPO = Path(__file__).resolve().parents[2]

STARTED: list[Proc] = []
"""Every process the harness started in this session, in order (for the logs of a failed test)."""


class Proc:
    """One `python -m streamproc.cli <args>` in the repository (`entry`: another module and its
    arguments before `args`), its output in `log` (stderr there, stdout too unless `stdout` names
    another file). `env` is added to the test's environment; `base_env` replaces that environment."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        ready_url: str | None = None,
        stdout: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        entry: Sequence[str] = ("streamproc.cli",),
    ) -> None:
        self.name, self.args, self.workdir, self.entry = name, list(args), workdir, list(entry)
        self.env = {**(os.environ if base_env is None else base_env), **(env or {})}
        self.ready_url, self.stdout, self.ssl_context = ready_url, stdout, ssl_context
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.ended = False
        """The test stopped or killed it (its exit is no failure)."""

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log, open(self.stdout or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.entry, *self.args],
                stdin=subprocess.DEVNULL,
                stdout=out if self.stdout else log,
                stderr=log,
                cwd=REPO,
                env=self.env,
            )
        STARTED.append(self)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def check_alive(self) -> None:
        """AssertionError with the end of its log when the process has exited by itself (not
        stopped or killed by the test)."""
        if self.proc is not None and not self.ended and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def get(self, path: str, timeout: float = 2.0) -> tuple[int, Any] | None:
        """(HTTP status, JSON body or None) of GET `path` on the process's own server (the origin of
        `ready_url`); None while nothing answers."""
        assert self.ready_url is not None, f"{self.name} has no HTTP endpoint"
        origin = self.ready_url.split("/", 3)
        url = "/".join(origin[:3]) + path
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=self.ssl_context) as resp:
                return resp.status, _json_or_none(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json_or_none(exc.read())
        except OSError:
            return None

    def ready(self) -> bool:
        assert self.ready_url is not None, f"{self.name} has no readiness endpoint"
        path = "/" + self.ready_url.split("/", 3)[3]
        answer = self.get(path)
        return answer is not None and answer[0] == 200

    def wait_ready(self, timeout: float = 60.0, check: Callable[[], bool] | None = None) -> Self:
        """Until `ready()` (or `check()`) holds; AssertionError with its log when it exits first or
        the time is up."""
        deadline = time.monotonic() + timeout
        probe = check or self.ready
        while not probe():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready within {timeout} s:\n{self.tail()}")
            time.sleep(0.05)
        return self

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL past a grace period (streamproc.localnet.terminate); its exit status."""
        if self.proc is not None:
            self.ended = True
            terminate(self.proc)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL: the process lost, as a crash loses it."""
        assert self.proc is not None
        self.ended = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            self.ended = True
        self.proc.send_signal(signum)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


class Worker(Proc):
    """`streamproc worker`: `status()` is its `/ready` body (`ready`, `partitions`, `processed`, ...),
    also while it answers 503 (recovering)."""

    def __init__(self, name: str, args: Sequence[str], workdir: Path, port: int, **kw: Any) -> None:
        super().__init__(name, args, workdir, ready_url=f"http://127.0.0.1:{port}/ready", **kw)
        self.port = port

    def status(self) -> dict[str, Any] | None:
        answer = self.get("/ready")
        return dict(answer[1]) if answer is not None and isinstance(answer[1], dict) else None


class Sender(Proc):
    """`streamproc sender` with its status server (`/ready`: every mode's consumer has partitions)."""

    def __init__(self, name: str, args: Sequence[str], workdir: Path, status_port: int, **kw: Any) -> None:
        super().__init__(name, args, workdir, ready_url=f"http://127.0.0.1:{status_port}/ready", **kw)
        self.status_port = status_port
        self.status_url = f"http://127.0.0.1:{status_port}"


API_CONFIG = """
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
"""The API tests' config (applications with keys, routing keys, heartbeats, a small body limit)."""


class ApiProcess(Proc):
    """`streamproc api` with a config file; its own topic namespace unless given one (so tests
    sharing the session broker never see each other's events). With `tls`, a throwaway CA
    (trustme) and a certificate for 127.0.0.1 signed by it."""

    def __init__(
        self,
        bootstrap: str,
        tmp: Path,
        config: str = API_CONFIG,
        env: dict[str, str] | None = None,
        tls: bool = False,
        *,
        namespace: str | None = None,
        partitions: int = 3,
        name: str | None = None,
        args: Sequence[str] = (),
        stdout: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.namespace = namespace or (env or {}).get("STREAMPROC_NAMESPACE") or f"apitest-{uuid.uuid4().hex[:8]}"
        self.topics = Topics(self.namespace)
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.ca_file: str | None = None
        context: ssl.SSLContext | None = None
        if tls:
            import trustme  # a test dependency: the benchmarks import this module too

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1")
            cert.private_key_and_cert_chain_pem.write_to_path(str(tmp / "api.pem"))
            ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
            self.ca_file = str(tmp / "ca.pem")
            context = ssl.create_default_context(cafile=self.ca_file)
            config += f"\n  tls_cert_file: {tmp / 'api.pem'}\n  tls_key_file: {tmp / 'api.pem'}\n"
        self.ssl_context = context
        name = name or f"api-{self.port}"
        self.config_path = tmp / f"{name}.yaml"
        self.config_path.write_text(config)
        command = ["api", "--config", str(self.config_path), "--bootstrap", bootstrap, "--port", str(self.port)]
        super().__init__(
            name,
            [*command, "--partitions", str(partitions), *args],
            tmp,
            env={**(env or {}), "STREAMPROC_NAMESPACE": self.namespace},
            ready_url=f"{self.url}/ready",
            ssl_context=context,
            stdout=stdout,
        )
        self.log_path = self.log

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> Self:
        """Starts the process and waits until it answers `/ready` (`/healthz` when not
        `wait_ready`); stops it again when it does not."""
        super().start()
        try:
            path = "/ready" if wait_ready else "/healthz"
            self.wait_ready(timeout, check=lambda: (a := self.get(path)) is not None and a[0] == 200)
        except BaseException:
            self.stop()
            raise
        return self
