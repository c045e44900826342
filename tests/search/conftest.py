"""The search tests' shared fixture: the tiny random-weight model saved once per run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.search.runs import save_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
