"""Shared by the benchmarks: build an engine from --model, describe the machine."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONFIGS = Path(__file__).resolve().parent / "configs"


def machine(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    text = (
        f"{platform.system()} {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def load_engine(model: str, device: str, dtype: str) -> Any:
    """The engine of `load_loaded(model, device, dtype)`."""
    from steertui.engine import Engine

    return Engine(load_loaded(model, device, dtype))


def load_loaded(model: str, device: str, dtype: str) -> Any:
    """The `LoadedModel` of --model, no engine on it (a plain transformers model): `toy`, a hub id or path, or `random:NAME` with random weights (speed depends on shapes,
    not on what the weights learned): NAME is a config in bench/configs (the toy's tokenizer) or
    a folder holding a model's config.json and tokenizer (that tokenizer, the real vocabulary)."""
    import torch

    from steertui.engine import LoadedModel, load_model
    from steertui.engine.loading import resolve_device, resolve_dtype

    if not model.startswith("random:"):
        return load_model(model, device=device, dtype=dtype)
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from steertui.engine.loading import toy_path

    name = model.split(":", 1)[1]
    if Path(name).is_dir():
        tokenizer = AutoTokenizer.from_pretrained(name)
        config = AutoConfig.from_pretrained(name)
    else:
        params = json.loads((CONFIGS / f"{name}.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(toy_path())
        params["vocab_size"] = max(len(tokenizer), 256)
        config = AutoConfig.for_model(params.pop("model_type"), **params)
    dev = resolve_device(device)
    torch.manual_seed(0)
    net = AutoModelForCausalLM.from_config(config, dtype=resolve_dtype(dtype, dev)).to(dev).eval()
    return LoadedModel.from_model(net, tokenizer, model_id=model)


def mean_err(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and 2 standard errors of the finite values (nan where there are too few)."""
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return math.nan, math.nan
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, math.nan
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return m, 2 * sd / math.sqrt(len(xs))
