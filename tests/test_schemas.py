"""The JSON Schemas in schemas/ are generated from the models; this fails when they drift."""

from __future__ import annotations

import json
from pathlib import Path

from streamproc.wire.schemas import SCHEMAS, generate, render

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def test_schemas_in_the_repo_match_the_models() -> None:
    generated = generate()
    assert set(generated) == {name for name, _, _ in SCHEMAS}
    stale = [
        name
        for name, schema in generated.items()
        if not (SCHEMA_DIR / name).exists() or (SCHEMA_DIR / name).read_text() != render(schema)
    ]
    assert not stale, f"schemas/ is out of date for {stale}: run `make schemas`"
    extra = {p.name for p in SCHEMA_DIR.glob("*.json")} - set(generated)
    assert not extra, f"schemas/ has files no model generates: {extra}"


def test_event_schema_accepts_the_spec_examples_and_names_required_fields() -> None:
    schema = json.loads((SCHEMA_DIR / "event.schema.json").read_text())
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schema["oneOf"]}
    assert kinds == {"Trigger", "Claim", "Acknowledge", "Unclaim", "Resolve", "Silence", "Unsilence", "Heartbeat"}
    assert set(schema["$defs"]["Trigger"]["required"]) == {"type", "application", "plan"}
