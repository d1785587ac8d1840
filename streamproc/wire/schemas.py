"""JSON Schemas of every wire format, generated from the pydantic models (`make schemas`).

`tests/test_schemas.py` fails when a file in `schemas/` differs from what this generates.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

# (file name, module, attribute): attribute is a model class or a TypeAdapter.
SCHEMAS: tuple[tuple[str, str, str], ...] = (
    ("event.schema.json", "streamproc.wire.events", "ANY_EVENT_ADAPTER"),
    ("outcome.schema.json", "streamproc.wire.outcomes", "OUTCOME_ADAPTER"),
    ("audit.schema.json", "streamproc.wire.outcomes", "Audit"),
    ("tick.schema.json", "streamproc.wire.records", "Tick"),
    ("flood.schema.json", "streamproc.wire.records", "FLOOD_ADAPTER"),
    ("deadletter.schema.json", "streamproc.wire.records", "DeadLetter"),
    ("delivery.schema.json", "streamproc.wire.deliveries", "Delivery"),
    ("status.schema.json", "streamproc.wire.status", "IncidentSummary"),
    ("config.schema.json", "streamproc.config.models", "Config"),
    ("alertmanager-webhook.schema.json", "streamproc.wire.api", "AlertmanagerWebhook"),
    ("api-silence-request.schema.json", "streamproc.wire.api", "SilenceRequest"),
    ("api-silence.schema.json", "streamproc.wire.api", "SilenceView"),
    ("api-silences.schema.json", "streamproc.wire.api", "SilenceList"),
    ("alertmanager-postable-silence.schema.json", "streamproc.wire.api", "AmPostableSilence"),
    ("alertmanager-post-silence-answer.schema.json", "streamproc.wire.api", "AmPostSilenceAnswer"),
    ("alertmanager-gettable-silences.schema.json", "streamproc.wire.api", "AM_GETTABLE_SILENCES"),
    ("whatif-report.schema.json", "streamproc.whatif.model", "WhatifReport"),
)


def generate() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, module, attribute in SCHEMAS:
        try:
            target = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
        schema = target.json_schema() if isinstance(target, TypeAdapter) else target.model_json_schema()
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": name, **schema}
        out[name] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written
