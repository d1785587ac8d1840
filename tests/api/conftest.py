"""Fixtures of the API tests: one `streamproc api` process per module, on the session broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import ApiProcess


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    proc = ApiProcess(kafka_bootstrap, Path(tmp_path_factory.mktemp("api"))).start()
    try:
        yield proc
    finally:
        proc.stop()
