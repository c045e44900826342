"""Arguments a user can get wrong fail in a second, before torch or a model loads: a hub id that
cannot be had offline (not 25 s of hub retries), an unknown `--dims` name, a missing session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steertui.errors import EngineError
from tests.cli_runner import in_process

ROOT = Path(__file__).resolve().parents[2]

# Run the console entry point; report whether torch was imported when it exited.
PROBE = """
import sys
from steertui.cli import main
sys.argv = ["steertui", *sys.argv[1:]]
try:
    main()
finally:
    print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def _steertui(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "STEERTUI_HOME": str(tmp_path / "home"), **env}
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=120,
        cwd=tmp_path,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip() == "torch not imported"  # before torch, so before any model
    return result.stderr


def test_chat_with_a_hub_id_offline_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _steertui(tmp_path, "chat", "--model", "nosuch-org/nosuch-model", HF_HUB_OFFLINE="1")
    err = _one_line_error(result)
    assert "'nosuch-org/nosuch-model'" in err and "not in the local cache" in err
    assert "HF_HUB_OFFLINE" in err and "--model smollm2" in err  # why, and what to do
    assert not (tmp_path / "home").exists()  # nothing written
    # The same in-process, timed without the interpreter's start (the issue: ~25 s of retries).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    code, _, err = in_process(
        monkeypatch, capsys, "chat", "-m", "nosuch-org/nosuch-model", "--home", str(tmp_path)
    )
    assert (code, time.perf_counter() - started < 3.0) == (2, True), err


def test_no_route_to_the_hub_is_offline_too(tmp_path: Path) -> None:
    # port 9 on this machine refuses at once: the same as no network, without HF_HUB_OFFLINE
    result = _steertui(
        tmp_path,
        "chat",
        "--model",
        "nosuch-org/nosuch-model",
        HF_HUB_OFFLINE="",
        TRANSFORMERS_OFFLINE="",
        HF_ENDPOINT="http://127.0.0.1:9",
    )
    assert "no route to 127.0.0.1" in _one_line_error(result)


def test_load_model_offline_raises_one_line_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's own loader says it too (generate, search, vectors build), in well under 3 s."""
    from steertui.engine.loading import load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(EngineError, match="not in the local cache") as info:
        load_model("nosuch-org/nosuch-model", device="cpu")
    assert time.perf_counter() - started < 3.0
    assert "\n" not in str(info.value)


def test_local_names_are_not_hub_ids(tmp_path: Path) -> None:
    from steertui.hub import is_hub_id

    folder = tmp_path / "my-model"
    folder.mkdir()
    assert is_hub_id("Qwen/Qwen2.5-0.5B-Instruct") and is_hub_id("gpt2")
    for name in ("toy", "smollm2", str(folder), "./missing", "~/missing", "m.gguf", "a/b/c"):
        assert not is_hub_id(name), name


@pytest.fixture
def no_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """`steertui chat` must fail before it builds the app (which loads the model)."""
    import steertui.tui.app

    def create_app(**_: object) -> None:
        raise AssertionError("the app started: the arguments were not checked first")

    monkeypatch.setattr(steertui.tui.app, "create_app", create_app)


def _chat_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    code, _, err = in_process(monkeypatch, capsys, "chat", *args)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.usefixtures("no_app")
def test_chat_unknown_dimension_fails_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _chat_fails(monkeypatch, capsys, "--dims", "cost,nosuchdim", "--home", str(tmp_path))
    assert "'nosuchdim'" in err and "available: " in err and "cost" in err.split("available")[1]


@pytest.mark.usefixtures("no_app")
def test_chat_missing_session_fails_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no session 7" in _chat_fails(
        monkeypatch, capsys, "--session", "7", "--home", str(tmp_path)
    )
    assert not (tmp_path / "sessions").exists()  # reading never creates a database
