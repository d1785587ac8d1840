"""Issue 22: `streamproc incidents`' table and filters, without Kafka (the live test reads the topic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamproc.incidents.command import render_table
from streamproc.incidents.index import Query, StatusIndex, statuses_of
from streamproc.wire.status import IncidentSummary

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def record(incident_id: str, status: str, application: str = "app", **fields: object) -> bytes:
    return (
        IncidentSummary.model_validate(
            {
                "incident_id": incident_id,
                "instance": 1,
                "status": status,
                "plan": "p",
                "application": application,
                "step": 1,
                "steps": 2,
                "created": T0,
                "updated": T0,
                "summary": f"[bold]{incident_id}[/bold]",
                **fields,
            }
        )
        .model_dump_json()
        .encode()
    )


@pytest.fixture
def index() -> StatusIndex:
    index = StatusIndex("unused:9092", topic="t.status")
    index.apply_message("t.status", b"a", record("a", "escalating", last_paged=["alice"], last_paged_at=T0), None)
    index.apply_message("t.status", b"b", record("b", "claimed", claimed_by="bob"), None)
    index.apply_message("t.status", b"c", record("c", "resolved", resolved_at=T0), None)
    index.apply_message("t.status", b"d", record("d", "escalating", application="other"), None)
    index.apply_message("t.status", b"e", record("e", "escalating"), None)
    index.apply_message("t.status", b"e", None, None)  # tombstone
    index.apply_message("t.status", b"f", b"{not json", None)  # skipped
    return index


def test_filters(index: StatusIndex) -> None:
    assert {s.incident_id for s in index.query(Query())} == {"a", "b", "d"}
    assert {s.incident_id for s in index.query(Query(status="all", application="app"))} == {"a", "b", "c"}
    assert [s.incident_id for s in index.query(Query(status="claimed"))] == ["b"]
    assert index.get("e") is None and index.version == 6
    with pytest.raises(ValueError, match="status"):
        statuses_of("nope")


def test_the_table(index: StatusIndex, capsys: pytest.CaptureFixture[str]) -> None:
    render_table(index.query(Query(application="app")), "2 incident(s)")
    out = capsys.readouterr().out
    assert "2 incident(s)" in out and "[bold]a[/bold]" in out  # the summary is text, not rich markup
    assert "claimed" in out and "bob" in out and "alice 2026-12-01T10:00:00Z" in out and "1/2" in out
    assert "other" not in out and "resolved" not in out
