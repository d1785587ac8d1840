"""`streamproc run`: the whole stack for one config in the foreground (what `make run` starts).

Starts a processor worker, a sender for every mode (console delivery when a vendor has no
credentials) and the HTTP API as child processes, and shows on stdout what a person is waiting
for (`streamproc.runfeed`): a line per page delivered, per trigger / claim / resolve / absorbed
trigger, and each distinct warning or error of the children once. The children's full logs (JSON
lines, their stdout included) go to files under `$STREAMPROC_RUN_DIR/logs` (default `.run/logs`),
named at start.

It stops everything it started, and waits for it, when any of these happens:
- SIGINT (Ctrl-C), SIGTERM or SIGHUP;
- its stdout or stderr goes away: the reader of a pipe exits (`| head`, `| tee` killed by the
  same Ctrl-C) or the terminal hangs up (a closed SSH session). Nothing has to be written for
  this to be noticed: the descriptors are polled;
- the process that started it exits (`tools/run.sh` killed);
- a child exits on its own (then with that child's status).

Each child runs in its own session, so a terminal's signals reach only this process, which stops
the children in order: SIGTERM to each child's process group, and SIGKILL to what is left after
the children's own shutdown timeout (`streamproc.lifecycle`) and a margin. A second stop signal
kills at once. The children also get SIGTERM from the kernel should this process die without
stopping them (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import IO

from streamproc.config import environment
from streamproc.lifecycle import shutdown_timeout
from streamproc.localnet import free_port

log = logging.getLogger("streamproc.run")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
RUN_SHUTDOWN_TIMEOUT = "8"
"""The children's shutdown timeout under `streamproc run` (unless STREAMPROC_SHUTDOWN_TIMEOUT is set)."""
KILL_MARGIN = 3.0
"""Seconds past the children's own shutdown timeout before what is left is killed."""
PR_SET_PDEATHSIG = 1


