"""The steering engine: loading, layer discovery, hooks, schedules, plans, generation.

Headless: imports torch and transformers, never textual or rich.
"""

from steertui.engine.engine import Engine, GenerationResult, TokenEvent
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
