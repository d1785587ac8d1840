"""Reading the JSON logs of the processes (STREAMPROC_LOG_FORMAT=json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_lines(path: Path) -> list[dict[str, Any]]:
    """The log's JSON objects; any line that is not one fails the test (the format must hold)."""
    out = []
    text = path.read_text(errors="replace")
    for line in text[: text.rfind("\n") + 1].splitlines():  # whole lines only: one may be half written
        if line.strip():
            value = json.loads(line)
            assert isinstance(value, dict), line
            out.append(value)
    return out
