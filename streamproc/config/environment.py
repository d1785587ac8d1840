"""Every environment variable streamproc reads, one typed accessor each: the one module that reads
the environment (a test keeps every other module from doing so, and keeps `docs/environment.md`,
generated from `VARIABLES` here, in step).

Accessors read the environment when they are called, not at import (`kafka.topics.NAMESPACE` is
read once, when that module is imported). A variable set to the empty string counts as unset.
A command-line flag given explicitly wins over its variable: most variables are flag defaults.

To add one: a name constant, an accessor decorated with `@_reads(name, default)` whose docstring
says what it means, then `python -m streamproc.config.environment --write docs/environment.md`.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from streamproc.config.kafka import KafkaSettings

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    """As the docs show it ("" when there is none)."""
    meaning: str
    accessor: str
    """The function of this module that reads it."""


VARIABLES: list[Variable] = []
"""Every variable, in the order the docs list them."""


def _reads(name: str, default: str) -> Callable[[F], F]:
    """Registers the decorated accessor as the reader of `name` and puts the name and default at
    the head of its docstring (the rest of which says what the variable means)."""

    def register(accessor: F) -> F:
        meaning = inspect.cleandoc(accessor.__doc__ or "")
        VARIABLES.append(Variable(name, default, " ".join(meaning.split()), accessor.__name__))
        accessor.__doc__ = f"`{name}` (default: {default or 'unset'}).\n\n{meaning}"
        return accessor

    return register


def _get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return value or None


# ------------------------------------------------------------------------------------------ Kafka
KAFKA = "STREAMPROC_KAFKA"
DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
"""The local broker of `make run` (`tools/kafka/kafka.sh`)."""


@_reads(KAFKA, f"`{DEFAULT_BOOTSTRAP}`")
def kafka_bootstrap() -> str:
    """The Kafka brokers (`host:port[,host:port...]`) of every command's `--bootstrap`."""
    return _get(KAFKA) or DEFAULT_BOOTSTRAP


NAMESPACE = "STREAMPROC_NAMESPACE"
DEFAULT_NAMESPACE = "streamproc"


@_reads(NAMESPACE, f"`{DEFAULT_NAMESPACE}`")
def namespace() -> str:
    """The start of every topic name (`<namespace>.incidents`, ...), of the senders' consumer
    groups, and the worker's Faust app id: stacks with different namespaces share a cluster
    without seeing each other."""
    return _get(NAMESPACE) or DEFAULT_NAMESPACE


PARTITIONS = "STREAMPROC_PARTITIONS"
DEFAULT_PARTITIONS = 12


@_reads(PARTITIONS, f"`{DEFAULT_PARTITIONS}`")
def partitions() -> int:
    """Partitions of the topics `streamproc worker` and `streamproc api` create (`--partitions`);
    the worker refuses to start on keyed topics with another count."""
    value = _get(PARTITIONS)
    return int(value) if value else DEFAULT_PARTITIONS


KAFKA_PREFIX = "STREAMPROC_KAFKA_"
KAFKA_OVERRIDE_FIELDS: tuple[str, ...] = tuple(f for f in KafkaSettings.model_fields if f != "sasl_password_env")
"""The `kafka:` settings that `STREAMPROC_KAFKA_<FIELD>` overrides: all but `sasl_password_env`
(whose variable would name another variable)."""


def kafka_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Field -> value of each `STREAMPROC_KAFKA_<FIELD>` that is set (see `KAFKA_OVERRIDE_FIELDS`;
    `kafka.security` applies them over the configuration's `kafka:` section)."""
    found = {field: _get(KAFKA_PREFIX + field.upper(), environ) for field in KAFKA_OVERRIDE_FIELDS}
    return {field: value for field, value in found.items() if value is not None}


def _kafka_default(field: str) -> str:
    default = KafkaSettings.model_fields[field].default
    if default is None:
        return "the `kafka:` key's"
    return f"the `kafka:` key's, else `{str(default).lower() if isinstance(default, bool) else default}`"


def _kafka_meaning(field: str) -> str:
    text = KafkaSettings.model_fields[field].description or ""
    page = "production-kafka.md" if field in ("replication_factor", "min_insync_replicas") else "security.md"
    return f"{text[:1].lower()}{text[1:]} ([{page}]({page}))"


for _field in KAFKA_OVERRIDE_FIELDS:
    VARIABLES.append(
        Variable(
            KAFKA_PREFIX + _field.upper(),
            _kafka_default(_field),
            f"Overrides `kafka.{_field}`: {_kafka_meaning(_field)}.",
            "kafka_overrides",
        )
    )


def named(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable a configuration names for a secret (`kafka.sasl_password_env`,
    `senders.*.*_env`), None when it is not set or empty."""
    return _get(name, environ)


# --------------------------------------------------------------------------- processes and ports
STORE = "STREAMPROC_STORE"


@_reads(STORE, "`rocksdb`")
def store() -> str:
    """The worker's table store (`--store`): `rocksdb`, or `memory` (tests: rebuilt from the
    changelog at every start)."""
    return _get(STORE) or "rocksdb"


SESSION_TIMEOUT = "STREAMPROC_SESSION_TIMEOUT"


@_reads(SESSION_TIMEOUT, "`6`")
def session_timeout() -> float:
    """The worker's consumer session timeout in seconds: how long its group waits for a silent
    worker before moving its partitions (a restart within it, with `STREAMPROC_INSTANCE_ID`,
    keeps them). 6 is the least a broker accepts by default (`group.min.session.timeout.ms`)."""
    value = _get(SESSION_TIMEOUT)
    return float(value) if value else 6.0


INSTANCE_ID = "STREAMPROC_INSTANCE_ID"
POD_NAME = "POD_NAME"


@_reads(INSTANCE_ID, "`$POD_NAME`, else unset")
def instance_id() -> str | None:
    """The worker's static group membership id (the Helm chart sets it to the pod's name): a worker
    restarted with the same id within the session timeout gets its partitions back without a
    rebalance."""
    return _get(INSTANCE_ID) or _get(POD_NAME)


API_PORT = "STREAMPROC_API_PORT"


@_reads(API_PORT, "`8080`")
def api_port() -> int:
    """Port of the HTTP API that `streamproc run` starts (`--api-port`)."""
    value = _get(API_PORT)
    return int(value) if value else 8080


WEB_BIND = "STREAMPROC_WEB_BIND"


@_reads(WEB_BIND, "`127.0.0.1`")
def web_bind() -> str:
    """Address the worker's web server and the sender's metrics and status endpoints listen on
    (the Helm chart sets `0.0.0.0`)."""
    return _get(WEB_BIND) or "127.0.0.1"


METRICS_PORT = "STREAMPROC_METRICS_PORT"


@_reads(METRICS_PORT, "`0`")
def metrics_port() -> int:
    """Port of the sender's Prometheus `/metrics` (`--metrics-port`); 0: none."""
    value = _get(METRICS_PORT)
    return int(value) if value else 0


