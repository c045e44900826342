"""`runs apply` prints a `steertui generate` line that replays the best configuration, text
vectors included (`--text TEXT:LAYER:COEFF[:SCHEDULE]`), and that line runs as printed."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

import pytest

from steertui.home import Home
from steertui.search.config import parse_config
from steertui.search.service import new_run
from steertui.search.space import CandidateVector, SteerCandidate
from steertui.store import Store
from tests.cli_runner import in_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "search_toy_luxury.toml"
BEST = SteerCandidate(
    (
        CandidateVector(2, 0.3, "a luxury upscale: lavish treat", "text", "cosine"),
        CandidateVector(1, -0.2, "a cheap budget bargain", "text", "constant"),
    )
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home holding one finished toy run whose best configuration is two text vectors."""
    root = tmp_path / "home"
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data.pop("log_path")
    cfg = parse_config(data)
    with Store.open(Home.resolve(root).db_path) as store:
        run = new_run(store, cfg)
        store.update_run(run, status="done", finished=True, best_score=0.9)
        store.update_run(run, best_candidate=BEST.to_dict())
    return root


def _command_line(applied: str) -> str:
    lines = applied.splitlines()
    return lines[lines.index("# command line") + 1]


def test_apply_prints_text_vectors_as_flags_and_the_line_replays_them(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, applied, err = in_process(monkeypatch, capsys, "runs", "apply", "1", "--home", str(home))
    assert code == 0, err
    line = _command_line(applied)
    assert "#" not in line  # nothing left for the Python form only
    argv = shlex.split(line)
    assert argv[:2] == ["steertui", "generate"]
    assert "--text" in argv and "a luxury upscale: lavish treat:2:0.3:cosine" in argv

    argv = [*argv[1:], "--json", "--max-new-tokens", "4", "--seed", "1", "--home", str(home)]
    code, out, err = in_process(monkeypatch, capsys, *argv)
    assert code == 0, err
    record = json.loads(out.splitlines()[0])
    steered = [
        (v["source"], v["layer"], v["coeff"], v["schedule"]["type"])
        for v in record["steering"]["vectors"]
    ]
    assert steered == [
        ("a luxury upscale: lavish treat", 2, 0.3, "cosine"),
        ("a cheap budget bargain", 1, -0.2, "constant"),
    ]
    assert record["prompt"] == "Your prompt here" and record["n_tokens"] >= 1


def test_text_flag_steers_as_the_search_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same text at coefficient 0 leaves the greedy answer as it is; a push changes it."""

    def answer(*extra: str) -> str:
        args = ["generate", "-p", "Hey, where should we eat tonight?", "--temperature", "0"]
        args += ["--max-new-tokens", "24", "--seed", "0", "--home", str(tmp_path), *extra]
        code, out, err = in_process(monkeypatch, capsys, *args)
        assert code == 0, err
        return out

    plain = answer()
    assert answer("--text", "a luxury upscale lavish premium deluxe treat:2:0") == plain
    assert answer("--text", "a luxury upscale lavish premium deluxe treat:2:1.5") != plain


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("luxury", "is not TEXT:LAYER:COEFF[:SCHEDULE]"),
        ("luxury:two:0.3", "LAYER: expected an integer"),
        ("luxury:2:inf", "COEFF: expected a finite number"),
        ("luxury:9:0.3", "layer 9 is not in the model: expected a layer in 0..3"),
    ],
)
def test_bad_text_flag_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    message: str,
) -> None:
    args = ["generate", "-p", "hi", "--text", flag, "--home", str(tmp_path)]
    code, out, err = in_process(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and message in err, err
