"""Find the decoder blocks of any causal LM without a table of class names.

The blocks are the shallowest `ModuleList` whose length is the config's layer count; an explicit
dotted path (`--layers-path model.layers`) overrides the search for unusual models.
"""

from __future__ import annotations

from typing import Any, cast

from torch import nn

from steertui.errors import EngineError

_LAYER_COUNT_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
_HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
_SKIP_PARTS = ("vision", "visual", "audio", "image", "encoder.", "mtp")


def text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def layer_count(config: Any) -> int | None:
    cfg = text_config(config)
    for key in _LAYER_COUNT_KEYS:
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def hidden_size(config: Any) -> int:
    cfg = text_config(config)
    for key in _HIDDEN_KEYS:
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise EngineError(
        f"cannot tell the hidden size of {type(config).__name__}: no hidden_size in its config"
    )


def _resolve(model: nn.Module, path: str) -> nn.Module:
    module: Any = model
    for part in path.split("."):
        if part.isdigit() and isinstance(module, nn.ModuleList | nn.Sequential):
            module = module[int(part)]
        elif hasattr(module, part):
            module = getattr(module, part)
        else:
            raise EngineError(
                f"layers path {path!r} does not exist on {type(model).__name__}: no attribute {part!r}"
            )
    if not isinstance(module, nn.ModuleList | nn.Sequential):
        raise EngineError(
            f"layers path {path!r} is a {type(module).__name__}, expected a ModuleList"
        )
    return module


def find_layers(model: nn.Module, layers_path: str | None = None) -> tuple[str, list[nn.Module]]:
    """Return the dotted path and the list of decoder blocks, in order."""
    if layers_path:
        return layers_path, list(cast(nn.ModuleList, _resolve(model, layers_path)))
    expected = layer_count(getattr(model, "config", None))
    candidates: list[tuple[int, str, nn.Module]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if any(part in name.lower() for part in _SKIP_PARTS):
            continue
        if expected is not None and len(module) != expected:
            continue
        candidates.append((name.count("."), name, module))
    if not candidates:
        raise EngineError(
            f"cannot find the decoder layers of {type(model).__name__}: expected a ModuleList of "
            f"{expected} blocks; pass --layers-path (e.g. model.layers)"
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    _, name, module = candidates[0]
    return name, list(cast(nn.ModuleList, module))


def module_device(module: nn.Module) -> Any:
    for param in module.parameters():
        return param.device
    for buf in module.buffers():
        return buf.device
    return None
