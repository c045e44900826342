"""The steering engine: loading, layer discovery, hooks, schedules, plans, generation.

Headless: imports torch and transformers, never textual or rich. The names below load on
first use (PEP 562), so `import steertui.engine.protocol` or a type annotation does not pull
torch in: the app paints before the model and torch load.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

_WHERE = {
    "CompiledPlan": "steertui.engine.plan",
    "ConstantSchedule": "steertui.engine.schedules",
    "CosineSchedule": "steertui.engine.schedules",
    "DecaySchedule": "steertui.engine.schedules",
    "Engine": "steertui.engine.engine",
    "GenerationResult": "steertui.engine.engine",
    "LoadedModel": "steertui.engine.loading",
    "RowPlan": "steertui.engine.plan",
    "SamplingParams": "steertui.engine.sampling",
    "Schedule": "steertui.engine.schedules",
    "Steer": "steertui.engine.steer",
    "TextVector": "steertui.engine.text_vector",
    "TokenEvent": "steertui.engine.decode_loop",
    "VectorSpec": "steertui.engine.plan",
    "WarmupSchedule": "steertui.engine.schedules",
    "find_layers": "steertui.engine.layers",
    "load_model": "steertui.engine.loading",
    "normalise_layer": "steertui.engine.plan",
    "resolve_device": "steertui.engine.loading",
    "resolve_dtype": "steertui.engine.loading",
    "schedule_from_dict": "steertui.engine.schedules",
    "text_vector": "steertui.engine.text_vector",
    "unsteered": "steertui.engine.steer",
}

if TYPE_CHECKING:
    from steertui.engine.decode_loop import TokenEvent
    from steertui.engine.engine import Engine, GenerationResult
    from steertui.engine.layers import find_layers
    from steertui.engine.loading import LoadedModel, load_model, resolve_device, resolve_dtype
    from steertui.engine.plan import CompiledPlan, RowPlan, VectorSpec, normalise_layer
    from steertui.engine.sampling import SamplingParams
    from steertui.engine.schedules import (
        ConstantSchedule,
        CosineSchedule,
        DecaySchedule,
        Schedule,
        WarmupSchedule,
        schedule_from_dict,
    )
    from steertui.engine.steer import Steer, unsteered
    from steertui.engine.text_vector import TextVector, text_vector


class _Package(types.ModuleType):
    """Keeps a name that is also a submodule's (`text_vector`) bound to the function: importing
    the submodule binds the package attribute to the module, which the eager imports used to
    overwrite."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'steertui.engine' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CompiledPlan",
    "ConstantSchedule",
    "CosineSchedule",
    "DecaySchedule",
    "Engine",
    "GenerationResult",
    "LoadedModel",
    "RowPlan",
    "SamplingParams",
    "Schedule",
    "Steer",
    "TextVector",
    "TokenEvent",
    "VectorSpec",
    "WarmupSchedule",
    "find_layers",
    "load_model",
    "normalise_layer",
    "resolve_device",
    "resolve_dtype",
    "schedule_from_dict",
    "text_vector",
    "unsteered",
]
