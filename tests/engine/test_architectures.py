"""Every family we claim: load, find the layers, steer, generate."""

from __future__ import annotations

import pytest
import torch

from steertui.engine import Engine, LoadedModel, RowPlan, SamplingParams, VectorSpec, load_model
from steertui.errors import EngineError
from tests.tiny_models import FAMILIES, tiny_model, tiny_tokenizer


@pytest.mark.parametrize("family", FAMILIES)
def test_family_loads_steers_and_generates(family, tmp_path):
    model = tiny_model(family, seed=0)
    tok = tiny_tokenizer()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu", dtype="float32")
    assert loaded.n_layers == 3
    assert loaded.hidden_size == 32
    engine = Engine(loaded)
    prompt = ["where can we eat?"]
    greedy = SamplingParams(temperature=0, max_new_tokens=6)
    plain = engine.generate(prompt, sampling=greedy)[0]
    assert plain.n_tokens > 0
    ids = engine.prompt_ids(prompt[0])
    base = engine.capture([ids])[0]
    plan = RowPlan(
        [VectorSpec(1, torch.randn(32), 2.0, scale=float(base[1].norm(dim=-1).mean()), name="x")]
    )
    steered_acts = engine.capture([ids], plans=plan)[0]
    torch.testing.assert_close(steered_acts[0], base[0])
    shift = (steered_acts[1] - base[1]).norm(dim=-1)
    assert torch.allclose(shift, shift[0].expand_as(shift), rtol=1e-3)
    assert float(shift[0]) > 0
    steered = engine.generate(prompt, plans=plan, sampling=greedy)[0]
    assert steered.n_tokens > 0


def test_layers_path_override_and_bad_path():
    model = tiny_model("llama")
    loaded = LoadedModel.from_model(model, tiny_tokenizer(), layers_path="model.layers")
    assert loaded.n_layers == 3
    with pytest.raises(EngineError, match="does not exist"):
        LoadedModel.from_model(model, tiny_tokenizer(), layers_path="model.blocks")


def test_missing_model_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EngineError) as err:
        load_model("no-such-org/no-such-model-xyz", device="cpu")
    assert "not found" in str(err.value) and "\n" not in str(err.value)


def test_not_a_causal_lm_is_refused(tmp_path):
    from transformers import T5Config

    T5Config(d_model=32, num_layers=1, num_heads=2, d_ff=64).save_pretrained(tmp_path)
    with pytest.raises(EngineError, match="not a causal language model"):
        load_model(str(tmp_path), device="cpu")


def test_no_chat_template_falls_back_to_plain_prompts_and_says_so():
    tok = tiny_tokenizer()
    saved = tok.chat_template
    tok.chat_template = None
    try:
        loaded = LoadedModel.from_model(tiny_model("gpt2"), tok)
        assert any("no chat template" in n for n in loaded.notices)
        engine = Engine(loaded)
        text = engine.tokenizer.decode(engine.prompt_ids("hi"))
        assert text.endswith("user: hi\nassistant:")
    finally:
        tok.chat_template = saved


def test_bad_device_and_dtype_are_one_line():
    with pytest.raises(EngineError, match="dtype 'float8'"):
        load_model("toy", device="cpu", dtype="float8")
    with pytest.raises(EngineError, match="not a device"):
        load_model("toy", device="quantum")