SENDER_STATUS_PORT = "STREAMPROC_SENDER_STATUS_PORT"


@_reads(SENDER_STATUS_PORT, "`0`")
def sender_status_port() -> int:
    """Port of the sender's JSON `/status` for `streamproc inspect senders` (`--status-port`);
    0: none."""
    value = _get(SENDER_STATUS_PORT)
    return int(value) if value else 0


LOG_FORMAT = "STREAMPROC_LOG_FORMAT"


@_reads(LOG_FORMAT, "`auto`")
def log_format() -> str | None:
    """`json`, `text` or `auto` (JSON unless stderr is a terminal), when `--log-format` is not
    given."""
    return _get(LOG_FORMAT)


SHUTDOWN_TIMEOUT = "STREAMPROC_SHUTDOWN_TIMEOUT"
DEFAULT_SHUTDOWN_TIMEOUT = 25.0


@_reads(SHUTDOWN_TIMEOUT, "`25`; `8` for the children of `streamproc run`")
def shutdown_timeout() -> float:
    """Seconds from a process's first stop signal to its hard exit (status 124) when a clean stop
    hangs, e.g. on a broker that is gone. A value that is not a positive number is the default."""
    try:
        value = float(_get(SHUTDOWN_TIMEOUT) or DEFAULT_SHUTDOWN_TIMEOUT)
    except ValueError:
        return DEFAULT_SHUTDOWN_TIMEOUT
    return value if value > 0 else DEFAULT_SHUTDOWN_TIMEOUT


def default_shutdown_timeout(seconds: str) -> None:
    """`STREAMPROC_SHUTDOWN_TIMEOUT` for this process and the children it starts from now on,
    unless it is set (`streamproc run`)."""
    if not _get(SHUTDOWN_TIMEOUT):
        os.environ[SHUTDOWN_TIMEOUT] = seconds


def for_children() -> dict[str, str]:
    """A copy of this process's whole environment, for a child process started with it."""
    return dict(os.environ)


RUN_DIR = "STREAMPROC_RUN_DIR"


@_reads(RUN_DIR, "`.run`")
def run_dir() -> Path:
    """Where `streamproc run` writes its processes' logs (`<dir>/logs/`)."""
    return Path(_get(RUN_DIR) or ".run")


SENDER_CRASH_AFTER_RECORDS = "STREAMPROC_SENDER_CRASH_AFTER_RECORDS"


@_reads(SENDER_CRASH_AFTER_RECORDS, "unset")
def sender_crash_after_records() -> int | None:
    """Test hook: the sender SIGKILLs itself right after its Nth `sent` delivery record is
    acknowledged, before the offset can be committed (the moment that must not page twice)."""
    value = _get(SENDER_CRASH_AFTER_RECORDS)
    return int(value) if value else None


# ------------------------------------------------------------------------------- not our own names
COLUMNS = "COLUMNS"


@_reads(COLUMNS, "unset")
def terminal_columns() -> str | None:
    """Set: tables are as wide as it says even when stdout is not a terminal (else as wide as
    their content)."""
    return _get(COLUMNS)


VARIABLES.append(
    Variable(
        POD_NAME,
        "unset",
        "The worker's static membership id when `STREAMPROC_INSTANCE_ID` is not set.",
        "instance_id",
    )
)


# ------------------------------------------------------------------------------------------ docs
BEGIN = "<!-- begin: generated by `python -m streamproc.config.environment --write docs/environment.md` -->"
END = "<!-- end: generated -->"


def markdown_table() -> str:
    rows = ["| variable | default | meaning | read by |", "|---|---|---|---|"]
    for v in VARIABLES:
        meaning = v.meaning.replace("|", r"\|")
        rows.append(f"| `{v.name}` | {v.default} | {meaning} | `environment.{v.accessor}` |")
    return "\n".join(rows) + "\n"


def with_table(page: str) -> str:
    """`page` with the text between `BEGIN` and `END` replaced by `markdown_table()`."""
    head, begin, rest = page.partition(BEGIN)
    _old, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"the page has no {BEGIN} ... {END} section")
    return f"{head}{BEGIN}\n{markdown_table()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the table of environment variables for docs/environment.md")
    parser.add_argument("--write", metavar="PAGE", help="replace the generated section of PAGE (else print the table)")
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(markdown_table())
        return 0
    page = Path(args.write)
    page.write_text(with_table(page.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
