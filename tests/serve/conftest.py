"""A real `steertui serve` per test module, and one data home for every server of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.server_process import Server, start_server, stop_server


@pytest.fixture(scope="session")
def serve_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for every server of the run: a dimension's vector is built once."""
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def server(serve_home: Path) -> Iterator[Server]:
    srv = start_server(serve_home)
    yield srv
    stop_server(srv.process)
