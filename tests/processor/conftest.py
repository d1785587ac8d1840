"""Fixtures of the processor tests (the live `stack` fixture is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamproc.config import load_config
from streamproc.engine.core import Engine
from tests.processor.scenario import CONFIG


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The engine of the scenario's config, for the unit tests of the record stages."""
    path = Path(tmp_path_factory.mktemp("cfg")) / "config.yaml"
    path.write_text(CONFIG)
    return Engine(load_config(path))
