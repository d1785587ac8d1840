"""docs/behaviour.md's examples are true: each one, run through replay, prints exactly its block.

The page marks its blocks in the fence's info string (GitHub still highlights them by the first
word):

    ```yaml behaviour-base                the config every example is added to (base.yaml)
    ```yaml example=NAME config           the example's own config (example.yaml)
    ```json example=NAME events           its events, JSON lines (events.jsonl)
    ```json example=NAME outcomes [until=TIME]
                                          what `streamproc replay --config DIR --input
                                          events.jsonl [--until TIME]` prints, every line

Each example is run as a reader would run it: base.yaml and example.yaml written into one
directory and loaded as a config directory, the events replayed by the package's replay (the
function `streamproc replay` calls), the printed lines compared with the block, exactly. No broker.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.replay import replay
from streamproc.timeutil import parse_time, to_us

PAGE = Path(__file__).resolve().parent.parent / "docs" / "behaviour.md"
FENCE = re.compile(r"^```(\S*)(?:[ \t]+(.*))?$")
MARKER = re.compile(r"example=(?P<name>[a-z0-9-]+) (?P<part>config|events|outcomes)(?: until=(?P<until>\S+))?")


@dataclass(frozen=True)
class Example:
    name: str
    config: str
    events: list[str]
    outcomes: list[str]
    until: str | None


def read_page(text: str) -> tuple[str, list[Example]]:
    """The base config and the examples of the page; ValueError for a marker it cannot read, a
    part given twice, or an example with a part missing."""
    base: str | None = None
    parts: dict[str, dict[str, str]] = {}
    untils: dict[str, str | None] = {}
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i].rstrip("\n"))
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip("\n") == "```"), None)
        if end is None:
            raise ValueError(f"line {i + 1}: a fence that is never closed")
        body = "".join(lines[i + 1 : end])
        info = (fence.group(2) or "").strip()
        if info == "behaviour-base":
            if base is not None:
                raise ValueError(f"line {i + 1}: a second behaviour-base block")
            base = body
        elif "example" in info or "behaviour" in info:
            marker = MARKER.fullmatch(info)
            if marker is None:
                raise ValueError(f"line {i + 1}: not a marker this test reads: {info!r}")
            name, part = marker["name"], marker["part"]
            if part in parts.setdefault(name, {}):
                raise ValueError(f"line {i + 1}: example {name} has a second {part} block")
            parts[name][part] = body
            if part == "outcomes":
                untils[name] = marker["until"]
        i = end + 1
    if base is None:
        raise ValueError("no behaviour-base block")
    examples = []
    for name, found in parts.items():
        missing = {"config", "events", "outcomes"} - set(found)
        if missing:
            raise ValueError(f"example {name}: no {', '.join(sorted(missing))} block")
        examples.append(
            Example(
                name,
                found["config"],
                [line for line in found["events"].splitlines() if line.strip()],
                found["outcomes"].splitlines(),
                untils[name],
            )
        )
    return base, examples


def replayed(base: str, example: Example, tmp_path: Path) -> list[str]:
    """What `streamproc replay --config DIR --input events.jsonl` prints for the example."""
    directory = tmp_path / example.name
    directory.mkdir()
    (directory / "base.yaml").write_text(base)
    (directory / "example.yaml").write_text(example.config)
    until = to_us(parse_time(example.until)) if example.until else None
    report = replay(Engine(load_config(str(directory))), example.events, until)
    assert report.rejected == [], f"example {example.name}: events not processed: {report.rejected}"
    return report.lines()


def differences(base: str, example: Example, tmp_path: Path) -> list[str]:
    """A unified diff of the page's block against replay's output; empty when they are equal."""
    return list(
        difflib.unified_diff(
            example.outcomes,
            replayed(base, example, tmp_path),
            f"docs/behaviour.md, example {example.name}",
            "streamproc replay",
            lineterm="",
        )
    )


BASE, EXAMPLES = read_page(PAGE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_example_prints_exactly_its_outcomes(example: Example, tmp_path: Path) -> None:
    diff = differences(BASE, example, tmp_path)
    assert not diff, "\n".join(diff)


def test_an_edited_expectation_fails(tmp_path: Path) -> None:
    """The comparison above can fail: a changed character, a line left out or one added is caught."""
    example = next(e for e in EXAMPLES if e.name == "steps")
    first = example.outcomes[0]
    edits = {
        "a character": [first.replace('"user": "alice"', '"user": "alicf"'), *example.outcomes[1:]],
        "a line left out": example.outcomes[:-1],
        "a line added": [*example.outcomes, example.outcomes[-1]],
        "two lines swapped": [example.outcomes[1], example.outcomes[0], *example.outcomes[2:]],
    }
    for what, outcomes in edits.items():
        assert outcomes != example.outcomes, what
        edited = replace(example, name=f"steps-{what.replace(' ', '-')}", outcomes=outcomes)
        assert differences(BASE, edited, tmp_path), f"{what}: not caught"


def test_markers_that_cannot_be_read_are_refused() -> None:
    base = "```yaml behaviour-base\nusers: {}\n```\n"
    with pytest.raises(ValueError, match="not a marker"):
        read_page(base + "```json example=x outcome\n```\n")
    with pytest.raises(ValueError, match="no outcomes block"):
        read_page(base + "```yaml example=x config\n```\n```json example=x events\n```\n")
    with pytest.raises(ValueError, match="second events block"):
        read_page(base + "```json example=x events\n```\n```json example=x events\n```\n")


def test_the_examples_cover_the_behaviour() -> None:
    """At least the areas the page promises: steps and repeats, claims, resolves, absorbed triggers,
    roles and modes, flood control, silences, heartbeats, `--until`."""
    assert len(EXAMPLES) >= 8
    names = [e.name for e in EXAMPLES]
    assert len(set(names)) == len(names)
    events = [json.loads(line) for e in EXAMPLES for line in e.events]
    outcomes = [json.loads(line) for e in EXAMPLES for line in e.outcomes]
    assert {e["type"] for e in events} >= {
        "trigger",
        "claim",
        "unclaim",
        "resolve",
        "silence",
        "unsilence",
        "heartbeat",
    }
    assert {o["kind"] for o in outcomes} >= {"message", "exhausted", "undeliverable", "dropped", "batched", "silenced"}
    messages = [o for o in outcomes if o["kind"] == "message"]
    assert any("downgraded_from" in m for m in messages) and any("batch" in m for m in messages)
    assert any(m.get("unresolved") for m in messages)
    assert {m["role"] for m in messages} >= {"user", "team", "manager", "oncall", "oncall-primary", "owner"}
    assert any(e.until for e in EXAMPLES)
    assert any(retriggers(e) for e in EXAMPLES), "no example re-triggers an open instance"


def retriggers(example: Example) -> bool:
    """Whether an incident of the example is triggered again before a resolve ends its instance."""
    open_now: set[str] = set()
    for event in sorted((json.loads(line) for line in example.events), key=lambda ev: ev["at"]):
        incident = event.get("incident_id")
        if event["type"] == "trigger":
            if incident in open_now:
                return True
            open_now.add(incident)
        elif event["type"] == "resolve":
            open_now.discard(incident)
    return False
