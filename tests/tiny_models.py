"""Tiny random-weight models of each architecture family, built offline for tests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

VOCAB = 300  # 256 bytes + specials, padded

FAMILIES = [
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma2",
    "gemma3_text",
    "phi3",
    "stablelm",
    "gpt2",
    "gpt_neox",
    "olmo2",
    "mixtral",
]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@lru_cache(maxsize=1)
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer with a chat template: encodes any text, no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - 10,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|end|>", padding_side="left"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_config(family: str) -> Any:
    from transformers import AutoConfig

    common: dict[str, Any] = {
        "vocab_size": VOCAB,
        "eos_token_id": 1,
        "pad_token_id": 0,
        "bos_token_id": None,
    }
    if family == "gpt2":
        return AutoConfig.for_model(
            "gpt2", n_embd=32, n_layer=3, n_head=2, n_positions=256, **common
        )
    if family == "gpt_neox":
        return AutoConfig.for_model(
            "gpt_neox",
            hidden_size=32,
            num_hidden_layers=3,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=256,
            **common,
        )
    kwargs: dict[str, Any] = dict(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        max_position_embeddings=256,
        **common,
    )
    if family in ("qwen3", "gemma2", "gemma3_text"):
        kwargs["head_dim"] = 16
    if family in ("gemma2", "gemma3_text"):
        kwargs["sliding_window"] = 64
    if family == "phi3":
        kwargs.pop("num_key_value_heads")
    if family == "mixtral":
        kwargs.update(num_local_experts=4, num_experts_per_tok=2)
    return AutoConfig.for_model(family, **kwargs)


def tiny_model(family: str = "llama", seed: int = 0) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family), dtype=torch.float32)
    model.eval()
    return model


def tiny_engine(family: str = "llama", seed: int = 0) -> Any:
    from steertui.engine import Engine, LoadedModel

    return Engine(
        LoadedModel.from_model(
            tiny_model(family, seed), tiny_tokenizer(), model_id=f"tiny-{family}"
        )
    )


@lru_cache(maxsize=1)
def tiny_word_model() -> tuple[Any, Any]:
    """A tiny random Llama whose tokenizer knows the toy's words (the search tests steer with
    texts such as "luxury upscale"), built once per run."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from steertui.toy.tokenizer import train_tokenizer
    from steertui.toy.world import generate

    texts = [e.request + " " + e.answer for e in generate(200, 0)]
    texts += [" ".join(str(i) for i in range(101))] * 5
    tok = train_tokenizer(texts, 500)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = AutoModelForCausalLM.from_config(cfg).eval()
    return model, tok


def tiny_word_engine() -> Any:
    from steertui.engine import Engine

    model, tok = tiny_word_model()
    return Engine.for_model(model, tok)
