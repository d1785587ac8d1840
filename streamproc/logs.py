"""Logs of the worker, the senders and the API: one JSON object per line, or plain text.

    {"time": "2025-01-02T03:04:05.678Z", "level": "info", "logger": "streamproc.senders.pipeline",
     "message": "delivery sent", "correlation_id": "…", "incident_id": "db-1", "instance": 1,
     "message_id": "…", "application": "app", "plan": "quick", "partition": 3, ...}

The format is chosen by `--log-format text|json|auto` or `STREAMPROC_LOG_FORMAT`; `auto` (the
default) is JSON unless stderr is a terminal. Logs go to stderr.

Fields come from a record's `extra=` and from the context bound with `bound(...)` / `bind(...)`
(a contextvar: the API binds a request's correlation id for everything logged while handling it).

The stdlib's logging with a small Formatter rather than python-json-logger or structlog: it is
some forty lines, adds no dependency to every process, and works unchanged under Faust/mode's
logging set-up (a `logging.config.dictConfig` dict, see `dict_config`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any, Literal

from streamproc.config import environment

FORMAT_ENV = environment.LOG_FORMAT
FORMATS = ("auto", "json", "text")
LogFormat = Literal["json", "text"]

_context: ContextVar[dict[str, Any] | None] = ContextVar("streamproc_log_context", default=None)

# Attributes every LogRecord has; anything else on a record was given as `extra=` (or by a filter).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def bind(**fields: Any) -> Token[dict[str, Any] | None]:
    """Add fields to every record logged from this context on; undo with `unbind(token)`."""
    current = _context.get() or {}
    return _context.set({**current, **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def context() -> dict[str, Any]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (a record's own `extra=` fields win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        if fields:
            for key, value in fields.items():
                if key not in record.__dict__:
                    setattr(record, key, value)
        return True


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


_second: tuple[int, str] = (-1, "")
"""The last second `_iso` formatted, and its text (a sender logs many lines a second)."""


def _iso(created: float) -> str:
    global _second
    seconds = int(created)
    last, text = _second
    if seconds != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)
    return f"{text}.{int((created - seconds) * 1000):03d}Z"


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
"""`json.dumps(..., default=str, ensure_ascii=False)`, without making an encoder per line."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(out)


class TextFormatter(logging.Formatter):
    """For a terminal: `time LEVEL logger: message key=value ...`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = fields_of(record)
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback below the fields
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{head} {extra}{sep}{tail}"


def resolve_format(choice: str | None = None) -> LogFormat:
    """`choice` (a --log-format value), else $STREAMPROC_LOG_FORMAT, else JSON unless stderr is a TTY."""
    value = (choice or environment.log_format() or "auto").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)} (got {value!r})")
    if value == "auto":
        try:
            return "text" if sys.stderr.isatty() else "json"
        except (AttributeError, ValueError):
            return "json"
    return "json" if value == "json" else "text"


def level_of(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO


def dict_config(fmt: str | None, level: str | int = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: one stderr handler with the chosen format (for Faust/mode)."""
    formatter = JsonFormatter if resolve_format(fmt) == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"streamproc": {"()": f"{__name__}.{formatter.__name__}"}},
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "streamproc",
                "filters": ["context"],
            }
        },
        "root": {"level": level_of(level), "handlers": ["stderr"]},
    }


def setup_logging(fmt: str | None = None, level: str | int = "INFO") -> LogFormat:
    """Configure the root logger (replacing its handlers); returns the format in use.

    Records leave out what no format here shows (the logging HOWTO's "Optimization"): the
    caller's file, line and function (found by walking the stack for every record), and the
    thread and process names and ids."""
    import logging.config

    logging.config.dictConfig(dict_config(fmt, level))
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    return resolve_format(fmt)


def add_format_argument(parser: Any) -> None:
    """`--log-format` on an argparse parser."""
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=None,
        help=f"log lines as JSON objects or plain text (default: ${FORMAT_ENV}, else json unless stderr is a TTY)",
    )


__all__ = [
    "FORMAT_ENV",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "add_format_argument",
    "bind",
    "bound",
    "context",
    "dict_config",
    "resolve_format",
    "setup_logging",
    "unbind",
]