class Terminal:
    """Where the lines for a person go (stdout). A write that fails (a closed pipe, a terminal
    that hung up) marks it gone; `gone()` also notices it without writing."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()
        self.closed = False
        self._watched = [fd for fd in (self._fileno(), 2) if fd is not None and not _hung_up(fd)]

    def _fileno(self) -> int | None:
        try:
            return self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return None

    def say(self, text: str) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(text + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self._close()

    def _close(self) -> None:
        self.closed = True
        fd = self._fileno()
        if fd is not None:  # no "Exception ignored ... BrokenPipeError" when Python flushes at exit
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), fd)

    def gone(self) -> str | None:
        """Why the output is gone (None while it is there)."""
        if self.closed:
            return "stdout was closed"
        for fd in self._watched:
            if _hung_up(fd):
                with self._lock:
                    self.closed = True
                name = "stderr" if fd == 2 else "stdout"
                return f"{name} was closed (its pipe reader exited, or the terminal hung up)"
        return None


def _hung_up(fd: int) -> bool:
    """A pipe whose reader is gone reports POLLERR; a hung-up terminal POLLHUP; a closed fd POLLNVAL."""
    poller = select.poll()
    poller.register(fd, 0)  # no events asked for: only errors and hang-ups are reported
    try:
        return any(events & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, events in poller.poll(0))
    except OSError:
        return True


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux); nothing elsewhere."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


class Child:
    def __init__(self, name: str, args: list[str], log_file: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_file = log_file
        with log_file.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamproc.cli", *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env=env,
            )
        log.info("started %s (pid %d): streamproc %s", name, self.proc.pid, " ".join(args))

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)  # its own session: process group id = its pid

    def alive(self) -> bool:
        return self.proc.poll() is None


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return int(resp.status) == 200
    except Exception:
        return False


def _setup_logging(path: Path) -> None:
    from streamproc.logs import ContextFilter, JsonFormatter

    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def _feed_config(config: str, bootstrap: str) -> dict[str, object]:
    from streamproc.config import load_config
    from streamproc.kafka import security
    from streamproc.kafka.clients import consumer_config

    try:
        security.configure(load_config(config).kafka)
    except Exception as exc:  # the children say what is wrong with the config
        log.warning("feed: %s", exc)
    return consumer_config(bootstrap, "streamproc-run")


def run_stack(config: str, bootstrap: str, api_host: str = "127.0.0.1", api_port: int = 8080) -> int:
    term = Terminal()
    if not Path(config).exists():
        term.say(f"streamproc run: {config}: no such file")
        return 2
    started = time.time()
    run_dir = environment.run_dir()
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(log_dir / "run.log")
    files = {name: log_dir / f"{name}.log" for name in ("worker", "sender", "api")}
    web_port, metrics_port, status_port = free_port(), free_port(), free_port()
    term.say(
        f"streamproc run: full logs (JSON lines) in {log_dir}/: {' '.join(p.name for p in files.values())} run.log"
    )

    stops: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stops.append(signal.Signals(signum).name)

    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) != signal.SIG_IGN:  # e.g. SIGHUP under nohup stays ignored
            signal.signal(signum, on_signal)
    parent = os.getppid()
    environment.default_shutdown_timeout(RUN_SHUTDOWN_TIMEOUT)  # the children's, and _stop's
    env = environment.for_children()
    children: list[Child] = []
    code = 0
    feed = None
    from streamproc.runfeed import Feed, LogWatch

    watch = LogWatch(files)
    try:
        common = ["--config", config, "--bootstrap", bootstrap, "--log-format", "json"]
        children.append(
            Child(
                "worker",
                [
                    "worker",
                    *common,
                    "--web-port",
                    str(web_port),
                    "--loglevel",
                    "info",
                    "--data-dir",
                    str(run_dir / "worker-0"),
                ],
                files["worker"],
                env,
            )
        )
        children.append(
            Child(
                "sender",
                ["sender", *common, "--metrics-port", str(metrics_port), "--status-port", str(status_port)],
                files["sender"],
                env,
            )
        )
        children.append(
            Child(
                "api",
                ["api", *common, "--host", api_host, "--port", str(api_port), "--loglevel", "info"],
                files["api"],
                env,
            )
        )
        log.info(
            "worker web (/ready, /metrics, /inspect): http://127.0.0.1:%d; sender status (/ready, /status): "
            "http://127.0.0.1:%d, metrics: http://127.0.0.1:%d/metrics; API: http://%s:%d",
            web_port,
            status_port,
            metrics_port,
            api_host,
            api_port,
        )
        term.say(
            f"streamproc run: starting the processor, the senders and the HTTP API (http://{api_host}:{api_port})"
            f" on Kafka {bootstrap} ..."
        )
        from streamproc.kafka.topics import CURRENT

        feed = Feed(_feed_config(config, bootstrap), CURRENT, started, term.say)
        feed.start()
        probes = {
            "processor": f"http://127.0.0.1:{web_port}/ready",
            "senders": f"http://127.0.0.1:{status_port}/ready",
            "API": f"http://127.0.0.1:{api_port}/ready",
        }
        pending = dict(probes)
        next_probe = 0.0
        while True:
            if stops:
                log.info("stopping on %s", stops[0])
                break
            gone = term.gone()
            if gone:
                log.info("stopping: %s", gone)
                break
            if os.getppid() != parent:
                log.info("stopping: the process that started streamproc run (pid %d) exited", parent)
                break
            exited = next((c for c in children if not c.alive()), None)
            if exited is not None:
                code = exited.proc.returncode or 1
                for line in watch.lines():
                    term.say(line)
                term.say(
                    f"streamproc run: the {exited.name} exited with status {exited.proc.returncode}; "
                    f"stopping everything (its log: {exited.log_file})"
                )
                break
            for line in watch.lines():
                term.say(line)
            if pending and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + 0.5
                for name, url in list(pending.items()):
                    if _ready(url):
                        del pending[name]
                if not pending:
                    term.say(
                        f"streamproc run: ready after {time.time() - started:.1f} s. From another terminal:\n"
                        "    .venv/bin/streamproc produce examples/incident.json   # fire the example incident\n"
                        "    .venv/bin/streamproc produce examples/claim.json      # claim it (as alice)\n"
                        "    .venv/bin/streamproc produce examples/resolve.json    # resolve it\n"
                        "  Pages, claims and resolves show here, one line each. Ctrl-C stops everything."
                    )
            time.sleep(0.2)
    finally:
        term.say(f"streamproc run: stopping{f' ({stops[0]})' if stops else ''} ...")
        if feed is not None:
            feed.stopping.set()  # it closes its consumer while the children stop
        _stop(children, stops)
        if feed is not None:
            feed.join(1.0)  # a daemon thread: one still closing does not hold the exit
        for line in watch.lines():
            term.say(line)
        for line in watch.repeated():
            term.say(f"streamproc run: repeated: {line}")
        term.say(f"streamproc run: stopped ({', '.join(_ended(c) for c in children)})")
    return code


def _ended(child: Child) -> str:
    status = child.proc.returncode
    return f"{child.name} {'killed' if status is not None and status < 0 else f'exit {status}'}"


def _stop(children: list[Child], stops: list[str]) -> None:
    """SIGTERM to every child still running, SIGKILL to what is left after the shutdown timeout
    and a margin, or at once on a further stop signal."""
    seen = len(stops)
    for child in children:
        if child.alive():
            child.signal(signal.SIGTERM)
    deadline = time.monotonic() + shutdown_timeout() + KILL_MARGIN
    while any(c.alive() for c in children):
        if time.monotonic() >= deadline or len(stops) > max(seen, 1):
            for child in children:
                if child.alive():
                    log.warning("%s (pid %d) still running: killing it", child.name, child.proc.pid)
                    child.signal(signal.SIGKILL)
            for child in children:
                child.proc.wait()
            break
        time.sleep(0.05)
    for child in children:
        child.signal(signal.SIGKILL)  # anything a child left in its process group
    log.info("stopped: %s", ", ".join(_ended(c) for c in children))
