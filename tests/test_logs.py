"""JSON / text log lines, the bound log context, and the correlation id's headers and state."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.kafka.headers import (
    CORRELATION_HEADER,
    correlation_headers,
    correlation_of,
    new_correlation_id,
    valid_correlation_id,
)
from streamproc.logs import ContextFilter, JsonFormatter, TextFormatter, _iso, bound, resolve_format
from streamproc.processor.records import on_event_record, on_tick_record
from streamproc.timeutil import parse_time, to_us
from tests.processor.scenario import CONFIG

T0 = to_us(parse_time("2026-03-01T10:00:00Z"))


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_extra_and_bound_fields() -> None:
    logger, stream = capture(JsonFormatter())
    with bound(correlation_id="c-1", incident_id="outer"):
        logger.info("sent %s", "x\ny", extra={"incident_id": "inc-1", "partition": 3, "when": Path("/p")})
    logger.info("after")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "sent x\ny" and first["level"] == "info" and first["logger"] == logger.name
    assert first["time"].endswith("Z")
    # extra= wins over the bound context; the bound fields are added; non-JSON values become strings
    assert (first["incident_id"], first["correlation_id"]) == ("inc-1", "c-1")
    assert (first["partition"], first["when"]) == (3, "/p")
    assert "correlation_id" not in second  # unbound when the block ended
    assert "ValueError: boom" in third["exc"]


def test_text_lines_show_fields_after_the_message() -> None:
    logger, stream = capture(TextFormatter())
    logger.info("vendor call", extra={"incident_id": "inc-1", "correlation_id": "c-1"})
    line = stream.getvalue().strip()
    assert line.endswith("vendor call incident_id=inc-1 correlation_id=c-1") and " INFO " in line


def test_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMPROC_LOG_FORMAT", raising=False)
    assert resolve_format("text") == "text" and resolve_format("json") == "json"
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert resolve_format(None) == "json" and resolve_format("auto") == "json"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    assert resolve_format(None) == "text"
    monkeypatch.setenv("STREAMPROC_LOG_FORMAT", "text")
    assert resolve_format(None) == "text" and resolve_format("json") == "json"
    with pytest.raises(ValueError):
        resolve_format("yaml")


def test_correlation_headers_round_trip() -> None:
    cid = new_correlation_id()
    headers = correlation_headers(cid)
    assert headers == [(CORRELATION_HEADER, cid.encode())]
    assert correlation_of([("streamproc-barrier", b"t"), *headers]) == cid
    assert correlation_of(None) is None and correlation_of([("other", b"x")]) is None
    assert correlation_headers(None) is None
    assert valid_correlation_id(" req-1 ") == "req-1"
    assert valid_correlation_id("bad id\r\nX: y") is None and valid_correlation_id("x" * 129) is None


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.yaml"
    path.write_text(CONFIG)
    return Engine(load_config(path))


def event(kind: str, at: str, **fields: object) -> bytes:
    body: dict[str, object] = {"type": kind, "at": at, "incident_id": "inc-1", **fields}
    if kind == "trigger":
        body.update(application="app", plan="quick", context={"summary": "disk full"})
    return json.dumps(body).encode()


def test_an_instance_keeps_the_correlation_id_of_the_record_that_opened_it(engine: Engine) -> None:
    opened = on_event_record(engine, None, event("trigger", "2026-03-01T10:00:00Z"), now_us=T0, correlation_id="first")
    assert opened.correlation_id == "first" and opened.outputs
    stored = opened.state.model_dump_json().encode() if opened.state else None
    # a wake-up's pages and a later claim's audit still carry the trigger's id
    tick = json.dumps({"incident_id": "inc-1", "due": T0 + 2_000_000, "version": 0}).encode()
    woken = on_tick_record(engine, stored, tick, T0 + 2_000_000)
    assert woken.outputs and woken.correlation_id == "first"
    claimed = on_event_record(
        engine,
        stored,
        event("claim", "2026-03-01T10:00:01Z", owner="alice"),
        now_us=T0 + 1_000_000,
        correlation_id="claim-request",
    )
    assert claimed.correlation_id == "first"
    # resolved, then triggered again: a new instance, with the new trigger's id
    resolved = on_event_record(
        engine,
        stored,
        event("resolve", "2026-03-01T10:00:01Z"),
        now_us=T0 + 1_000_000,
        correlation_id="resolve-request",
    )
    again = on_event_record(
        engine,
        resolved.state.model_dump_json().encode() if resolved.state else None,
        event("trigger", "2026-03-01T10:00:05Z"),
        now_us=T0 + 5_000_000,
        correlation_id="second",
    )
    assert again.state is not None and again.state.instance == 2 and again.correlation_id == "second"


def test_json_time_is_utc_to_the_millisecond_across_seconds() -> None:
    """`_iso` keeps the last second's text: the next second, and an earlier one, get their own."""
    t = parse_time("2026-03-01T10:00:59Z").timestamp()
    assert [_iso(t + d) for d in (0.25, 0.999, 1.0, 1.5, 0.5, -3600.0)] == [
        "2026-03-01T10:00:59.250Z",
        "2026-03-01T10:00:59.999Z",
        "2026-03-01T10:01:00.000Z",
        "2026-03-01T10:01:00.500Z",
        "2026-03-01T10:00:59.500Z",
        "2026-03-01T09:00:59.000Z",
    ]
