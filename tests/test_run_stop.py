"""`make run` leaves nothing running, however it is stopped (issue 23).

Each test runs the real `make run` (tools/run.sh: its own broker via tools/kafka/kafka.sh, then
`streamproc run`: worker, sender, API) in a pipeline of its own session, the way a shell runs a
job, stops it the way a person would, and then looks for any process that carries this run's
marker in its environment (the broker included: kafka.sh starts it with the environment it was
given). Each run has its own Kafka port and state dir, API port and run dir: a developer's broker
(19092) and the test session's (19192) are never touched.

The last test stops a worker, a sender and an API with SIGTERM after their broker was killed, and
checks that each exits within its shutdown timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Proc, Sender, Worker, free_ports

REPO = Path(__file__).resolve().parents[1]
MARK = "STREAMPROC_RUN_TEST_MARK"
START_TIMEOUT = 240.0  # a fresh broker and three Python processes on a loaded 2-core box
STOP_TIMEOUT = 20.0  # the children's shutdown timeout under `streamproc run` (8 s), the broker's stop, a margin

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processes_marked(mark: str) -> list[str]:
    """`pid command` of every process whose environment has MARK=mark."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ.split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if command:  # zombies have no command line: they are exited, only not reaped yet
            found.append(f"{entry.name} {command}")
    return found


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1) -> float:
    """Wait until condition() is truthy; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(interval)
    return time.monotonic() - started


class Run:
    """`make run` in a pipeline run by `bash -c` in a session of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.mark = uuid.uuid4().hex
        self.tmp = tmp_path
        self.kafka_port = free_ports(2)
        self.env = {
            **os.environ,
            MARK: self.mark,
            "KAFKA_PORT": str(self.kafka_port),
            "KAFKA_RUN_DIR": str(tmp_path / "kafka"),
            "STREAMPROC_RUN_DIR": str(tmp_path / "run"),
            "STREAMPROC_API_PORT": str(free_port()),
        }
        # Not another broker, namespace or width; not the jobserver of a `make -j test` around pytest.
        for name in (
            "STREAMPROC_KAFKA",
            "STREAMPROC_NAMESPACE",
            "COLUMNS",
            "MAKEFLAGS",
            "MFLAGS",
            "MAKELEVEL",
            "STREAMPROC_SHUTDOWN_TIMEOUT",
        ):
            self.env.pop(name, None)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, pipeline: str, **popen: object) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            ["bash", "-c", pipeline],
            cwd=REPO,
            env=self.env,  # type: ignore[call-overload]
            start_new_session=True,
            **popen,
        )
        assert self.proc is not None
        return self.proc

    def left(self) -> list[str]:
        return processes_marked(self.mark)

    def assert_all_stopped(self, since: float, output: Callable[[], str]) -> float:
        try:
            wait_for(lambda: not self.left(), STOP_TIMEOUT, "every process of the run has exited", 0.2)
        except AssertionError:
            left = "\n".join(self.left())
            raise AssertionError(
                f"still running {STOP_TIMEOUT:g} s after the stop:\n{left}\noutput:\n{output()}"
            ) from None
        took = time.monotonic() - since
        assert not self.left()
        return took

    def cleanup(self) -> None:
        """Whatever a failed test left: the run's processes, then its broker."""
        for line in self.left():
            with contextlib.suppress(OSError):
                os.kill(int(line.split()[0]), signal.SIGKILL)
        if (self.tmp / "kafka" / "server.properties").exists():
            subprocess.run(
                ["bash", "tools/kafka/kafka.sh", "down"], cwd=REPO, env=self.env, capture_output=True, timeout=60
            )


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(tmp_path)
    try:
        yield r
    finally:
        r.cleanup()


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_make_run_piped_to_head_stops_when_head_exits(run: Run) -> None:
    out = run.tmp / "head.out"
    proc = run.start(
        f"make run | head -n 5 > {out}", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # head exits after its fifth line, while `streamproc run` starts its children.
    wait_for(
        lambda: read(out).count("\n") >= 5 and "streamproc run:" in read(out), START_TIMEOUT, "five lines through head"
    )
    head_done = time.monotonic()
    took = run.assert_all_stopped(head_done, lambda: read(out))
    assert proc.wait(5) is not None
    print(f"\nmake run | head -n 5: everything stopped {took:.1f} s after head exited")


class Pty:
    """A terminal: `bash -c` is its session leader and controlling process, like a login shell
    of an SSH session; closing the master end is the connection going away."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.output = bytearray()
        self._open = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while self._open:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.output += chunk

    def controlling(self) -> None:
        """preexec_fn: after setsid, make the terminal this session's controlling terminal."""
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def hang_up(self) -> None:
        if not self._open:
            return
        self._open = False
        self._reader.join(2)
        os.close(self.master)

    def text(self) -> str:
        return self.output.decode(errors="replace")


def test_make_run_piped_to_tee_stops_on_ctrl_c(run: Run) -> None:
    """In a terminal: Ctrl-C makes the terminal send SIGINT to the foreground job's process group
    (make, run.sh, tee); tee dies with it, so `streamproc run` loses its stdout while it stops."""
    pty = Pty()
    log = run.tmp / "tee.log"
    try:
        proc = run.start(
            f"make run | tee {log}", stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, preexec_fn=pty.controlling
        )
        os.close(pty.slave)
        wait_for(lambda: "streamproc run: ready" in read(log), START_TIMEOUT, "`streamproc run: ready` in tee's file")
        assert any("kafka.Kafka" in line for line in run.left()), "its broker carries the mark too"
        pty.type(b"\x03")  # Ctrl-C
        typed = time.monotonic()
        took = run.assert_all_stopped(typed, lambda: read(log) + "\n--- terminal:\n" + pty.text())
        proc.wait(5)
    finally:
        pty.hang_up()
    screen = pty.text()
    assert "Traceback" not in screen
    assert not re.search(r"^%\d\|", screen, re.M), "no librdkafka lines on the terminal"
    assert not re.search(r"^\{", screen, re.M), "no JSON log lines on the terminal"
    print(f"\nmake run | tee + Ctrl-C in a terminal: everything stopped {took:.1f} s after Ctrl-C")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_make_run_stops_on_a_signal_to_its_process_group_without_a_terminal(run: Run, signum: signal.Signals) -> None:
    log = run.tmp / "tee.log"
    proc = run.start(
        f"make run | tee {log}", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: "streamproc run: ready" in read(log), START_TIMEOUT, "`streamproc run: ready` in tee's file")
    os.killpg(proc.pid, signum)
    took = run.assert_all_stopped(time.monotonic(), lambda: read(log))
    proc.wait(5)
    print(f"\nmake run | tee + {signum.name} to the process group: everything stopped {took:.1f} s after it")


def test_make_run_stopped_while_its_broker_starts_stops_the_broker(run: Run) -> None:
    log = run.tmp / "tee.log"
    proc = run.start(
        f"make run | tee {log}", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kafka_log = run.tmp / "run" / "logs" / "kafka.sh.log"
    wait_for(lambda: "started broker" in read(kafka_log), START_TIMEOUT, "kafka.sh has started the broker's JVM")
    assert "Kafka is up" not in read(log)
    os.killpg(proc.pid, signal.SIGINT)
    took = run.assert_all_stopped(time.monotonic(), lambda: read(log) + "\n--- kafka.sh:\n" + read(kafka_log))
    proc.wait(5)
    assert "stopped" in read(kafka_log).split("started broker", 1)[1]
    print(f"\nmake run stopped while its broker starts: everything stopped {took:.1f} s after SIGINT")


def test_make_run_in_a_terminal_that_goes_away_stops(run: Run) -> None:
    pty = Pty()
    log = run.tmp / "tee.log"
    try:
        proc = run.start(
            f"make run | tee {log}", stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, preexec_fn=pty.controlling
        )
        os.close(pty.slave)
        wait_for(lambda: "streamproc run: ready" in read(log), START_TIMEOUT, "`streamproc run: ready` in tee's file")
        # tee wrote it to the terminal too; the reader thread may not have taken it from the pty yet.
        wait_for(lambda: "streamproc run: ready" in pty.text(), 10, "`streamproc run: ready` on the terminal")
    except BaseException:
        pty.hang_up()
        raise
    pty.hang_up()  # the SSH connection drops
    closed = time.monotonic()
    took = run.assert_all_stopped(closed, lambda: read(log))
    proc.wait(5)
    print(f"\nmake run | tee in a terminal that hung up: everything stopped {took:.1f} s after the hang-up")


def test_the_children_stop_when_streamproc_run_itself_is_killed(run: Run) -> None:
    """SIGKILL leaves `streamproc run` no chance to stop anything: the kernel sends its children
    SIGTERM (PR_SET_PDEATHSIG), and they stop within their shutdown timeout."""
    bootstrap = subprocess.run(
        ["bash", "tools/kafka/kafka.sh", "up"],
        cwd=REPO,
        env=run.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=START_TIMEOUT,
    ).stdout.strip()
    out = run.tmp / "run.out"
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamproc.cli", "run", "--bootstrap", bootstrap],
            cwd=REPO,
            env=run.env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: "streamproc run: ready" in read(out) or proc.poll() is not None,
            START_TIMEOUT,
            "`streamproc run: ready`",
        )
        assert proc.poll() is None, read(out)
        children = [line for line in run.left() if "streamproc.cli" in line and " run " not in line]
        assert len(children) == 3, children
        proc.kill()
        proc.wait(5)
        killed = time.monotonic()
        wait_for(
            lambda: not [line for line in run.left() if "streamproc" in line],
            STOP_TIMEOUT,
            "the worker, the sender and the API have exited",
        )
        print(f"\nstreamproc run killed: its children stopped {time.monotonic() - killed:.1f} s later")
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------------------------------------
# SIGTERM with the broker gone


def test_worker_sender_and_api_exit_in_time_on_sigterm_with_the_broker_gone(run: Run) -> None:
    env = {**run.env, "STREAMPROC_SHUTDOWN_TIMEOUT": "4"}
    bootstrap = subprocess.run(
        ["bash", "tools/kafka/kafka.sh", "up"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=START_TIMEOUT,
    ).stdout.strip()
    web, status, api = free_port(), free_port(), free_port()
    common = ["--config", "examples/config.yaml", "--bootstrap", bootstrap, "--log-format", "json"]
    commands = {
        "worker": ["worker", *common, "--web-port", str(web), "--data-dir", str(run.tmp / "worker")],
        "sender": ["sender", *common, "--status-port", str(status)],
        "api": ["api", *common, "--port", str(api)],
    }
    procs: dict[str, Proc] = {
        "worker": Worker("worker", commands["worker"], run.tmp, web, base_env=env),
        "sender": Sender("sender", commands["sender"], run.tmp, status, base_env=env),
        "api": Proc("api", commands["api"], run.tmp, base_env=env, ready_url=f"http://127.0.0.1:{api}/ready"),
    }
    for proc in procs.values():
        proc.start()
    try:
        for proc in procs.values():
            proc.wait_ready(START_TIMEOUT)
        broker = int((run.tmp / "kafka" / "kafka.pid").read_text())
        os.kill(broker, signal.SIGKILL)
        wait_for(
            lambda: not Path(f"/proc/{broker}/cmdline").exists() or not Path(f"/proc/{broker}/cmdline").read_bytes(),
            10,
            "the broker is gone",
        )
        # Let every client notice that its broker is gone before it is asked to stop.
        wait_for(lambda: not procs["api"].ready(), 30, "the API reports not ready")
        for proc in procs.values():
            proc.signal(signal.SIGTERM)
        signalled = time.monotonic()
        took: dict[str, float] = {}
        while len(took) < len(procs) and time.monotonic() < signalled + 4 + 2:
            for name, proc in procs.items():
                if name not in took and not proc.alive:
                    took[name] = round(time.monotonic() - signalled, 1)
            time.sleep(0.05)  # (asking again: how long each took is what is measured)
        for name in procs.keys() - took.keys():
            raise AssertionError(
                f"{name} still running 6 s after SIGTERM (shutdown timeout 4 s):\n{procs[name].tail(3000)}"
            )
        print(
            f"\nSIGTERM with the broker gone: exited after {took} s; statuses "
            f"{ {n: p.returncode for n, p in procs.items()} }"
        )
    finally:
        for proc in procs.values():
            if proc.alive:
                proc.kill()
