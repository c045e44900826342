"""Shared test setup: never touch a model hub, keep torch to the machine's cores."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from steertui.engine import Engine, load_model  # noqa: E402
from tests.real_model import smollm2, smollm2_engine, smollm2_home  # noqa: E402,F401


@pytest.fixture(scope="session")
def toy_engine() -> Engine:
    """The bundled toy model's engine, loaded once per test run (float32 on the CPU)."""
    return Engine(load_model("toy", device="cpu", dtype="float32"))
