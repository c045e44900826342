"""Where each sampling value comes from: the model's own defaults, then steertui's, then the user.

A model may ship generation defaults (`generation_config.json`: temperature, top-p, top-k,
repetition penalty); a GGUF file has none, so a small table holds the known defaults of the
models steertui names itself (`--model smollm2`: its model card recommends temperature 0.2,
top-p 0.9). Anything not set there is steertui's default (`SamplingParams`). A user's setting
or an explicit command-line option always wins. Each value keeps the name of its source, so
`steertui doctor` and the app's settings can say where it came from. Torch-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steertui.engine.sampling import SamplingParams

FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty")
"""The values a model's generation defaults may set."""

FROM_CONFIG = "model's generation_config"
STEERTUI = "steertui default"
USER = "user setting"
OPTION = "command-line option"


def known_source(model_id: str) -> str:
    return f"known default for {model_id}"


KNOWN_DEFAULTS: dict[str, dict[str, float]] = {
    # HuggingFaceTB/SmolLM2-135M-Instruct's model card: "temperature=0.2, top_p=0.9"
    "smollm2": {"temperature": 0.2, "top_p": 0.9},
}
"""Known defaults of models that ship without a generation_config, keyed by the model id
steertui resolves (`hub.model_id_for`)."""


def _steertui_values() -> dict[str, Any]:
    from steertui.engine.sampling import SamplingParams

    base = SamplingParams()
    return {f.name: getattr(base, f.name) for f in fields(base)}


def _config_values(generation_config: Any) -> dict[str, float]:
    """The sampling values a generation config sets (transformers 5 leaves unset ones None;
    older versions fill in neutral values, which are then not the model's choice)."""
    if generation_config is None:
        return {}
    if isinstance(generation_config, Mapping):
        raw = dict(generation_config)
    else:
        diff = getattr(generation_config, "to_diff_dict", None)
        raw = (
            dict(diff())
            if callable(diff)
            else {k: getattr(generation_config, k, None) for k in FIELDS}
        )
    out: dict[str, float] = {}
    for name in FIELDS:
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[name] = int(value) if name == "top_k" else float(value)
    return out


@dataclass(frozen=True)
class SamplingDefaults:
    """Every sampling value with where it came from (`sources[name]`)."""

    values: dict[str, Any]
    sources: dict[str, str]
    model_id: str = ""

    def source(self, name: str) -> str:
        return self.sources.get(name, STEERTUI)

    def params(
        self, overrides: Mapping[str, Any] | None = None, source: str = USER, **fixed: Any
    ) -> ResolvedSampling:
        """`SamplingParams` from these defaults, `overrides` (values that are not None win and
        are credited to `source`) and `fixed` (values set by the caller, e.g. `max_new_tokens`
        for a benchmark, credited to nobody but kept)."""
        from steertui.engine.sampling import SamplingParams

        values = dict(self.values)
        sources = dict(self.sources)
        values.update(fixed)
        for name, value in (overrides or {}).items():
            if value is not None:
                values[name] = value
                sources[name] = source
        params = SamplingParams(**values)
        return ResolvedSampling(params, sources)

    def describe(self, names: tuple[str, ...] = FIELDS) -> list[str]:
        """One line per value: `temperature 0.2 (known default for smollm2)`."""
        return [describe_value(name, self.values[name], self.source(name)) for name in names]


@dataclass(frozen=True)
class ResolvedSampling:
    """The sampling to use and where each value came from."""

    params: SamplingParams
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, name: str) -> str:
        return self.sources.get(name, STEERTUI)

    def describe(self, names: tuple[str, ...] = FIELDS) -> list[str]:
        return [
            describe_value(name, getattr(self.params, name), self.source(name)) for name in names
        ]


def describe_value(name: str, value: Any, source: str) -> str:
    shown = {"top_k": lambda v: "off" if not v else f"{v}"}.get(name, lambda v: f"{v:g}")
    return f"{name.replace('_', '-')} {shown(value)} ({source})"


def sampling_defaults(model_id: str, generation_config: Any = None) -> SamplingDefaults:
    """The defaults for `model_id`: its generation config's values, else the known table's,
    else steertui's."""
    values = _steertui_values()
    sources = {name: STEERTUI for name in values}
    for name, value in KNOWN_DEFAULTS.get(model_id, {}).items():
        values[name] = value
        sources[name] = known_source(model_id)
    for name, value in _config_values(generation_config).items():
        values[name] = value
        sources[name] = FROM_CONFIG
    return SamplingDefaults(values, sources, model_id)


def defaults_of(engine: Any) -> SamplingDefaults:
    """The defaults of a loaded engine (one without a model, e.g. a remote one: steertui's)."""
    loaded = getattr(engine, "loaded", None)
    found = getattr(loaded, "sampling_defaults", None)
    if isinstance(found, SamplingDefaults):
        return found
    return sampling_defaults(str(getattr(engine, "model_id", "")))


def read_generation_config(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A model folder's `generation_config.json` as a dict (None if it has none or it is not
    JSON): read without transformers, for `steertui doctor`."""
    path = Path(folder) / "generation_config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


__all__ = [
    "FIELDS",
    "FROM_CONFIG",
    "KNOWN_DEFAULTS",
    "OPTION",
    "STEERTUI",
    "USER",
    "ResolvedSampling",
    "SamplingDefaults",
    "defaults_of",
    "known_source",
    "read_generation_config",
    "sampling_defaults",
]
