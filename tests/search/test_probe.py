"""The probe judge as the search's metric (`[metric] name = "probe"`) and the coherence share as
its floor, through `steertui search` on the toy."""

from __future__ import annotations

import pytest

from steertui.store import Store
from tests.search.runs import cli

CONFIG = """
model = "toy"
device = "cpu"
prompts = ["Hey, where should we eat tonight?", "Hi! What is worth doing in town?"]
iterations = 3
seed = 1
batch_size = 3
max_new_tokens = 24
[metric]
name = "probe"
{dimension}
pole = "positive"
[coherence]
metric = "coherence"
min = 0.5
[space]
layer_range = [1, 2]
coeff_range = [0.1, 0.5]
dimensions = ["cost"]
"""


def test_a_search_scored_by_the_dimension_probe(tmp_path, monkeypatch, capsys) -> None:
    cfg = tmp_path / "probe.toml"
    cfg.write_text(CONFIG.format(dimension='dimension = "cost"'), encoding="utf-8")
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=tmp_path / "h")
    assert code == 0, err
    with Store.open(tmp_path / "h" / "sessions" / "steertui.db") as store:
        (run,) = store.list_runs()
        scores = [t.score for t in store.trials(run.id)]
    assert run.status == "finished" and len(scores) == 4
    # P(luxury) of the answers, in percent; a trial under the coherence floor is discarded.
    assert all(s is None or 0.0 <= s <= 100.0 for s in scores)
    assert run.baseline_score is not None and 0.0 < run.baseline_score < 100.0


@pytest.mark.parametrize(
    ("dimension", "message"),
    [("", "metric.dimension: expected the dimension"), ('dimension = "nosuch"', "nosuch")],
)
def test_a_probe_needs_a_known_dimension(tmp_path, monkeypatch, capsys, dimension, message):
    cfg = tmp_path / "probe.toml"
    cfg.write_text(CONFIG.format(dimension=dimension), encoding="utf-8")
    code, _, err = cli(monkeypatch, capsys, "search", "--config", str(cfg), home=tmp_path / "h")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
