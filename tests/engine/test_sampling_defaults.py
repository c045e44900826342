"""Sampling defaults come from the model: its generation_config, else known defaults for the
models steertui names (SmolLM2's card), else steertui's; an explicit option or setting wins,
and each value says where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steertui.engine.sampling_defaults import FROM_CONFIG, OPTION, STEERTUI, USER, known_source
from tests.cli_runner import in_process
from tests.tiny_models import tiny_model, tiny_tokenizer

CONFIGURED = {"temperature": 0.3, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.1}


def _folder(path: Path, generation: dict[str, float] | None) -> Path:
    from transformers import GenerationConfig

    model = tiny_model("llama")
    if generation is not None:
        model.generation_config = GenerationConfig(do_sample=True, **generation)
    model.save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("configured"), CONFIGURED)


def test_a_models_generation_config_sets_its_sampling(configured: Path) -> None:
    from steertui.engine import load_model

    defaults = load_model(str(configured), device="cpu").sampling_defaults
    assert defaults.values["temperature"] == pytest.approx(0.3)
    assert defaults.values["top_p"] == pytest.approx(0.8)
    assert defaults.values["top_k"] == 20
    assert defaults.values["repetition_penalty"] == pytest.approx(1.1)
    assert {defaults.source(name) for name in CONFIGURED} == {FROM_CONFIG}
    params = defaults.params().params
    assert (params.temperature, params.top_p, params.top_k) == (0.3, 0.8, 20)


def test_a_model_without_sampling_values_gets_steertuis(tmp_path: Path) -> None:
    from steertui.engine import SamplingParams, load_model

    # save_pretrained writes a generation_config.json of token ids only: nothing to take
    defaults = load_model(str(_folder(tmp_path, None)), device="cpu").sampling_defaults
    base = SamplingParams()
    assert defaults.values["temperature"] == base.temperature
    assert defaults.values["top_p"] == base.top_p
    assert defaults.source("temperature") == STEERTUI


def test_generate_samples_with_the_models_defaults_and_an_option_wins(
    configured: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["generate", "--model", str(configured), "--home", str(tmp_path), "-p", "hi"]
    args += ["--max-new-tokens", "3", "--seed", "1", "--json"]
    code, out, err = in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    sampling = json.loads(out.splitlines()[0])["sampling"]
    assert sampling["temperature"] == pytest.approx(0.3)
    assert sampling["top_k"] == 20
    assert sampling["repetition_penalty"] == pytest.approx(1.1)
    code, out, err = in_process(monkeypatch, capsys, *args, "--temperature", "0.9", "--top-k", "0")
    assert code == 0, err
    sampling = json.loads(out.splitlines()[0])["sampling"]
    assert sampling["temperature"] == pytest.approx(0.9)
    assert sampling["top_k"] == 0
    assert sampling["top_p"] == pytest.approx(0.8)  # not given: still the model's


def test_doctor_says_where_each_value_comes_from(
    configured: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = in_process(monkeypatch, capsys, "doctor", "--model", str(configured))
    assert code == 0, err
    assert f"temperature 0.3 ({FROM_CONFIG})" in out
    code, out, err = in_process(monkeypatch, capsys, "doctor", "--model", "smollm2", "--json")
    assert code == 0, err
    sampling = json.loads(out)["sampling"]
    assert sampling["values"]["temperature"] == pytest.approx(0.2)  # SmolLM2's model card
    assert sampling["values"]["top_p"] == pytest.approx(0.9)
    assert sampling["sources"]["temperature"] == known_source("smollm2")
    assert sampling["sources"]["top_k"] == STEERTUI


def test_the_chats_settings_win_over_the_models_defaults_and_say_so() -> None:
    from steertui.engine.sampling_defaults import sampling_defaults
    from steertui.tui.chat_settings import ChatSettings, chat_sampling

    smol = sampling_defaults("smollm2")
    plain = chat_sampling(ChatSettings(), smol)
    assert plain.params.temperature == pytest.approx(0.2)
    assert "temperature 0.2 (known default for smollm2)" in plain.describe()
    mine = chat_sampling(ChatSettings(temperature=0.9, seed=5), smol)
    assert (mine.params.temperature, mine.params.top_p, mine.params.seed) == (0.9, 0.9, 5)
    assert mine.source("temperature") == USER
    assert mine.source("top_p") == known_source("smollm2")
    explicit = smol.params({"temperature": 1.0}, OPTION).source("temperature")
    assert explicit == OPTION
