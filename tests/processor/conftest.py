"""Fixtures of the live processor tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.processor.cluster import Stack
from tests.processor.scenario import CONFIG


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Any:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    s = Stack(kafka_bootstrap, config, tmp_path)
    try:
        yield s
    finally:
        s.stop()
