"""Search configs a one-line table cannot show (issue 28): code a config names runs only with
consent and is named before the run; a run whose every trial crashed exits non-zero; a
trial's coefficient never leaves the config's `coeff_range`."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from steertui.errors import ConfigError
from steertui.home import Home
from steertui.search.config import load_config
from steertui.search.space import SteerCandidate, SteerSearchSpace
from steertui.store import Store
from tests.cli_runner import in_process

CONFIG = """
mode = "autosteer"
model = "toy"
device = "cpu"
prompts = ["Hey, where should we eat tonight?"]
iterations = 2
seed = 1
max_new_tokens = 8

[metric]
name = "custom"
function = "issue28_crashing_metric:score"

[space]
layer_range = [1, 2]
texts = ["a luxury upscale treat"]
"""

METRIC = """
def score(outputs, prompts, expected):
    raise RuntimeError("this metric always fails")
"""


def test_code_runs_only_with_consent_is_named_first_and_all_crashed_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "issue28_crashing_metric.py").write_text(METRIC, encoding="utf-8")
    config = tmp_path / "search.toml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / "home")
    args = ("search", "--config", str(config), "--home", home)

    code, _, err = in_process(monkeypatch, capsys, *args)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert "'issue28_crashing_metric:score' is code" in err and "--allow-code" in err
    with Store.open(Home.resolve(home).db_path) as store:
        assert store.list_runs() == []  # refused before a run was created

    code, _, err = in_process(monkeypatch, capsys, *args, "--allow-code")
    assert code == 1, err
    lines = err.splitlines()
    said = next(i for i, line in enumerate(lines) if line.startswith("code: "))
    assert str(tmp_path / "issue28_crashing_metric.py") in lines[said]
    assert said < next(i for i, line in enumerate(lines) if line.startswith("run 1 "))
    assert lines[-1] == "error: all 2 trials of run 1 crashed (see them with steertui runs show 1)"

    code, _, err = in_process(monkeypatch, capsys, "search", "--resume", "1", "--home", home)
    assert code == 2 and "run 1's stored config" in err and "--allow-code" in err, err


def test_the_apps_config_load_refuses_code_without_consent(tmp_path: Path) -> None:
    """`load_config` as the app's search start calls it: one `ConfigError` (its toast), and
    the module is not imported."""
    config = tmp_path / "search.toml"
    config.write_text(CONFIG.replace("issue28_crashing_metric", "issue28_never_imported"))
    (tmp_path / "issue28_never_imported.py").write_text("raise SystemExit('imported!')\n")
    with pytest.raises(ConfigError, match=r"search\.toml: metric\.function .* expected --allow"):
        load_config(config)
    assert "issue28_never_imported" not in sys.modules


@pytest.mark.parametrize("coeff_range", [(0.05, 1.0), (0.5, 0.5), (2.0, 3.0)])
def test_every_proposed_coefficient_stays_within_the_range(
    coeff_range: tuple[float, float],
) -> None:
    space = SteerSearchSpace(
        layer_range=(0, 3),
        coeff_range=coeff_range,
        texts=["a luxury treat"],
        negative_texts=["a cheap snack"],
        dimensions=["-cost"],
        max_vectors=3,
    )
    rng = random.Random(0)
    best: SteerCandidate | None = None
    lo, hi = coeff_range
    for i in range(3000):
        cand = space.propose(rng, best, discard_streak=i % 7)
        for v in cand.vectors:
            assert lo - 1e-4 <= abs(v.coeff) <= hi + 1e-4, (v, coeff_range)
        best = cand
