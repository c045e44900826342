"""A prompt against the model's context (issue 28): the engine refuses one that does not fit
and cuts an answer that would run past it, saying so, before any forward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steertui.engine.limits import context_length, fit_context
from steertui.engine.sampling import SamplingParams
from steertui.errors import EngineError
from tests.cli_runner import in_process


def test_fit_context_refuses_cuts_or_passes() -> None:
    params = SamplingParams(max_new_tokens=100)
    assert fit_context([10, 400], params, 512, "m") == (params, None)
    assert fit_context([10], params, None, "m") == (params, None)  # no limit known
    cut, note = fit_context([450, 12], params, 512, "m")
    assert cut.max_new_tokens == 62 and cut.temperature == params.temperature
    assert (
        note
        == "answers stop after 62 new tokens (not 100): the prompt takes 450 of m's 512-token context"
    )
    with pytest.raises(EngineError, match=r"^the prompt is 512 tokens but m reads at most 512 "):
        fit_context([512], params, 512, "m")


def test_context_length_reads_the_config() -> None:
    from transformers import GPT2Config, LlamaConfig

    assert context_length(LlamaConfig(max_position_embeddings=512)) == 512
    assert context_length(GPT2Config(n_positions=64)) == 64


def test_a_long_prompt_gets_a_cut_answer_and_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = "luxury " * 400  # about 410 of the toy's 512 positions with its template
    code, out, err = in_process(
        monkeypatch,
        capsys,
        *("generate", "-p", prompt, "--max-new-tokens", "300", "--json", "--seed", "1"),
        *("--temperature", "0", "--home", str(tmp_path)),
    )
    assert code == 0, err
    (note,) = [line for line in err.splitlines() if line.startswith("note: answers stop after")]
    room = int(note.split("after ")[1].split(" ")[0])
    assert 0 < room < 300 and "of toy's 512-token context" in note
    assert json.loads(out)["n_tokens"] <= room
